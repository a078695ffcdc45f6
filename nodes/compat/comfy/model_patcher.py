"""ComfyUI's ``comfy.model_patcher``, reduced to what importing a pack needs.

nodefarm's builtin library has no diffusion models: :class:`ModelPatcher` exists so that packs can
import it, subclass it and ``isinstance``-check against it; patching a real model raises.
"""

from __future__ import annotations

import copy
from typing import Any

from nodes.compat.needs_comfyui import fail


class ModelPatcher:
    def __init__(
        self,
        model: Any,
        load_device: Any,
        offload_device: Any,
        size: int = 0,
        weight_inplace_update: bool = False,
    ) -> None:
        self.model = model
        self.load_device = load_device
        self.offload_device = offload_device
        self.size = size
        self.weight_inplace_update = weight_inplace_update
        self.patches: dict[str, list[Any]] = {}
        self.object_patches: dict[str, Any] = {}
        self.model_options: dict[str, Any] = {"transformer_options": {}}
        self.parent: ModelPatcher | None = None

    def model_size(self) -> int:
        return self.size

    def clone(self) -> ModelPatcher:
        clone = copy.copy(self)
        clone.patches = {key: list(value) for key, value in self.patches.items()}
        clone.object_patches = dict(self.object_patches)
        clone.model_options = copy.deepcopy(self.model_options)
        clone.parent = self
        return clone

    def is_clone(self, other: Any) -> bool:
        return isinstance(other, ModelPatcher) and other.model is self.model

    def add_object_patch(self, name: str, obj: Any) -> None:
        self.object_patches[name] = obj

    def add_patches(self, patches: dict[str, Any], strength_patch: float = 1.0, strength_model: float = 1.0) -> list[str]:
        for key, value in patches.items():
            self.patches.setdefault(key, []).append((strength_patch, value, strength_model))
        return list(patches)

    def get_key_patches(self, filter_prefix: str | None = None) -> dict[str, Any]:
        return {}

    def set_model_patch(self, patch: Any, name: str) -> None:
        patches = self.model_options["transformer_options"].setdefault("patches", {})
        patches.setdefault(name, []).append(patch)

    def patch_model(self, *args: Any, **kwargs: Any) -> Any:
        fail("comfy.model_patcher.ModelPatcher.patch_model")

    def unpatch_model(self, *args: Any, **kwargs: Any) -> Any:
        fail("comfy.model_patcher.ModelPatcher.unpatch_model")

    def get_model_object(self, name: str) -> Any:
        if name in self.object_patches:
            return self.object_patches[name]
        fail("comfy.model_patcher.ModelPatcher.get_model_object")
