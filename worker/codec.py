"""Node values to bytes and back, without pickle.

A value tree (None, bool, int, float, str, list, tuple, str-keyed dict, torch tensors, numpy arrays,
ExecutionBlocker) becomes JSON with tagged containers. Formats:

* ``b"J" + json`` when the tree holds no tensor;
* ``b"R" + <8-byte LE header length> + header JSON + raw tensor bytes`` otherwise: the header is
  ``{"tree": ..., "tensors": {name: [dtype, shape, offset, nbytes]}}``, offsets relative to the data
  part, which starts 64-byte aligned. Encoding copies each tensor once, into the one buffer that
  goes to Redis (:func:`encode_buffer`, sent without further copies); decoding copies nothing:
  tensors are views of the received bytes (a consumer that writes into an input writes into the
  worker's cached copy, as ComfyUI's in-memory cache behaves).

Anything else raises :class:`NotSerializable`, and the value stays in the producing worker's memory.

Tags: ``{"d": {...}}`` dict, ``{"u": [...]}`` tuple, ``{"t": "i"}`` torch tensor i,
``{"n": "i"}`` numpy array i, ``{"b": msg}`` ExecutionBlocker; lists and scalars are plain JSON.
"""

from __future__ import annotations

import ctypes
import json
import struct
import warnings
from typing import Any

import numpy as np
import torch

from nodes import face
from worker.errors import NotSerializable

ALIGN = 64


def _blocker_type() -> type:
    """The live ExecutionBlocker (the user's ComfyUI's with --comfyui): what decoding makes."""
    return face.live("comfy_execution.graph_utils").ExecutionBlocker  # type: ignore[no-any-return]


def _blocker_types() -> tuple[type, ...]:
    """Every ExecutionBlocker class a value may be an instance of (ComfyUI's and ours)."""
    return face.both("comfy_execution.graph_utils", "ExecutionBlocker")


class _Encoder:
    def __init__(self) -> None:
        self.tensors: dict[str, torch.Tensor] = {}
        self.blocker = _blocker_types()

    def tensor(self, t: torch.Tensor, tag: str) -> dict:
        name = str(len(self.tensors))
        t = t.detach()
        if t.device.type != "cpu":
            t = t.cpu()
        self.tensors[name] = t.contiguous()
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
    return bytes(encode_buffer(value))


def encode_buffer(value: Any) -> bytes | memoryview:
    """``value`` encoded; tensor payloads as a memoryview of one buffer (Redis clients send it as is)."""
    encoder = _Encoder()
    tree = encoder.enc(value)
    if not encoder.tensors:
        return b"J" + json.dumps(tree, separators=(",", ":")).encode()
    table: dict[str, list[Any]] = {}
    offset = 0
    for name, t in encoder.tensors.items():
        n = t.element_size() * t.numel()
        table[name] = [str(t.dtype).removeprefix("torch."), list(t.shape), offset, n]
        offset += -(-n // ALIGN) * ALIGN
    header = json.dumps({"tree": tree, "tensors": table}, separators=(",", ":")).encode()
    start = -(-(9 + len(header)) // ALIGN) * ALIGN
    # np.empty: no zero-filling pass over 64 MB with the GIL held (a bytearray would do one)
    buf = np.empty(start + offset, dtype=np.uint8)
    head = b"R" + struct.pack("<Q", len(header)) + header
    base = buf.ctypes.data
    ctypes.memmove(base, head, len(head))
    for name, t in encoder.tensors.items():
        _dtype, _shape, off, n = table[name]
        if n:  # ctypes calls release the GIL: a 64 MB copy here does not stall the node running meanwhile
            ctypes.memmove(base + start + off, t.data_ptr(), n)
    return memoryview(buf)  # type: ignore[arg-type]  # numpy arrays are buffers


def decode(data: bytes) -> Any:
    kind = data[:1]
    if kind == b"J":
        return _decode_tree(json.loads(data[1:]), {})
    if kind == b"R":
        (n,) = struct.unpack("<Q", data[1:9])
        header = json.loads(data[9 : 9 + n])
        start = -(-(9 + n) // ALIGN) * ALIGN
        tensors: dict[str, torch.Tensor] = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # views of the received bytes: no copy
            for name, (dtype, shape, off, size) in header["tensors"].items():
                kind_ = getattr(torch, dtype)
                if size:
                    raw = torch.frombuffer(data, dtype=torch.uint8, count=size, offset=start + off)
                    tensors[name] = raw.view(kind_).reshape(shape)
                else:
                    tensors[name] = torch.empty(shape, dtype=kind_)
        return _decode_tree(header["tree"], tensors)
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
    blocker = _blocker_types()
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


def model_size(value: Any) -> int | None:
    """The memory a model object holds: ComfyUI's ``ModelPatcher.model_size()``, also through the
    ``patcher`` of its CLIP and VAE objects; None for anything else."""
    for obj in (value, getattr(value, "patcher", None)):
        fn = getattr(obj, "model_size", None)
        if callable(fn):
            try:
                return int(fn())
            except Exception:  # noqa: BLE001 - a size is an estimate; never fail a node for it
                return None
    return None


def nbytes(value: Any) -> int:
    """Rough in-memory size of a value tree, for the worker's LRU (a model counts its weights)."""
    if isinstance(value, torch.Tensor):
        return value.element_size() * value.nelement()
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, (list, tuple)):
        return 64 + sum(nbytes(v) for v in value)
    if isinstance(value, dict):
        return 64 + sum(nbytes(v) for v in value.values())
    size = model_size(value)
    return 64 if size is None else size
