"""ComfyUI's ``comfy_extras.nodes_latent``: :class:`LatentBatch` and the reshaping helper it uses, model-free."""

from __future__ import annotations

from typing import Any

import torch

from nodes.compat.comfy.utils import common_upscale, repeat_to_batch_size
from nodes.compat.needs_comfyui import node_class


def reshape_latent_to(target_shape: tuple[int, ...] | torch.Size, latent: torch.Tensor,
                      repeat_batch: bool = True) -> torch.Tensor:
    """``latent`` resized (bilinear) to ``target_shape``'s spatial size and, when ``repeat_batch``, to its batch."""
    if tuple(latent.shape[1:]) != tuple(target_shape[1:]):
        latent = common_upscale(latent, target_shape[-1], target_shape[-2], "bilinear", "center")
    return repeat_to_batch_size(latent, target_shape[0]) if repeat_batch else latent


def _batch(samples1: dict[str, Any], samples2: dict[str, Any]) -> tuple[dict[str, Any]]:
    s1, s2 = samples1["samples"], samples2["samples"]
    s2 = reshape_latent_to(s1.shape, s2, repeat_batch=False)
    out = dict(samples1)
    out["samples"] = torch.cat((s1, s2), dim=0)
    out["batch_index"] = (samples1.get("batch_index", list(range(s1.shape[0])))
                          + samples2.get("batch_index", list(range(s2.shape[0]))))
    return (out,)


def _batch_method(self: Any, samples1: dict[str, Any], samples2: dict[str, Any]) -> tuple[dict[str, Any]]:
    return _batch(samples1, samples2)


def _batch_execute(cls: type, samples1: dict[str, Any], samples2: dict[str, Any]) -> tuple[dict[str, Any]]:
    return _batch(samples1, samples2)


LatentBatch = node_class(
    "LatentBatch", required={"samples1": ("LATENT",), "samples2": ("LATENT",)}, returns=("LATENT",),
    function_name="batch", category="latent/batch", module="comfy_extras.nodes_latent",
    implementation=_batch_method, execute=classmethod(_batch_execute),
)

NODE_CLASS_MAPPINGS = {"LatentBatch": LatentBatch}
