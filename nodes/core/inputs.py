"""A node's inputs as ComfyUI hands them over: every input a list (spec/comfyui.md 5.3).

Constants are wrapped in one-element lists (``{"__value__": ...}`` unwrapped), links become their
source's output list, rawLink inputs receive the link itself, hidden inputs their value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nodes import schema
from nodes.core.graph import is_link


@dataclass
class Hidden:
    """Values for hidden inputs (spec 5.3)."""

    prompt: dict
    extra_data: dict
    unique_id: str
    dynprompt: Any = None

    def value(self, kind: str) -> Any:
        if kind == "PROMPT":
            return self.prompt
        if kind == "DYNPROMPT":
            return self.dynprompt
        if kind == "EXTRA_PNGINFO":
            return self.extra_data.get("extra_pnginfo")
        if kind == "UNIQUE_ID":
            return self.unique_id
        if kind == "AUTH_TOKEN_COMFY_ORG":
            return self.extra_data.get("auth_token_comfy_org")
        if kind == "API_KEY_COMFY_ORG":
            return self.extra_data.get("api_key_comfy_org")
        return None


def unwrap(value: Any) -> Any:
    if isinstance(value, dict) and "__value__" in value and len(value) == 1:
        return value["__value__"]
    return value


def assemble_inputs(
    cls: type,
    node: dict,
    link_values: dict[str, list[list[Any]]],
    hidden: Hidden,
    types: dict[str, Any] | None = None,
) -> dict[str, list[Any]]:
    """Every input as a list (spec 5.3). ``link_values``: source id -> its outputs (socket -> list);
    ``types``: the class's ``INPUT_TYPES()`` when the caller has it already."""
    types = schema.input_types(cls) if types is None else types
    v3 = schema.is_v3(cls)  # a V3 node's hidden inputs come as ``cls.hidden``, never from the prompt
    data: dict[str, list[Any]] = {}
    for name, value in node.get("inputs", {}).items():
        info = schema.input_info(cls, name, types)
        options = info[2] if info and isinstance(info[2], dict) else {}
        if is_link(value):
            if options.get("rawLink"):
                data[name] = [value]
                continue
            src, socket = value[0], int(value[1])
            outs = link_values.get(src)
            data[name] = outs[socket] if outs is not None and socket < len(outs) else [None]
        elif info is not None and (info[1] != "hidden" or not v3):
            # upstream passes the constant of any declared input, V1 hidden ones included (a
            # for-loop open node declares its counter ``hidden``: ``{"initial_value0": ("*",)}``)
            data[name] = [unwrap(value)]
    for name, kind in schema.hidden_inputs(cls, types).items():
        data[name] = [hidden.value(kind)]
    return data
