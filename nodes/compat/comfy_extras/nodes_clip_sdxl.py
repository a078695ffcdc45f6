"""ComfyUI's ``comfy_extras.nodes_clip_sdxl``: SDXL text encoding needs a CLIP model, so ComfyUI."""

from __future__ import annotations

from nodes.compat.comfy_extras._v3 import raising_execute
from nodes.compat.needs_comfyui import node_class

MODULE = "comfy_extras.nodes_clip_sdxl"
MAX_RESOLUTION = 16384


def _size(default: int) -> tuple[str, dict[str, int]]:
    return ("INT", {"default": default, "min": 0, "max": MAX_RESOLUTION})


_TEXT = ("STRING", {"multiline": True, "dynamicPrompts": True})

CLIPTextEncodeSDXL = node_class(
    "CLIPTextEncodeSDXL",
    required={
        "clip": ("CLIP",), "width": _size(1024), "height": _size(1024), "crop_w": _size(0), "crop_h": _size(0),
        "target_width": _size(1024), "target_height": _size(1024), "text_g": _TEXT, "text_l": _TEXT,
    },
    returns=("CONDITIONING",), function_name="encode", category="advanced/conditioning", module=MODULE,
    execute=raising_execute("CLIPTextEncodeSDXL"),
)
CLIPTextEncodeSDXLRefiner = node_class(
    "CLIPTextEncodeSDXLRefiner",
    required={
        "ascore": ("FLOAT", {"default": 6.0, "min": 0.0, "max": 1000.0, "step": 0.01}),
        "width": _size(1024), "height": _size(1024), "text": _TEXT, "clip": ("CLIP",),
    },
    returns=("CONDITIONING",), function_name="encode", category="advanced/conditioning", module=MODULE,
    execute=raising_execute("CLIPTextEncodeSDXLRefiner"),
)

NODE_CLASS_MAPPINGS = {"CLIPTextEncodeSDXL": CLIPTextEncodeSDXL, "CLIPTextEncodeSDXLRefiner": CLIPTextEncodeSDXLRefiner}
