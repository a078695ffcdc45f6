"""Node values to bytes and back (worker/codec.py): every value type, without pickle, tensors without copies."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from nodes.compat.comfy_execution.graph_utils import ExecutionBlocker
from worker import codec
from worker.errors import NotSerializable


def roundtrip(value: Any) -> Any:
    return codec.decode(codec.encode(value))


def test_plain_trees_travel_as_json() -> None:
    value = [[1, 2.5, "x", None, True], {"a": [1, {"b": (1, 2)}]}, (3, "y")]
    blob = codec.encode(value)
    assert blob[:1] == b"J"
    assert roundtrip(value) == value
    assert isinstance(roundtrip(value)[1]["a"][1]["b"], tuple)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.int64, torch.uint8, torch.bool])
def test_tensors_of_every_dtype_come_back_equal(dtype: torch.dtype) -> None:
    t = (torch.rand(2, 3, 5) * 10).to(dtype)
    out = roundtrip([[t, "meta"]])
    assert out[0][1] == "meta"
    assert out[0][0].dtype == dtype and out[0][0].shape == t.shape and torch.equal(out[0][0], t)


def test_odd_tensors_shared_storage_views_scalars_and_empty() -> None:
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    value = {"t": base.t(), "slice": base[1:3], "same": base, "scalar": torch.tensor(3.5), "empty": torch.zeros(0, 3)}
    out = roundtrip(value)
    for name, t in value.items():
        assert torch.equal(out[name], t), name
        assert out[name].shape == t.shape


def test_numpy_arrays_and_blockers() -> None:
    arr = np.arange(12, dtype=np.int32).reshape(3, 4)
    out = roundtrip([arr, np.float64(2.5), ExecutionBlocker("why"), ExecutionBlocker(None)])
    assert isinstance(out[0], np.ndarray) and np.array_equal(out[0], arr) and out[1] == 2.5
    assert isinstance(out[2], ExecutionBlocker) and out[2].message == "why" and out[3].message is None


def test_decoding_copies_nothing() -> None:
    """Tensors are views of the received bytes: a 64 MB image costs no second copy on its consumer."""
    t = torch.rand(1, 64, 64, 3)
    blob = codec.encode([[t]])
    out = codec.decode(blob)[0][0]
    start = np.frombuffer(blob, dtype=np.uint8).ctypes.data
    assert start <= out.data_ptr() < start + len(blob)
    assert out.data_ptr() % codec.ALIGN == start % codec.ALIGN


def test_what_cannot_be_serialized_says_so() -> None:
    class Model:
        pass

    for value in ([Model()], {1: "non-string key"}, [object()]):
        assert not codec.serializable(value)
        with pytest.raises(NotSerializable):
            codec.encode(value)
    assert codec.serializable([[torch.zeros(1), {"a": (1, None)}, ExecutionBlocker(None)]])
