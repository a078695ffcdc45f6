"""V3 ``ui`` helpers (``from comfy_api.latest import ui``): values for ``io.NodeOutput(ui=...)``.

Each helper's :meth:`as_dict` is the ``ui`` dict of the ``executed`` message (spec §10):
``PreviewImage`` saves PNGs in the temp folder and gives ``{"images": [...], "animated": (False,)}``,
``PreviewText`` gives ``{"text": (value,)}``.
"""

from __future__ import annotations

import json
import os
import random
import string
from typing import Any

from nodes.compat.comfy_api.latest._io import FolderType


class _UIOutput:
    def as_dict(self) -> dict[str, Any]:
        raise NotImplementedError


class SavedResult(dict[str, str]):
    """One saved file, as in a ``ui`` ``images`` list: ``{"filename", "subfolder", "type"}``."""

    def __init__(self, filename: str, subfolder: str, type: FolderType | str) -> None:
        folder = type.value if isinstance(type, FolderType) else str(type)
        super().__init__(filename=filename, subfolder=subfolder, type=folder)

    @property
    def filename(self) -> str:
        return self["filename"]

    @property
    def subfolder(self) -> str:
        return self["subfolder"]

    @property
    def type(self) -> str:
        return self["type"]


class SavedImages(_UIOutput):
    def __init__(self, results: list[SavedResult], is_animated: bool = False) -> None:
        self.results = results
        self.is_animated = is_animated

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"images": self.results}
        if self.is_animated:
            data["animated"] = (True,)
        return data


class SavedAudios(_UIOutput):
    def __init__(self, results: list[SavedResult]) -> None:
        self.results = results

    def as_dict(self) -> dict[str, Any]:
        return {"audio": self.results}


def _png_metadata(cls: Any) -> Any:
    from PIL.PngImagePlugin import PngInfo

    from nodes.compat.comfy.cli_args import args

    hidden = getattr(cls, "hidden", None)
    if args.disable_metadata or hidden is None:
        return None
    metadata = PngInfo()
    if hidden.prompt is not None:
        metadata.add_text("prompt", json.dumps(hidden.prompt))
    if isinstance(hidden.extra_pnginfo, dict):
        for key, value in hidden.extra_pnginfo.items():
            metadata.add_text(key, json.dumps(value))
    return metadata


class ImageSaveHelper:
    """Saves an IMAGE batch (B,H,W,C floats in 0..1) as PNGs the way SaveImage/PreviewImage do."""

    @staticmethod
    def save_images(
        images: Any,
        filename_prefix: str,
        folder_type: FolderType | str,
        cls: Any = None,
        compress_level: int = 4,
    ) -> list[SavedResult]:
        import numpy as np
        from PIL import Image

        from nodes.compat import folder_paths

        kind = folder_type.value if isinstance(folder_type, FolderType) else str(folder_type)
        directory = folder_paths.get_directory_by_type(kind)
        if directory is None:
            raise ValueError(f"unknown folder type {kind!r}")
        reserve = getattr(folder_paths, "reserve_save_path", None)
        height, width = int(images[0].shape[0]), int(images[0].shape[1])
        if reserve is not None:
            folder, filename, counter, subfolder, _ = reserve(filename_prefix, directory, width, height, len(images))
        else:
            folder, filename, counter, subfolder, _ = folder_paths.get_save_image_path(
                filename_prefix, directory, width, height
            )
        metadata = _png_metadata(cls)
        results: list[SavedResult] = []
        for batch_number, image in enumerate(images):
            array = np.clip(255.0 * image.cpu().numpy(), 0, 255).astype(np.uint8)
            name = f"{filename.replace('%batch_num%', str(batch_number))}_{counter:05}_.png"
            Image.fromarray(array).save(os.path.join(folder, name), pnginfo=metadata, compress_level=compress_level)
            results.append(SavedResult(name, subfolder, kind))
            counter += 1
        return results

    @staticmethod
    def get_save_images_ui(images: Any, filename_prefix: str, cls: Any = None, compress_level: int = 4) -> SavedImages:
        return SavedImages(ImageSaveHelper.save_images(images, filename_prefix, FolderType.output, cls, compress_level))


class PreviewImage(_UIOutput):
    """Saves ``image`` to the temp folder (PNG, compress level 1) for the node's preview."""

    def __init__(self, image: Any, animated: bool = False, cls: Any = None, **kwargs: Any) -> None:
        suffix = "".join(random.choice(string.ascii_lowercase) for _ in range(5))
        self.values = ImageSaveHelper.save_images(image, f"ComfyUI_temp_{suffix}", FolderType.temp, cls, 1)
        self.animated = animated

    def as_dict(self) -> dict[str, Any]:
        return {"images": self.values, "animated": (self.animated,)}


class PreviewMask(PreviewImage):
    """A MASK (B,H,W) previewed as a greyscale image."""

    def __init__(self, mask: Any, animated: bool = False, cls: Any = None, **kwargs: Any) -> None:
        preview = mask.reshape((-1, 1, mask.shape[-2], mask.shape[-1])).movedim(1, -1).expand(-1, -1, -1, 3)
        super().__init__(preview, animated, cls, **kwargs)


class PreviewText(_UIOutput):
    def __init__(self, value: str, **kwargs: Any) -> None:
        self.value = value

    def as_dict(self) -> dict[str, Any]:
        return {"text": (self.value,)}


class PreviewVideo(_UIOutput):
    def __init__(self, values: list[SavedResult | dict[str, Any]], **kwargs: Any) -> None:
        self.values = values

    def as_dict(self) -> dict[str, Any]:
        return {"images": self.values, "animated": (True,)}


class PreviewUI3D(_UIOutput):
    def __init__(self, model_file: str, camera_info: Any = None, **kwargs: Any) -> None:
        self.model_file = model_file
        self.camera_info = camera_info

    def as_dict(self) -> dict[str, Any]:
        return {"result": [self.model_file, self.camera_info]}


__all__ = [
    "ImageSaveHelper",
    "PreviewImage",
    "PreviewMask",
    "PreviewText",
    "PreviewUI3D",
    "PreviewVideo",
    "SavedAudios",
    "SavedImages",
    "SavedResult",
]
