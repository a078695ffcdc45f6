"""LATENT nodes: EmptyLatentImage, LatentUpscale, LatentUpscaleBy.

LATENT is a dict ``{"samples": Tensor[B, 4, H/8, W/8], optional "noise_mask", "batch_index"}``.
"""

from __future__ import annotations

from typing import Any

import torch

from nodes.builtin._common import MAX_RESOLUTION, compute_device, on_device
from nodes.compat.comfy import utils as comfy_utils

LATENT_UPSCALE_METHODS = ["nearest-exact", "bilinear", "area", "bicubic", "bislerp"]
CROP_METHODS = ["disabled", "center"]


class EmptyLatentImage:
    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "width": ("INT", {"default": 512, "min": 16, "max": MAX_RESOLUTION, "step": 8,
                                  "tooltip": "The width of the latent images in pixels."}),
                "height": ("INT", {"default": 512, "min": 16, "max": MAX_RESOLUTION, "step": 8,
                                   "tooltip": "The height of the latent images in pixels."}),
                "batch_size": ("INT", {"default": 1, "min": 1, "max": 4096,
                                       "tooltip": "The number of latent images in the batch."}),
            }
        }

    RETURN_TYPES = ("LATENT",)
    OUTPUT_TOOLTIPS = ("The empty latent image batch.",)
    FUNCTION = "generate"
    CATEGORY = "latent"
    DESCRIPTION = "Create a new batch of empty latent images to be denoised via sampling."

    def generate(self, width: int, height: int, batch_size: int = 1) -> tuple[dict[str, torch.Tensor]]:
        latent = torch.zeros([batch_size, 4, height // 8, width // 8], device=compute_device())
        return ({"samples": latent},)


def _upscaled(samples: dict[str, Any], method: str, width: int, height: int, crop: str) -> dict[str, Any]:
    out = dict(samples)
    out["samples"] = comfy_utils.common_upscale(on_device(samples["samples"]), width, height, method, crop)
    return out


class LatentUpscale:
    upscale_methods = LATENT_UPSCALE_METHODS
    crop_methods = CROP_METHODS

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "samples": ("LATENT",),
                "upscale_method": (cls.upscale_methods,),
                "width": ("INT", {"default": 512, "min": 0, "max": MAX_RESOLUTION, "step": 8}),
                "height": ("INT", {"default": 512, "min": 0, "max": MAX_RESOLUTION, "step": 8}),
                "crop": (cls.crop_methods,),
            }
        }

    RETURN_TYPES = ("LATENT",)
    FUNCTION = "upscale"
    CATEGORY = "latent"

    def upscale(
        self, samples: dict[str, Any], upscale_method: str, width: int, height: int, crop: str
    ) -> tuple[dict[str, Any]]:
        if width == 0 and height == 0:
            return (samples,)
        lat = samples["samples"]
        # sizes are in pixels (8 per latent cell); a 0 side keeps the aspect ratio; 64 px at least
        if width == 0:
            height = max(64, height)
            width = max(64, round(lat.shape[-1] * height / lat.shape[-2]))
        elif height == 0:
            width = max(64, width)
            height = max(64, round(lat.shape[-2] * width / lat.shape[-1]))
        else:
            width, height = max(64, width), max(64, height)
        return (_upscaled(samples, upscale_method, width // 8, height // 8, crop),)


class LatentUpscaleBy:
    upscale_methods = LATENT_UPSCALE_METHODS

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "samples": ("LATENT",),
                "upscale_method": (cls.upscale_methods,),
                "scale_by": ("FLOAT", {"default": 1.5, "min": 0.01, "max": 8.0, "step": 0.01}),
            }
        }

    RETURN_TYPES = ("LATENT",)
    FUNCTION = "upscale"
    CATEGORY = "latent"

    def upscale(self, samples: dict[str, Any], upscale_method: str, scale_by: float) -> tuple[dict[str, Any]]:
        lat = samples["samples"]
        width = max(1, round(lat.shape[-1] * scale_by))
        height = max(1, round(lat.shape[-2] * scale_by))
        return (_upscaled(samples, upscale_method, width, height, "disabled"),)


NODE_CLASS_MAPPINGS: dict[str, type] = {
    "EmptyLatentImage": EmptyLatentImage,
    "LatentUpscale": LatentUpscale,
    "LatentUpscaleBy": LatentUpscaleBy,
}

NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {
    "EmptyLatentImage": "Empty Latent Image",
    "LatentUpscale": "Upscale Latent",
    "LatentUpscaleBy": "Upscale Latent By",
}
