"""What a node class declares: inputs, outputs, flags, and its ``/object_info`` entry (spec §3, §6.2).

Works on V1 classes and on V3 ``io.ComfyNode`` subclasses alike: V3 classes carry synthesized V1
attributes (``INPUT_TYPES``, ``RETURN_TYPES``, ``FUNCTION``, ...), so every helper reads those; only
:func:`node_info` asks a V3 class for its own ``GET_NODE_INFO_V1()``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nodes.registry import NodeRegistry

log = logging.getLogger("nodefarm.schema")

SECTIONS = ("required", "optional", "hidden")

# Values of hidden inputs ComfyUI understands (spec §5.3).
HIDDEN_KINDS = frozenset(
    {"PROMPT", "DYNPROMPT", "EXTRA_PNGINFO", "UNIQUE_ID", "AUTH_TOKEN_COMFY_ORG", "API_KEY_COMFY_ORG"}
)


def is_v3(cls: type) -> bool:
    """A V3 ``io.ComfyNode`` subclass (duck-typed: it has a schema)."""
    return hasattr(cls, "GET_SCHEMA") or hasattr(cls, "define_schema")


_memo: ContextVar[dict[type, dict[str, Any]] | None] = ContextVar("nodefarm_input_types", default=None)


@contextmanager
def memoized() -> Iterator[None]:
    """Within this block each class's ``INPUT_TYPES()`` is called once (one prompt's validation or
    admission asks it for every node of the class; its answer does not change within a request)."""
    token = _memo.set({})
    try:
        yield
    finally:
        _memo.reset(token)


def input_types(cls: type) -> dict[str, Any]:
    """``cls.INPUT_TYPES()`` (an empty dict for a class without it or returning None)."""
    memo = _memo.get()
    if memo is not None and cls in memo:
        return memo[cls]
    fn = getattr(cls, "INPUT_TYPES", None)
    if fn is None:
        return {}
    result = fn()
    if result is None:
        result = {}
    if not isinstance(result, Mapping):
        raise TypeError(f"{getattr(cls, '__name__', cls)}.INPUT_TYPES() returned {type(result).__name__}")
    result = dict(result)
    if memo is not None:
        memo[cls] = result
    return result


def input_info(
    cls: type, name: str, types: Mapping[str, Any] | None = None
) -> tuple[Any, str, dict[str, Any]] | None:
    """``(type, section, options)`` of input ``name``, or None when the class does not declare it.

    Sections are searched in the order required, optional, hidden. An entry is ``[TYPE]`` or
    ``[TYPE, {options}]``; hidden entries are bare strings in V1 (``"UNIQUE_ID"``) and 1-tuples in
    V3. ``options`` is ``{}`` when absent (or not a dict). ``types`` is a pre-fetched
    :func:`input_types` result.
    """
    if types is None:
        types = input_types(cls)
    for section in SECTIONS:
        entries = types.get(section)
        if not isinstance(entries, Mapping) or name not in entries:
            continue
        entry = entries[name]
        if isinstance(entry, str) or not isinstance(entry, list | tuple):
            return entry, section, {}
        if len(entry) == 0:
            return None, section, {}
        options = entry[1] if len(entry) > 1 and isinstance(entry[1], dict) else {}
        return entry[0], section, options
    return None


def declared_inputs(cls: type, types: Mapping[str, Any] | None = None) -> list[str]:
    """Names of the required then optional inputs, in declaration order, each once."""
    if types is None:
        types = input_types(cls)
    names: list[str] = []
    for section in ("required", "optional"):
        entries = types.get(section)
        if isinstance(entries, Mapping):
            names.extend(n for n in entries if n not in names)
    return names


def hidden_inputs(cls: type, types: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Hidden inputs the executor fills: kwarg name -> kind (one of :data:`HIDDEN_KINDS`).

    V1 declares ``{"unique_id": "UNIQUE_ID"}``; V3's synthesized form ``{"unique_id": ("UNIQUE_ID",)}``
    is accepted too. Any other hidden entry (upstream's for-loop nodes declare ``{"initial_value0":
    ("*",)}``) is not filled by the executor: like ComfyUI, such an input only carries the constant
    the prompt gives it, so it is left out here.
    """
    if types is None:
        types = input_types(cls)
    entries = types.get("hidden")
    if not isinstance(entries, Mapping):
        return {}
    out: dict[str, str] = {}
    for name, entry in entries.items():
        kind = entry[0] if isinstance(entry, list | tuple) and entry else entry
        if isinstance(kind, str) and str.__str__(kind) in HIDDEN_KINDS:
            out[name] = str.__str__(kind)
    return out


