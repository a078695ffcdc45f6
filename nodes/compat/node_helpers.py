"""ComfyUI's ``node_helpers``: small helpers that core and custom nodes share.

Written from ComfyUI's documented behaviour (spec/comfyui.md section 7). No module state.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import torch
import torch.nn.functional as F
from PIL import ImageFile, UnidentifiedImageError

T = TypeVar("T")
A = TypeVar("A")

_DTYPES: dict[str, torch.dtype] = {
    "fp32": torch.float32,
    "fp16": torch.float16,
    "bf16": torch.bfloat16,
    "fp8_e4m3fn": torch.float8_e4m3fn,
    "fp8_e5m2": torch.float8_e5m2,
}


def pillow(fn: Callable[[A], T], arg: A) -> T:
    """Call a PIL function; on a decoding error retry once with truncated-image loading allowed."""
    try:
        return fn(arg)
    except (OSError, UnidentifiedImageError, ValueError):
        previous = ImageFile.LOAD_TRUNCATED_IMAGES
        ImageFile.LOAD_TRUNCATED_IMAGES = True
        try:
            return fn(arg)
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = previous


def hasher() -> Callable[..., Any]:
    """The hash constructor for file fingerprints (sha256, ComfyUI's default)."""
    return hashlib.sha256


def conditioning_set_values(
    conditioning: list[list[Any]], values: Mapping[str, Any] | None = None, append: bool = False
) -> list[list[Any]]:
    """A copy of ``conditioning`` whose options dicts carry ``values`` (appended to existing ones
    with ``+`` when ``append``)."""
    out: list[list[Any]] = []
    for entry in conditioning:
        options = dict(entry[1])
        for key, value in (values or {}).items():
            if append and options.get(key) is not None:
                value = options[key] + value
            options[key] = value
        out.append([entry[0], options])
    return out


def image_alpha_fix(destination: torch.Tensor, source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Match ``source``'s channel count to ``destination``'s (BHWC): drop its extra channels, or
    give it an opaque alpha channel when ``destination`` has one more."""
    if destination.shape[-1] < source.shape[-1]:
        source = source[..., : destination.shape[-1]]
    elif destination.shape[-1] > source.shape[-1]:
        source = F.pad(source, (0, 1))
        source[..., -1] = 1.0
    return destination, source


def string_to_torch_dtype(string: str) -> torch.dtype | None:
    return _DTYPES.get(string)
