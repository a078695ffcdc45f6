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


def _canon(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        raise _Unhashable
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, (list, tuple)):
        return [_canon(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _canon(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    raise _Unhashable


def compute_keys(
    graph: Mapping[str, Mapping[str, Any]],
    classes: Mapping[str, type],
    changed: Mapping[str, Any],
    salt: str,
    run_id: str,
    known: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Keys of every node of ``graph``; ``known`` supplies keys of sources outside it (expansion)."""
    keys: dict[str, str] = dict(known or {})
    visiting: set[str] = set()

    def key_of(nid: str) -> str:
        if nid in keys:
            return keys[nid]
        if nid not in graph:
            return UNIQUE + hashlib.sha256(f"{run_id}/missing/{nid}".encode()).hexdigest()
        if nid in visiting:  # a static cycle: cannot be cached
            return UNIQUE + hashlib.sha256(f"{run_id}/{nid}".encode()).hexdigest()
        visiting.add(nid)
        node = graph[nid]
        cls = classes.get(node.get("class_type", ""))
        unique = False
        parts: list[Any] = [node.get("class_type")]
        try:
            parts.append(_canon(changed.get(nid, False)))
        except _Unhashable:
            unique = True
        if cls is not None and (getattr(cls, "NOT_IDEMPOTENT", False) or "UNIQUE_ID" in schema.hidden_inputs(cls).values()):
            parts.append(["id", nid])
        inputs = []
        for name in sorted(node.get("inputs", {})):
            value = node["inputs"][name]
            if is_link(value):
                src_key = key_of(value[0])
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
        visiting.discard(nid)
        if unique:
            key = UNIQUE + hashlib.sha256(f"{run_id}/{nid}".encode()).hexdigest()
        else:
            key = hashlib.sha256(json.dumps(parts, separators=(",", ":"), sort_keys=True).encode()).hexdigest()
        keys[nid] = key
        return key

    for nid in graph:
        key_of(nid)
    return {nid: keys[nid] for nid in graph}
