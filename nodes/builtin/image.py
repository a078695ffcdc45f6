"""IMAGE transforms: EmptyImage, ImageInvert, ImageScale(By), ImageBatch, ImageCrop, GetImageSize,
RebatchImages. IMAGE is float32 [B, H, W, C] in 0..1."""

from __future__ import annotations

from typing import Any

import torch

from nodes.builtin._common import MAX_RESOLUTION, compute_device, on_device
from nodes.compat import node_helpers
from nodes.compat.comfy import utils as comfy_utils

UPSCALE_METHODS = ["nearest-exact", "bilinear", "area", "bicubic", "lanczos"]
CROP_METHODS = ["disabled", "center"]


class EmptyImage:
    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "width": ("INT", {"default": 512, "min": 1, "max": MAX_RESOLUTION, "step": 1}),
                "height": ("INT", {"default": 512, "min": 1, "max": MAX_RESOLUTION, "step": 1}),
                "batch_size": ("INT", {"default": 1, "min": 1, "max": 4096}),
                "color": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFF, "step": 1, "display": "color"}),
            }
        }

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "generate"
    CATEGORY = "image"

    def generate(self, width: int, height: int, batch_size: int = 1, color: int = 0) -> tuple[torch.Tensor]:
        rgb = torch.tensor(
            [((color >> 16) & 0xFF) / 0xFF, ((color >> 8) & 0xFF) / 0xFF, (color & 0xFF) / 0xFF],
            dtype=torch.float32, device=compute_device(),
        )
        return (rgb.expand(batch_size, height, width, 3).contiguous(),)


class ImageInvert:
    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"image": ("IMAGE",)}}

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "invert"
    CATEGORY = "image"

    def invert(self, image: torch.Tensor) -> tuple[torch.Tensor]:
        return (1.0 - on_device(image),)


class ImageScale:
    upscale_methods = UPSCALE_METHODS
    crop_methods = CROP_METHODS

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "image": ("IMAGE",),
                "upscale_method": (cls.upscale_methods,),
                "width": ("INT", {"default": 512, "min": 0, "max": MAX_RESOLUTION, "step": 1}),
                "height": ("INT", {"default": 512, "min": 0, "max": MAX_RESOLUTION, "step": 1}),
                "crop": (cls.crop_methods,),
            }
        }

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "upscale"
    CATEGORY = "image/upscaling"

    def upscale(self, image: torch.Tensor, upscale_method: str, width: int, height: int, crop: str) -> tuple[torch.Tensor]:
        image = on_device(image)
        if width == 0 and height == 0:
            return (image,)
        samples = image.movedim(-1, 1)
        if width == 0:  # keep the aspect ratio
            width = max(1, round(samples.shape[3] * height / samples.shape[2]))
        elif height == 0:
            height = max(1, round(samples.shape[2] * width / samples.shape[3]))
        out = comfy_utils.common_upscale(samples, width, height, upscale_method, crop)
        return (out.movedim(1, -1),)


class ImageScaleBy:
    upscale_methods = UPSCALE_METHODS

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "image": ("IMAGE",),
                "upscale_method": (cls.upscale_methods,),
                "scale_by": ("FLOAT", {"default": 1.0, "min": 0.01, "max": 8.0, "step": 0.01}),
            }
        }

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "upscale"
    CATEGORY = "image/upscaling"

    def upscale(self, image: torch.Tensor, upscale_method: str, scale_by: float) -> tuple[torch.Tensor]:
        samples = on_device(image).movedim(-1, 1)
        width = max(1, round(samples.shape[3] * scale_by))
        height = max(1, round(samples.shape[2] * scale_by))
        out = comfy_utils.common_upscale(samples, width, height, upscale_method, "disabled")
        return (out.movedim(1, -1),)


class ImageBatch:
    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"image1": ("IMAGE",), "image2": ("IMAGE",)}}

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "batch"
    CATEGORY = "image"

    def batch(self, image1: torch.Tensor, image2: torch.Tensor) -> tuple[torch.Tensor]:
        image1, image2 = on_device(image1), on_device(image2)
        if image1.shape[-1] != image2.shape[-1]:
            if image1.shape[-1] < image2.shape[-1]:
                image2, image1 = node_helpers.image_alpha_fix(image2, image1)
            else:
                image1, image2 = node_helpers.image_alpha_fix(image1, image2)
        if image1.shape[1:3] != image2.shape[1:3]:
            image2 = comfy_utils.common_upscale(
                image2.movedim(-1, 1), image1.shape[2], image1.shape[1], "bilinear", "center"
            ).movedim(1, -1)
        return (torch.cat((image1, image2), dim=0),)


class ImageCrop:
    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "image": ("IMAGE",),
                "width": ("INT", {"default": 512, "min": 1, "max": MAX_RESOLUTION, "step": 1}),
                "height": ("INT", {"default": 512, "min": 1, "max": MAX_RESOLUTION, "step": 1}),
                "x": ("INT", {"default": 0, "min": 0, "max": MAX_RESOLUTION, "step": 1}),
                "y": ("INT", {"default": 0, "min": 0, "max": MAX_RESOLUTION, "step": 1}),
            }
        }

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "crop"
    CATEGORY = "image/transform"

    def crop(self, image: torch.Tensor, width: int, height: int, x: int, y: int) -> tuple[torch.Tensor]:
        image = on_device(image)
        x = min(x, image.shape[2] - 1)
        y = min(y, image.shape[1] - 1)
        return (image[:, y:y + height, x:x + width, :],)


class GetImageSize:
    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"image": ("IMAGE",)}}

    RETURN_TYPES = ("INT", "INT", "INT")
    RETURN_NAMES = ("width", "height", "batch_size")
    FUNCTION = "get_size"
    CATEGORY = "image"
    DESCRIPTION = "Returns the width, height and batch size of an image."

    def get_size(self, image: torch.Tensor) -> tuple[int, int, int]:
        return int(image.shape[2]), int(image.shape[1]), int(image.shape[0])


class RebatchImages:
    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "images": ("IMAGE",),
                "batch_size": ("INT", {"default": 1, "min": 1, "max": 4096}),
            }
        }

    RETURN_TYPES = ("IMAGE",)
    INPUT_IS_LIST = True
    OUTPUT_IS_LIST = (True,)
    FUNCTION = "rebatch"
    CATEGORY = "image/batch"

    def rebatch(self, images: list[torch.Tensor], batch_size: list[int]) -> tuple[list[torch.Tensor]]:
        size = int(batch_size[0])
        singles = [on_device(img)[i:i + 1] for img in images for i in range(img.shape[0])]
        return ([torch.cat(singles[i:i + size], dim=0) for i in range(0, len(singles), size)],)


NODE_CLASS_MAPPINGS: dict[str, type] = {
    "EmptyImage": EmptyImage,
    "ImageInvert": ImageInvert,
    "ImageScale": ImageScale,
    "ImageScaleBy": ImageScaleBy,
    "ImageBatch": ImageBatch,
    "ImageCrop": ImageCrop,
    "GetImageSize": GetImageSize,
    "RebatchImages": RebatchImages,
}

NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {
    "ImageInvert": "Invert Image",
    "ImageScale": "Upscale Image",
    "ImageScaleBy": "Upscale Image By",
    "ImageBatch": "Batch Images",
    "ImageCrop": "Image Crop",
    "GetImageSize": "Get Image Size",
    "RebatchImages": "Rebatch Images",
}
