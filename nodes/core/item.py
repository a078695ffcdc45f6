"""The queue item: what ``POST /prompt`` stores and ``/queue`` and ``/history`` show.

ComfyUI's wire shape is the list ``[number, prompt_id, prompt, extra_data, outputs_to_execute]``;
inside nodefarm it is this named record. Sensitive extra data (API keys of comfy.org nodes) is
split off at submit time, as ComfyUI does: hidden inputs receive it, no listing ever shows it.
The list of nodes whose validation was deferred to the worker travels with it, never shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SENSITIVE_EXTRA_DATA_KEYS = ("auth_token_comfy_org", "api_key_comfy_org")


@dataclass
class QueueItem:
    number: float
    prompt_id: str
    prompt: dict[str, Any]
    extra_data: dict[str, Any]
    outputs: list[str]
    sensitive: dict[str, Any] = field(default_factory=dict)
    # nodes whose VALIDATE_INPUTS rejected a linked input's None at submit time: it runs again on
    # the worker with the real values (never shown either)
    deferred: list[str] = field(default_factory=list)

    @classmethod
    def submitted(
        cls, number: float, prompt_id: str, prompt: dict[str, Any], extra_data: dict[str, Any], outputs: list[str]
    ) -> QueueItem:
        """A new item, with the sensitive keys of ``extra_data`` moved to :attr:`sensitive`."""
        shown = {k: v for k, v in extra_data.items() if k not in SENSITIVE_EXTRA_DATA_KEYS}
        secret = {k: v for k, v in extra_data.items() if k in SENSITIVE_EXTRA_DATA_KEYS}
        return cls(number, prompt_id, prompt, shown, list(outputs), secret)

    @property
    def client_id(self) -> str | None:
        client = self.extra_data.get("client_id")
        return str(client) if client else None

    @property
    def full_extra_data(self) -> dict[str, Any]:
        """Extra data as submitted (sensitive keys included): what hidden inputs read."""
        return {**self.extra_data, **self.sensitive}

    def wire(self) -> list[Any]:
        """ComfyUI's 5-element list (never with the sensitive keys)."""
        return [self.number, self.prompt_id, self.prompt, self.extra_data, self.outputs]

    @classmethod
    def from_wire(cls, value: list[Any], private: dict[str, Any] | None = None) -> QueueItem:
        """From ComfyUI's list, with what is never shown (``{"sensitive", "deferred"}``) when known."""
        number, prompt_id, prompt, extra_data, outputs = value[:5]
        private = private or {}
        return cls(number, str(prompt_id), prompt, extra_data, list(outputs), dict(private.get("sensitive") or {}),
                   list(private.get("deferred") or []))

    def private(self) -> dict[str, Any]:
        """What is stored beside the item and never shown."""
        return {"sensitive": self.sensitive, "deferred": self.deferred}
