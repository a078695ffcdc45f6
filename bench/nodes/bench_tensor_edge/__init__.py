"""Bench node pack of bench/tensor_edge.py: a tensor handed from a producer node to a consumer node.

Both nodes append one JSON line to ``$NODEFARM_TEST_MARKS/<tag>.producer`` / ``<tag>.consumer``:
wall-clock time (``time.time()``: the processes share one host clock), the tensor's ``data_ptr``,
the worker (``NODEFARM_WORKER_NAME``) and process. The producer marks the moment it returns, the
consumer the moment it is entered; the difference is the cost of the edge.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import torch


def _mark(name: str, record: dict[str, Any]) -> None:
    folder = os.environ.get("NODEFARM_TEST_MARKS")
    if folder:
        with open(Path(folder) / name, "a") as fh:
            fh.write(json.dumps(record) + "\n")


def _where() -> dict[str, Any]:
    return {"worker": os.environ.get("NODEFARM_WORKER_NAME", ""), "pid": os.getpid()}


class BenchTensorProducer:
    """An IMAGE [1, height, width, 3] float32 filled from ``seed``; its first value is the seed."""

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "seed": ("INT", {"default": 0, "min": 0, "max": 2**24}),  # exact in float32
            "height": ("INT", {"default": 8, "min": 1, "max": 16384}),
            "width": ("INT", {"default": 8, "min": 1, "max": 16384}),
            "tag": ("STRING", {"default": "edge"}),
        }}

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "run"
    CATEGORY = "bench"

    def run(self, seed: int, height: int, width: int, tag: str) -> tuple[torch.Tensor]:
        image = torch.full((1, height, width, 3), (seed % 997) / 997.0, dtype=torch.float32)
        image[0, 0, 0, 0] = float(seed)
        record = {"seed": seed, "bytes": image.nbytes, "ptr": image.data_ptr(), **_where()}
        record["t"] = time.time()
        _mark(f"{tag}.producer", record)
        return (image,)


class BenchTensorConsumer:
    """Marks its entry and returns the image's first value (the producer's seed)."""

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "image": ("IMAGE",),
            "tag": ("STRING", {"default": "edge"}),
            # a new variant is a new consumer (not cached) of the same producer (cached)
            "variant": ("INT", {"default": 0, "min": 0, "max": 2**31 - 1}),
        }}

    RETURN_TYPES = ("FLOAT",)
    FUNCTION = "run"
    CATEGORY = "bench"

    def run(self, image: torch.Tensor, tag: str, variant: int) -> tuple[float]:
        t = time.time()
        seed = float(image[0, 0, 0, 0])
        _mark(f"{tag}.consumer", {"t": t, "seed": int(seed), "variant": variant, "bytes": image.nbytes,
                                  "ptr": image.data_ptr(), **_where()})
        return (seed,)


NODE_CLASS_MAPPINGS = {"BenchTensorProducer": BenchTensorProducer, "BenchTensorConsumer": BenchTensorConsumer}
NODE_DISPLAY_NAME_MAPPINGS = {"BenchTensorProducer": "Bench tensor producer", "BenchTensorConsumer": "Bench tensor consumer"}
