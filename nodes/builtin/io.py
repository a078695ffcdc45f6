"""Image files in and out: LoadImage (input dir), SaveImage (output dir), PreviewImage (temp dir)."""

from __future__ import annotations

import json
import os
import secrets
import string
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps, ImageSequence
from PIL.PngImagePlugin import PngInfo

from nodes.builtin._common import tensor_to_pil
from nodes.compat import folder_paths, node_helpers

# Multi-frame formats whose extra frames are not a batch (MPO: stereo/preview pairs from cameras).
_SINGLE_FRAME_FORMATS = ("MPO",)


def _frame_mask(frame: Image.Image) -> torch.Tensor | None:
    """``1 - alpha`` of a frame, or None when it has no transparency."""
    if "A" in frame.getbands():
        alpha = np.array(frame.getchannel("A")).astype(np.float32) / 255.0
    elif frame.mode == "P" and "transparency" in frame.info:
        alpha = np.array(frame.convert("RGBA").getchannel("A")).astype(np.float32) / 255.0
    else:
        return None
    return 1.0 - torch.from_numpy(alpha)


class LoadImage:
    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        input_dir = folder_paths.get_input_directory()
        files = [f for f in os.listdir(input_dir) if os.path.isfile(os.path.join(input_dir, f))]
        files = folder_paths.filter_files_content_types(files, ["image"])
        return {"required": {"image": (sorted(files), {"image_upload": True})}}

    CATEGORY = "image"
    RETURN_TYPES = ("IMAGE", "MASK")
    FUNCTION = "load_image"

    def load_image(self, image: str) -> tuple[torch.Tensor, torch.Tensor]:
        path = folder_paths.get_annotated_filepath(image)
        img = node_helpers.pillow(Image.open, path)
        images: list[torch.Tensor] = []
        masks: list[torch.Tensor | None] = []
        size: tuple[int, int] | None = None
        for raw in ImageSequence.Iterator(img):
            frame = node_helpers.pillow(ImageOps.exif_transpose, raw) or raw
            if frame.mode == "I":
                frame = frame.point(lambda v: v * (1 / 255))
            rgb = frame.convert("RGB")
            if size is None:
                size = rgb.size
            if rgb.size != size:
                continue  # frames of another size cannot join the batch
            images.append(torch.from_numpy(np.array(rgb).astype(np.float32) / 255.0)[None,])
            masks.append(_frame_mask(frame))
        if len(images) > 1 and img.format in _SINGLE_FRAME_FORMATS:
            images, masks = images[:1], masks[:1]
        return torch.cat(images, dim=0), _stack_masks(masks, size or (64, 64))

    @classmethod
    def IS_CHANGED(cls, image: str) -> str:
        digest = node_helpers.hasher()()
        with open(folder_paths.get_annotated_filepath(image), "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        return str(digest.digest().hex())

    @classmethod
    def VALIDATE_INPUTS(cls, image: str) -> bool | str:
        if not folder_paths.exists_annotated_filepath(image):
            return f"Invalid image file: {image}"
        return True


def _stack_masks(masks: list[torch.Tensor | None], size: tuple[int, int]) -> torch.Tensor:
    """One MASK batch: frames without alpha are 64x64 zeros, or zeros of the frame size when other
    frames of the batch carry a real mask."""
    width, height = size
    has_alpha = any(m is not None for m in masks)
    shape = (height, width) if has_alpha else (64, 64)
    filled = [m if m is not None else torch.zeros(shape, dtype=torch.float32) for m in masks]
    return torch.stack(filled, dim=0)


class SaveImage:
    def __init__(self) -> None:
        self.output_dir = folder_paths.get_output_directory()
        self.type = "output"
        self.prefix_append = ""
        self.compress_level = 4

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "The images to save."}),
                "filename_prefix": ("STRING", {
                    "default": "ComfyUI",
                    "tooltip": "The prefix for the file to save. This may include formatting information such as "
                    "%date:yyyy-MM-dd% or %Empty Latent Image.width% to include values from nodes.",
                }),
            },
            "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"},
        }

    RETURN_TYPES = ()
    FUNCTION = "save_images"
    OUTPUT_NODE = True
    CATEGORY = "image"
    DESCRIPTION = "Saves the input images to your ComfyUI output directory."

    def save_images(
        self,
        images: torch.Tensor,
        filename_prefix: str = "ComfyUI",
        prompt: dict[str, Any] | None = None,
        extra_pnginfo: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        filename_prefix += self.prefix_append
        height, width = int(images[0].shape[0]), int(images[0].shape[1])
        folder, filename, counter, subfolder, _ = folder_paths.reserve_save_path(
            filename_prefix, self.output_dir, width, height, batch=len(images)
        )
        results: list[dict[str, str]] = []
        for batch_number, image in enumerate(images):
            metadata: PngInfo | None = None
            if not folder_paths.disable_metadata:
                metadata = PngInfo()
                if prompt is not None:
                    metadata.add_text("prompt", json.dumps(prompt))
                for key, value in (extra_pnginfo or {}).items():
                    metadata.add_text(key, json.dumps(value))
            file = f"{filename.replace('%batch_num%', str(batch_number))}_{counter:05}_.png"
            tensor_to_pil(image).save(
                os.path.join(folder, file), pnginfo=metadata, compress_level=self.compress_level
            )
            results.append({"filename": file, "subfolder": subfolder, "type": self.type})
            counter += 1
        return {"ui": {"images": results}}


class PreviewImage(SaveImage):
    def __init__(self) -> None:
        self.output_dir = folder_paths.get_temp_directory()
        self.type = "temp"
        self.prefix_append = "_temp_" + "".join(secrets.choice(string.ascii_lowercase) for _ in range(5))
        self.compress_level = 1

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {"images": ("IMAGE",)},
            "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"},
        }


NODE_CLASS_MAPPINGS: dict[str, type] = {
    "LoadImage": LoadImage,
    "SaveImage": SaveImage,
    "PreviewImage": PreviewImage,
}

NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {
    "LoadImage": "Load Image",
    "SaveImage": "Save Image",
    "PreviewImage": "Preview Image",
}
