"""ComfyUI's old ``comfy_extras.chainner_models.model_loading``: building an upscale model needs ComfyUI."""

from __future__ import annotations

from nodes.compat.needs_comfyui import function

load_state_dict = function("comfy_extras.chainner_models.model_loading.load_state_dict")
