"""ComfyUI's list mapping (spec/comfyui.md 5.4), the one implementation nodefarm uses.

Every input of a node arrives as a list. A node without ``INPUT_IS_LIST`` is called once per index
up to the longest list, shorter lists repeating their last element; a node with it is called once
with the whole lists. Execution, ``IS_CHANGED``, ``check_lazy_status`` and ``VALIDATE_INPUTS`` all
map this way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def slices(data: Mapping[str, list[Any]], whole_lists: bool) -> list[tuple[int, dict[str, Any]]]:
    """The calls a node gets: ``(list index, keyword arguments)`` in order.

    No inputs at all: one call without arguments. An input with an empty list: no call (an empty
    list output feeding a node yields empty outputs, where ComfyUI would fail on ``v[-1]``).
    """
    if whole_lists:
        return [(0, dict(data))]
    if not data:
        return [(0, {})]
    if any(len(v) == 0 for v in data.values()):
        return []
    count = max(len(v) for v in data.values())
    return [(i, {k: v[i] if i < len(v) else v[-1] for k, v in data.items()}) for i in range(count)]
