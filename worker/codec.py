"""Node values to bytes and back, without pickle.

A value tree (None, bool, int, float, str, list, tuple, str-keyed dict, torch tensors, numpy arrays,
ExecutionBlocker) becomes JSON with tagged containers; tensors travel in a safetensors body with
the JSON tree in its ``__metadata__``. Format: ``b"J" + json`` when the tree holds no tensor,
``b"S" + safetensors`` otherwise. Anything else raises :class:`NotSerializable`, and the value
stays in the producing worker's memory.

Tags: ``{"d": {...}}`` dict, ``{"u": [...]}`` tuple, ``{"t": "i"}`` torch tensor i,
``{"n": "i"}`` numpy array i, ``{"b": msg}`` ExecutionBlocker; lists and scalars are plain JSON.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from worker.errors import NotSerializable


def _blocker_type() -> type:
    from nodes.compat.comfy_execution.graph_utils import ExecutionBlocker

    return ExecutionBlocker


class _Encoder:
    def __init__(self) -> None:
        self.tensors: dict[str, torch.Tensor] = {}
        self.blocker = _blocker_type()

    def tensor(self, t: torch.Tensor, tag: str) -> dict:
        name = str(len(self.tensors))
        t = t.detach()
        if t.device.type != "cpu":
            t = t.cpu()
        self.tensors[name] = t.contiguous().clone() if not t.is_contiguous() or t.storage_offset() else t
        return {tag: name}

    def enc(self, v: Any) -> Any:
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        if isinstance(v, torch.Tensor):
            return self.tensor(v, "t")
        if isinstance(v, np.ndarray):
            return self.tensor(torch.from_numpy(np.ascontiguousarray(v)), "n")
        if isinstance(v, (np.integer, np.floating, np.bool_)):
            return v.item()
        if isinstance(v, list):
            return [self.enc(x) for x in v]
        if isinstance(v, tuple):
            return {"u": [self.enc(x) for x in v]}
        if isinstance(v, dict):
            if not all(isinstance(k, str) for k in v):
                raise NotSerializable("dict with non-string keys")
            return {"d": {k: self.enc(x) for k, x in v.items()}}
        if isinstance(v, self.blocker):
            return {"b": getattr(v, "message", None)}
        raise NotSerializable(f"cannot serialize {type(v).__module__}.{type(v).__qualname__}")


def encode(value: Any) -> bytes:
    encoder = _Encoder()
    tree = json.dumps(encoder.enc(value), separators=(",", ":"))
    if not encoder.tensors:
        return b"J" + tree.encode()
    # safetensors refuses tensors sharing storage; give each its own when they do.
    seen: set[int] = set()
    for name, t in encoder.tensors.items():
        ptr = t.untyped_storage().data_ptr() if t.numel() else -1
        if ptr in seen:
            encoder.tensors[name] = t.clone()
        elif ptr != -1:
            seen.add(ptr)
    return b"S" + st_save(encoder.tensors, metadata={"nf": tree})


def _metadata(body: bytes) -> dict:
    (n,) = struct.unpack("<Q", body[:8])
    header = json.loads(body[8 : 8 + n])
    return header.get("__metadata__") or {}


def decode(data: bytes) -> Any:
    kind, body = data[:1], data[1:]
    if kind == b"J":
        return _decode_tree(json.loads(body), {})
    if kind == b"S":
        tree = json.loads(_metadata(body)["nf"])
        return _decode_tree(tree, st_load(body))
    raise ValueError("not a nodefarm value")


def _decode_tree(tree: Any, tensors: dict[str, torch.Tensor]) -> Any:
    blocker = _blocker_type()

    def dec(v: Any) -> Any:
        if isinstance(v, list):
            return [dec(x) for x in v]
        if isinstance(v, dict):
            ((tag, inner),) = v.items()
            if tag == "d":
                return {k: dec(x) for k, x in inner.items()}
            if tag == "u":
                return tuple(dec(x) for x in inner)
            if tag == "t":
                return tensors[inner]
            if tag == "n":
                return tensors[inner].numpy()
            if tag == "b":
                return blocker(inner)
            raise ValueError(f"unknown tag {tag}")
        return v

    return dec(tree)


def serializable(value: Any) -> bool:
    """Whether :func:`encode` would take ``value`` (checked without encoding it)."""
    blocker = _blocker_type()
    stack = [value]
    while stack:
        v = stack.pop()
        if v is None or isinstance(v, (bool, int, float, str, torch.Tensor, np.ndarray, np.integer, np.floating, np.bool_, blocker)):
            continue
        if isinstance(v, (list, tuple)):
            stack.extend(v)
        elif isinstance(v, dict) and all(isinstance(k, str) for k in v):
            stack.extend(v.values())
        else:
            return False
    return True


def nbytes(value: Any) -> int:
    """Rough in-memory size of a value tree, for the worker's LRU."""
    if isinstance(value, torch.Tensor):
        return value.element_size() * value.nelement()
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, (list, tuple)):
        return 64 + sum(nbytes(v) for v in value)
    if isinstance(value, dict):
        return 64 + sum(nbytes(v) for v in value.values())
    return 64
