"""The node this process is executing, in one ``ContextVar``.

The task body sets it around a node's execution; the hooks ComfyUI's globals call into (progress
bars, previews, ``send_sync``, the interrupt check; ``worker/hooks.py``) read it to know which run
and node they report for. Outside a node it is None.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from nodes.core.state import NodeSpec, RunState


@dataclass
class NodeContext:
    pid: str
    nid: str
    client_id: str | None
    spec: NodeSpec

    def view(self) -> RunState:
        """A run state that knows this node (for event payloads: display, parent and real ids)."""
        return RunState(self.pid, self.client_id, [], nodes={self.nid: self.spec})


_current: ContextVar[NodeContext | None] = ContextVar("nodefarm_node", default=None)


def current() -> NodeContext | None:
    return _current.get()


@contextmanager
def executing(ctx: NodeContext) -> Iterator[NodeContext]:
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)
