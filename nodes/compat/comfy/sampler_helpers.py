"""ComfyUI's ``comfy.sampler_helpers``: conditioning and mask preparation for sampling.

The mask and conditioning helpers are model-free and run here; the ones that load the models a
sampling run needs are stand-ins that name ``--comfyui``.
"""

from __future__ import annotations

import uuid
from typing import Any

import torch

from nodes.compat.comfy.utils import repeat_to_batch_size
from nodes.compat.needs_comfyui import function


def prepare_mask(noise_mask: torch.Tensor, shape: tuple[int, ...] | torch.Size, device: Any) -> torch.Tensor:
    """A noise mask resized (bilinear) to the latent ``shape`` (B, C, H, W), repeated over channels and batch."""
    mask = torch.nn.functional.interpolate(
        noise_mask.reshape((-1, 1, noise_mask.shape[-2], noise_mask.shape[-1])),
        size=(shape[2], shape[3]), mode="bilinear",
    )
    mask = torch.cat([mask] * shape[1], dim=1)
    return repeat_to_batch_size(mask, shape[0]).to(device)


def convert_cond(cond: list[Any]) -> list[dict[str, Any]]:
    """``[[tensor, options], ...]`` as the option dicts the sampler reads (``cross_attn``, ``model_conds``, ``uuid``)."""
    out = []
    for tensor, options in cond:
        entry = dict(options)
        model_conds = entry.get("model_conds", {})
        if tensor is not None:
            entry["cross_attn"] = tensor
        entry["model_conds"] = model_conds
        entry["uuid"] = uuid.uuid4()
        out.append(entry)
    return out


def get_models_from_cond(cond: list[Any], model_type: str) -> list[Any]:
    """Every ``model_type`` object (``"control"``, ``"gligen"``) referenced by a conditioning list."""
    models: list[Any] = []
    for entry in cond:
        options = entry[1] if isinstance(entry, (list, tuple)) else entry
        if model_type in options:
            models.append(options[model_type])
    return models


get_additional_models = function("comfy.sampler_helpers.get_additional_models")
cleanup_additional_models = function("comfy.sampler_helpers.cleanup_additional_models")
prepare_sampling = function("comfy.sampler_helpers.prepare_sampling")
cleanup_models = function("comfy.sampler_helpers.cleanup_models")
