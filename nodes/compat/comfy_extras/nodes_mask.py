"""ComfyUI's ``comfy_extras.nodes_mask``: :func:`composite` and the two masked-composite nodes, model-free."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from nodes.compat.comfy.utils import repeat_to_batch_size
from nodes.compat.needs_comfyui import node_class

MAX_RESOLUTION = 16384


def composite(destination: torch.Tensor, source: torch.Tensor, x: int, y: int, mask: torch.Tensor | None = None,
              multiplier: int = 8, resize_source: bool = False) -> torch.Tensor:
    """Paste ``source`` onto ``destination`` (both B,C,H,W) at pixel ``(x, y)``, in place, and return it.

    ``multiplier`` is the size of one ``destination`` cell in pixels (8 for latents, 1 for images); a
    ``mask`` (H,W or B,H,W) blends, stretched to the source size; the paste is clipped to ``destination``.
    """
    source = source.to(destination.device)
    if resize_source:
        source = F.interpolate(source, size=(destination.shape[-2], destination.shape[-1]), mode="bilinear")
    source = repeat_to_batch_size(source, destination.shape[0])
    x = max(-source.shape[-1] * multiplier, min(x, destination.shape[-1] * multiplier))
    y = max(-source.shape[-2] * multiplier, min(y, destination.shape[-2] * multiplier))
    left, top = x // multiplier, y // multiplier
    right, bottom = left + source.shape[-1], top + source.shape[-2]
    if mask is None:
        mask = torch.ones_like(source)
    else:
        mask = mask.to(destination.device, copy=True).reshape((-1, 1, mask.shape[-2], mask.shape[-1]))
        mask = F.interpolate(mask, size=(source.shape[-2], source.shape[-1]), mode="bilinear")
        mask = repeat_to_batch_size(mask, source.shape[0])
    visible_w = destination.shape[-1] - left + min(0, x)
    visible_h = destination.shape[-2] - top + min(0, y)
    mask = mask[:, :, :visible_h, :visible_w]
    if mask.ndim < source.ndim:
        mask = mask.unsqueeze(1)
    pasted = mask * source[..., :visible_h, :visible_w]
    kept = (1.0 - mask) * destination[..., top:bottom, left:right]
    destination[..., top:bottom, left:right] = pasted + kept
    return destination


def _latent_composite(self: Any, destination: dict[str, Any], source: dict[str, Any], x: int, y: int,
                      resize_source: bool, mask: torch.Tensor | None = None) -> tuple[Any]:
    out = dict(destination)
    samples = destination["samples"].clone()
    out["samples"] = composite(samples, source["samples"], x, y, mask, 8, resize_source)
    return (out,)


def _image_composite(self: Any, destination: torch.Tensor, source: torch.Tensor, x: int, y: int,
                     resize_source: bool, mask: torch.Tensor | None = None) -> tuple[Any]:
    # images are B,H,W,C; composite works on B,C,H,W
    dest = destination.clone().movedim(-1, 1)
    return (composite(dest, source.movedim(-1, 1), x, y, mask, 1, resize_source).movedim(1, -1),)


def _xy(step: int) -> tuple[str, dict[str, int]]:
    return ("INT", {"default": 0, "min": 0, "max": MAX_RESOLUTION, "step": step})


LatentCompositeMasked = node_class(
    "LatentCompositeMasked",
    required={"destination": ("LATENT",), "source": ("LATENT",), "x": _xy(8), "y": _xy(8),
              "resize_source": ("BOOLEAN", {"default": False})},
    optional={"mask": ("MASK",)}, returns=("LATENT",), function_name="composite", category="latent",
    module="comfy_extras.nodes_mask", implementation=_latent_composite,
)
ImageCompositeMasked = node_class(
    "ImageCompositeMasked",
    required={"destination": ("IMAGE",), "source": ("IMAGE",), "x": _xy(1), "y": _xy(1),
              "resize_source": ("BOOLEAN", {"default": False})},
    optional={"mask": ("MASK",)}, returns=("IMAGE",), function_name="composite", category="image",
    module="comfy_extras.nodes_mask", implementation=_image_composite,
)

NODE_CLASS_MAPPINGS = {"LatentCompositeMasked": LatentCompositeMasked, "ImageCompositeMasked": ImageCompositeMasked}
