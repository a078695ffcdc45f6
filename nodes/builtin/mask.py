"""MASK nodes: SolidMask, InvertMask, MaskToImage, ImageToMask. MASK is float32 [B, H, W] in 0..1."""

from __future__ import annotations

from typing import Any

import torch

from nodes.builtin._common import MAX_RESOLUTION, compute_device, on_device

CHANNELS = ["red", "green", "blue", "alpha"]


class SolidMask:
    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "value": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01}),
                "width": ("INT", {"default": 512, "min": 1, "max": MAX_RESOLUTION, "step": 1}),
                "height": ("INT", {"default": 512, "min": 1, "max": MAX_RESOLUTION, "step": 1}),
            }
        }

    RETURN_TYPES = ("MASK",)
    FUNCTION = "solid"
    CATEGORY = "mask"

    def solid(self, value: float, width: int, height: int) -> tuple[torch.Tensor]:
        return (torch.full((1, height, width), value, dtype=torch.float32, device=compute_device()),)


class InvertMask:
    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"mask": ("MASK",)}}

    RETURN_TYPES = ("MASK",)
    FUNCTION = "invert"
    CATEGORY = "mask"

    def invert(self, mask: torch.Tensor) -> tuple[torch.Tensor]:
        return (1.0 - on_device(mask),)


class MaskToImage:
    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"mask": ("MASK",)}}

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "mask_to_image"
    CATEGORY = "mask"

    def mask_to_image(self, mask: torch.Tensor) -> tuple[torch.Tensor]:
        mask = on_device(mask)
        flat = mask.reshape((-1, mask.shape[-2], mask.shape[-1]))
        return (flat.unsqueeze(-1).expand(-1, -1, -1, 3).contiguous(),)


class ImageToMask:
    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"image": ("IMAGE",), "channel": (CHANNELS,)}}

    RETURN_TYPES = ("MASK",)
    FUNCTION = "image_to_mask"
    CATEGORY = "mask"

    def image_to_mask(self, image: torch.Tensor, channel: str) -> tuple[torch.Tensor]:
        index = CHANNELS.index(channel)
        if index >= image.shape[-1]:
            raise ValueError(f"ImageToMask: the image has no {channel} channel ({image.shape[-1]} channels)")
        return (on_device(image)[:, :, :, index],)


NODE_CLASS_MAPPINGS: dict[str, type] = {
    "SolidMask": SolidMask,
    "InvertMask": InvertMask,
    "MaskToImage": MaskToImage,
    "ImageToMask": ImageToMask,
}

NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {
    "ImageToMask": "Convert Image to Mask",
    "MaskToImage": "Convert Mask to Image",
}
