"""Cache keys: a content hash per node, with ComfyUI's signature rules (spec/comfyui.md 5.8).

``sig(node) = [class_type, is_changed, node id only if NOT_IDEMPOTENT or a hidden UNIQUE_ID input,
sorted (input, constant) and (input, ["L", key(source), socket]) pairs]`` hashed with sha256 over
canonical JSON. Because a link carries its source's key this is a Merkle hash of the node and all
its ancestors, equivalent to ComfyUI's ancestor-list signature: node ids are not part of it, so
identical subgraphs share results across prompts and node ids. A NaN or an unhashable value
anywhere (IS_CHANGED returning NaN, an IS_CHANGED that raised) makes the key unique to this run
(``u:`` prefix), and so are the keys of everything downstream: never a cache hit.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any

from nodes import schema
from nodes.core.graph import is_link

UNIQUE = "u:"  # keys with this prefix are unique to one run: never shared, never deduplicated


def is_unique(key: str) -> bool:
    return key.startswith(UNIQUE)


class _Unhashable(Exception):
    pass


_PLAIN = (str, bool, int, type(None))
_CANONICAL = json.JSONEncoder(separators=(",", ":"), sort_keys=True)  # one encoder, not one per node


def _canon(value: Any) -> Any:
    if type(value) in _PLAIN:
        return value
    if isinstance(value, float):
        if math.isnan(value):
            raise _Unhashable
        return value if math.isfinite(value) else repr(value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_canon(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _canon(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    raise _Unhashable


def _by_id(cls: type | None) -> bool:
    """Whether a class's results are specific to its node id (NOT_IDEMPOTENT, or a UNIQUE_ID input)."""
    return cls is not None and (bool(getattr(cls, "NOT_IDEMPOTENT", False)) or "UNIQUE_ID" in schema.hidden_inputs(cls).values())


def compute_keys(
    graph: Mapping[str, Mapping[str, Any]],
    classes: Mapping[str, type],
    changed: Mapping[str, Any],
    salt: str,
    run_id: str,
    known: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Keys of every node of ``graph``; ``known`` supplies keys of sources outside it (expansion).

    Iterative (a chain of any length, in any order), one class lookup per class.
    """
    keys: dict[str, str] = dict(known or {})
    by_id: dict[str, bool] = {}

    def unique_key(tag: str) -> str:
        return UNIQUE + hashlib.sha256(f"{run_id}/{tag}".encode()).hexdigest()

    links: dict[str, list[str]] = {}

    def sources(nid: str) -> list[str]:
        found = links.get(nid)
        if found is None:
            found = links[nid] = [v[0] for v in graph[nid].get("inputs", {}).values() if is_link(v)]
        return found

    def key_of(nid: str) -> str:
        node = graph[nid]
        class_type = node.get("class_type", "")
        if class_type not in by_id:
            by_id[class_type] = _by_id(classes.get(class_type))
        unique = False
        parts: list[Any] = [class_type]
        try:
            parts.append(_canon(changed.get(nid, False)))
        except _Unhashable:
            unique = True
        if by_id[class_type]:
            parts.append(["id", nid])
        inputs = []
        node_inputs = node.get("inputs", {})
        for name in sorted(node_inputs):
            value = node_inputs[name]
            if is_link(value):
                src = value[0]
                src_key = keys[src] if src in keys else unique_key(f"missing/{src}")
                unique = unique or src_key.startswith(UNIQUE)
                inputs.append([name, ["L", src_key, int(value[1])]])
            else:
                try:
                    inputs.append([name, _canon(value)])
                except _Unhashable:
                    unique = True
        parts.append(inputs)
        if salt:
            parts.append(["salt", salt])
        if unique:
            return unique_key(nid)
        return hashlib.sha256(_CANONICAL.encode(parts).encode()).hexdigest()

    visiting: set[str] = set()
    for root in graph:
        if root in keys:
            continue
        stack = [root]
        while stack:
            nid = stack[-1]
            if nid in keys:
                stack.pop()
                continue
            pending = [s for s in sources(nid) if s in graph and s not in keys and s not in visiting]
            if pending and nid not in visiting:
                visiting.add(nid)
                stack.extend(pending)
                continue
            stack.pop()
            visiting.discard(nid)
            if any(s in graph and s not in keys for s in sources(nid)):
                keys[nid] = unique_key(nid)  # on a static cycle: cannot be cached
            else:
                keys[nid] = key_of(nid)
    return {nid: keys[nid] for nid in graph}
