"""ComfyUI's ``comfy_execution.utils``: which node is executing right now (spec §5.4, §5.11).

The worker enters :class:`CurrentNodeContext` around every call of a node function; progress APIs
read it back with :func:`get_executing_context`. The value travels in a ``ContextVar``, so async node
calls and threads started with a copied context see their own node.
"""

from __future__ import annotations

import contextvars
from types import TracebackType
from typing import NamedTuple


class ExecutionContext(NamedTuple):
    prompt_id: str
    node_id: str
    list_index: int | None


current_executing_context: contextvars.ContextVar[ExecutionContext | None] = contextvars.ContextVar(
    "current_executing_context", default=None
)


def get_executing_context() -> ExecutionContext | None:
    return current_executing_context.get()


class CurrentNodeContext:
    """``with CurrentNodeContext(prompt_id, node_id, list_index): ...`` marks the executing node."""

    def __init__(self, prompt_id: str, node_id: str, list_index: int | None = None) -> None:
        self.context = ExecutionContext(prompt_id=prompt_id, node_id=node_id, list_index=list_index)
        self._tokens: list[contextvars.Token[ExecutionContext | None]] = []

    def __enter__(self) -> ExecutionContext:
        self._tokens.append(current_executing_context.set(self.context))
        return self.context

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        current_executing_context.reset(self._tokens.pop())
