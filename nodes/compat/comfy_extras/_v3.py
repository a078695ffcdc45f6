"""The ``execute`` classmethod ComfyUI's V3 nodes have, for stand-ins of nodes that became V3."""

from __future__ import annotations

from typing import Any

from nodes.compat.needs_comfyui import fail


def raising_execute(name: str) -> classmethod:  # type: ignore[type-arg]
    def execute(cls: type, *args: Any, **kwargs: Any) -> Any:
        fail(name)

    return classmethod(execute)
