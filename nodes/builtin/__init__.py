"""nodefarm's builtin node library: ComfyUI's CPU-safe core nodes under their ComfyUI names.

Classes follow the V1 contract (spec/comfyui.md sections 6.2 and 9) with ComfyUI's names, inputs,
defaults, categories and display names; tensor ops run on ``model_management.get_torch_device()``.
One module per noun: :mod:`.io` (load/save/preview), :mod:`.image`, :mod:`.postprocessing`,
:mod:`.latent`, :mod:`.mask`, :mod:`.primitive`.
"""

from __future__ import annotations

from nodes.builtin import image, io, latent, mask, postprocessing, primitive
from nodes.builtin.image import (
    EmptyImage,
    GetImageSize,
    ImageBatch,
    ImageCrop,
    ImageInvert,
    ImageScale,
    ImageScaleBy,
    RebatchImages,
)
from nodes.builtin.io import LoadImage, PreviewImage, SaveImage
from nodes.builtin.latent import EmptyLatentImage, LatentUpscale, LatentUpscaleBy
from nodes.builtin.mask import ImageToMask, InvertMask, MaskToImage, SolidMask
from nodes.builtin.postprocessing import ImageBlend, ImageBlur, ImageSharpen
from nodes.builtin.primitive import (
    MathOperation,
    PrimitiveBoolean,
    PrimitiveFloat,
    PrimitiveInt,
    PrimitiveString,
    PrimitiveStringMultiline,
)

_MODULES = (io, image, postprocessing, latent, mask, primitive)

NODE_CLASS_MAPPINGS: dict[str, type] = {k: v for m in _MODULES for k, v in m.NODE_CLASS_MAPPINGS.items()}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {
    k: v for m in _MODULES for k, v in m.NODE_DISPLAY_NAME_MAPPINGS.items()
}

__all__ = [
    "NODE_CLASS_MAPPINGS",
    "NODE_DISPLAY_NAME_MAPPINGS",
    "EmptyImage",
    "EmptyLatentImage",
    "GetImageSize",
    "ImageBatch",
    "ImageBlend",
    "ImageBlur",
    "ImageCrop",
    "ImageInvert",
    "ImageScale",
    "ImageScaleBy",
    "ImageSharpen",
    "ImageToMask",
    "InvertMask",
    "LatentUpscale",
    "LatentUpscaleBy",
    "LoadImage",
    "MaskToImage",
    "MathOperation",
    "PreviewImage",
    "PrimitiveBoolean",
    "PrimitiveFloat",
    "PrimitiveInt",
    "PrimitiveString",
    "PrimitiveStringMultiline",
    "RebatchImages",
    "SaveImage",
    "SolidMask",
]
