"""ComfyUI's ``comfy.clip_vision``: CLIP vision models need ComfyUI's model code."""

from __future__ import annotations

from nodes.compat.needs_comfyui import function, model_class

ClipVisionModel = model_class("comfy.clip_vision.ClipVisionModel")
load = function("comfy.clip_vision.load")
load_clipvision_from_sd = function("comfy.clip_vision.load_clipvision_from_sd")


class Output:
    """The result object of a CLIP vision encode (an attribute bag, indexable by name)."""

    def __getitem__(self, key: str) -> object:
        return getattr(self, key)

    def __setitem__(self, key: str, item: object) -> None:
        setattr(self, key, item)
