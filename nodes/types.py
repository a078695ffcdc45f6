"""Socket type compatibility: may an output of type ``received`` feed an input of type ``expected``?

Used by validation (``return_type_mismatch``, spec §1.4) for every declared linked input.
"""

from __future__ import annotations

from typing import Any

WILDCARD = "*"
COMBO = "COMBO"


def types_match(received: object, expected: object) -> bool:
    """ComfyUI's ``validate_node_input`` rule (spec §3, "``*`` semantics"), plus two farm rules.

    In order:

    1. ``not (received != expected)`` evaluated on the real Python objects. Python tries a str
       subclass' reflected ``__ne__`` first, so an ``AnyType``/``IO.ANY``/``SmartType`` whose
       ``__ne__`` says "not different" acts as a wildcard on *either* side, and ``IO``'s subset rule
       applies exactly as upstream.
    2. **Deviation:** a plain ``"*"`` on either side is a wildcard. ComfyUI 0.3.64 rejects an IMAGE
       linked into a plain ``"*"`` input (a plain str is not special there), but the editor treats
       ``"*"`` as "any type" and lets users draw that link, so the farm accepts it.
    3. Combos compare as the frontend does: the editor gives every list-typed (V1 combo) socket the
       slot type ``"COMBO"``. So a list on either side is read as ``"COMBO"``: a list output feeds any
       list or ``"COMBO"`` input and a ``"COMBO"`` output feeds a list input (upstream's backend only
       accepts an *equal* list there). ``"STRING"`` does not feed a combo.
    4. Both sides are split on ``,`` (items stripped) and must share at least one type; a ``"*"``
       item in a union is a wildcard too (follows from rule 2).

    Anything else that is not a string (None, numbers, objects) only matches through rule 1.
    """
    if not (received != expected):
        return True
    received_s = _as_type_string(received)
    expected_s = _as_type_string(expected)
    if received_s is None or expected_s is None:
        return False
    received_set = _split(received_s)
    expected_set = _split(expected_s)
    if WILDCARD in received_set or WILDCARD in expected_set:
        return True
    return bool(received_set & expected_set)


def _as_type_string(value: Any) -> str | None:
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, list | tuple):
        return COMBO
    return None


def _split(type_string: str) -> set[str]:
    return {part.strip() for part in type_string.split(",")}
