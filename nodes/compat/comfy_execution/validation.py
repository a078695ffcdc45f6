"""ComfyUI's ``comfy_execution.validation``: may an output type feed an input type (spec §3)?

Also home of :func:`wildcard_ne`, the ``__ne__`` rule shared by ``comfy.comfy_types.IO`` and the V3
io types: ``"*"`` matches everything, and comma unions match when one side's set of types is a
subset of the other's.
"""

from __future__ import annotations


def wildcard_ne(self: str, value: object) -> bool:
    """``self != value`` for wildcard-aware type strings (``IO.ANY``, V3 io types)."""
    if str.__eq__(self, "*") or (isinstance(value, str) and str.__eq__(value, "*")):
        return False
    if not isinstance(value, str):
        return True
    mine = frozenset(self.split(","))
    theirs = frozenset(value.split(","))
    return not (mine.issubset(theirs) or theirs.issubset(mine))


def _split(type_string: str) -> set[str]:
    return {part.strip() for part in type_string.split(",")}


def validate_node_input(received_type: object, input_type: object, strict: bool = False) -> bool:
    """True when an output of ``received_type`` may be linked to an input of ``input_type``.

    Non-strict is the farm's rule :func:`nodes.types.types_match` (ComfyUI's: first
    ``not (received != expected)`` on the real objects, then a non-empty intersection of the comma
    unions). ``strict=True`` requires every received type to be accepted by the input.
    """
    if not (received_type != input_type):
        return True
    if strict:
        if not isinstance(received_type, str) or not isinstance(input_type, str):
            return False
        return _split(received_type).issubset(_split(input_type))
    from nodes.types import types_match

    return types_match(received_type, input_type)
