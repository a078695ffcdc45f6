"""Pixel filters: ImageBlend, ImageBlur, ImageSharpen (ComfyUI's image/postprocessing)."""

from __future__ import annotations

from typing import Any

import torch

from nodes.builtin._common import filter2d, gaussian_kernel, on_device
from nodes.compat import node_helpers
from nodes.compat.comfy import utils as comfy_utils

BLEND_MODES = ["normal", "multiply", "screen", "overlay", "soft_light", "difference"]


def _soft_light_d(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x <= 0.25, ((16 * x - 12) * x + 4) * x, torch.sqrt(x))


def blend(base: torch.Tensor, top: torch.Tensor, mode: str) -> torch.Tensor:
    """The W3C compositing blend of ``top`` over ``base`` (no opacity applied)."""
    if mode == "normal":
        return top
    if mode == "multiply":
        return base * top
    if mode == "screen":
        return 1 - (1 - base) * (1 - top)
    if mode == "overlay":
        return torch.where(base <= 0.5, 2 * base * top, 1 - 2 * (1 - base) * (1 - top))
    if mode == "soft_light":
        return torch.where(
            top <= 0.5,
            base - (1 - 2 * top) * base * (1 - base),
            base + (2 * top - 1) * (_soft_light_d(base) - base),
        )
    if mode == "difference":
        return base - top
    raise ValueError(f"Unsupported blend mode: {mode}")


class ImageBlend:
    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "image1": ("IMAGE",),
                "image2": ("IMAGE",),
                "blend_factor": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0, "step": 0.01}),
                "blend_mode": (BLEND_MODES,),
            }
        }

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "blend_images"
    CATEGORY = "image/postprocessing"

    def blend_images(
        self, image1: torch.Tensor, image2: torch.Tensor, blend_factor: float, blend_mode: str
    ) -> tuple[torch.Tensor]:
        image1, image2 = on_device(image1), on_device(image2)
        image1, image2 = node_helpers.image_alpha_fix(image1, image2)
        if image1.shape != image2.shape:
            image2 = comfy_utils.common_upscale(
                image2.movedim(-1, 1), image1.shape[2], image1.shape[1], "bicubic", "center"
            ).movedim(1, -1)
        blended = blend(image1, image2, blend_mode)
        out = image1 * (1 - blend_factor) + blended * blend_factor
        return (torch.clamp(out, 0, 1),)


class ImageBlur:
    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "image": ("IMAGE",),
                "blur_radius": ("INT", {"default": 1, "min": 1, "max": 31, "step": 1}),
                "sigma": ("FLOAT", {"default": 1.0, "min": 0.1, "max": 10.0, "step": 0.1}),
            }
        }

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "blur"
    CATEGORY = "image/postprocessing"

    def blur(self, image: torch.Tensor, blur_radius: int, sigma: float) -> tuple[torch.Tensor]:
        image = on_device(image)
        if blur_radius == 0:
            return (image,)
        kernel = gaussian_kernel(blur_radius * 2 + 1, sigma, image.device)
        return (filter2d(image, kernel),)


class ImageSharpen:
    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "image": ("IMAGE",),
                "sharpen_radius": ("INT", {"default": 1, "min": 1, "max": 31, "step": 1}),
                "sigma": ("FLOAT", {"default": 1.0, "min": 0.1, "max": 10.0, "step": 0.01}),
                "alpha": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 5.0, "step": 0.01}),
            }
        }

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "sharpen"
    CATEGORY = "image/postprocessing"

    def sharpen(self, image: torch.Tensor, sharpen_radius: int, sigma: float, alpha: float) -> tuple[torch.Tensor]:
        image = on_device(image)
        if sharpen_radius == 0:
            return (image,)
        size = sharpen_radius * 2 + 1
        # unsharp kernel: a negative gaussian whose centre makes the whole kernel sum to 1
        kernel = gaussian_kernel(size, sigma, image.device) * -(alpha * 10)
        centre = size // 2
        kernel[centre, centre] = kernel[centre, centre] - kernel.sum() + 1.0
        return (torch.clamp(filter2d(image, kernel), 0, 1),)


NODE_CLASS_MAPPINGS: dict[str, type] = {
    "ImageBlend": ImageBlend,
    "ImageBlur": ImageBlur,
    "ImageSharpen": ImageSharpen,
}

NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {
    "ImageBlend": "Image Blend",
    "ImageBlur": "Image Blur",
    "ImageSharpen": "Image Sharpen",
}