def inputs_with_option(cls: type, option: str, types: Mapping[str, Any] | None = None) -> frozenset[str]:
    """Required/optional inputs whose options set ``option`` truthy (e.g. ``"lazy"``, ``"rawLink"``)."""
    if types is None:
        types = input_types(cls)
    found: set[str] = set()
    for name in declared_inputs(cls, types):
        info = input_info(cls, name, types)
        if info is not None and info[2].get(option):
            found.add(name)
    return frozenset(found)


def is_output_node(cls: type) -> bool:
    """``OUTPUT_NODE is True`` (what ComfyUI's validation uses to pick outputs)."""
    return getattr(cls, "OUTPUT_NODE", False) is True


def return_types(cls: type) -> tuple[Any, ...]:
    """``RETURN_TYPES`` as a tuple (empty when absent)."""
    return tuple(getattr(cls, "RETURN_TYPES", None) or ())


def output_is_list(cls: type) -> tuple[bool, ...]:
    """One bool per output: ``OUTPUT_IS_LIST`` (missing entries False) or all False."""
    n = len(return_types(cls))
    flags = [bool(f) for f in (getattr(cls, "OUTPUT_IS_LIST", None) or ())][:n]
    return tuple(flags + [False] * (n - len(flags)))


def input_is_list(cls: type) -> bool:
    """``INPUT_IS_LIST``: the function is called once with every input as a full list."""
    return bool(getattr(cls, "INPUT_IS_LIST", False))


def _json_fallback(value: Any) -> Any:
    if isinstance(value, set | frozenset):
        return list(value)
    return str(value)


def _jsonable(value: Any) -> Any:
    """A JSON round trip: tuples become lists; unknown objects become their ``str``."""
    return json.loads(json.dumps(value, default=_json_fallback))


def node_info(name: str, cls: type, display_name: str | None = None) -> dict[str, Any]:
    """The ``/object_info`` entry of one class (spec §3), JSON-ready.

    A V3 class answers with its own ``GET_NODE_INFO_V1()`` when it has one. ``display_name``
    defaults to ``name``.
    """
    if is_v3(cls) and hasattr(cls, "GET_NODE_INFO_V1"):
        info_v3 = _jsonable(cls.GET_NODE_INFO_V1())
        info_v3.setdefault("name", name)
        info_v3.setdefault("display_name", display_name or name)
        return info_v3
    types = input_types(cls)
    output = list(return_types(cls))
    info: dict[str, Any] = {
        "input": _jsonable(types),
        "input_order": {
            section: list(entries.keys())
            for section, entries in types.items()
            if isinstance(entries, Mapping)
        },
        "output": _jsonable(output),
        "output_is_list": (
            _jsonable(cls.OUTPUT_IS_LIST) if hasattr(cls, "OUTPUT_IS_LIST") else [False] * len(output)
        ),
        "output_name": _jsonable(cls.RETURN_NAMES) if hasattr(cls, "RETURN_NAMES") else _jsonable(output),
        "name": name,
        "display_name": display_name or name,
        "description": getattr(cls, "DESCRIPTION", ""),
        "python_module": getattr(cls, "RELATIVE_PYTHON_MODULE", "nodes"),
        "category": getattr(cls, "CATEGORY", "sd"),
        "output_node": is_output_node(cls),
    }
    if hasattr(cls, "OUTPUT_TOOLTIPS"):
        info["output_tooltips"] = _jsonable(cls.OUTPUT_TOOLTIPS)
    if getattr(cls, "DEPRECATED", False):
        info["deprecated"] = True
    if getattr(cls, "EXPERIMENTAL", False):
        info["experimental"] = True
    if hasattr(cls, "API_NODE"):
        info["api_node"] = cls.API_NODE
    return info


def object_info(registry: NodeRegistry) -> dict[str, dict[str, Any]]:
    """``GET /object_info``: every registered class; one whose info raises is logged and skipped."""
    out: dict[str, dict[str, Any]] = {}
    for name, cls in registry.classes.items():
        try:
            out[name] = node_info(name, cls, registry.display_names.get(name, name))
        except Exception:
            log.exception("An error occurred while retrieving information for the '%s' node.", name)
    return out
