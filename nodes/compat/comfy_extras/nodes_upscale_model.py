"""ComfyUI's ``comfy_extras.nodes_upscale_model``: loading and running upscale models needs ComfyUI."""

from __future__ import annotations

from nodes.compat.comfy_extras._v3 import raising_execute
from nodes.compat.needs_comfyui import files, node_class

MODULE = "comfy_extras.nodes_upscale_model"

UpscaleModelLoader = node_class(
    "UpscaleModelLoader", required={"model_name": files("upscale_models")}, returns=("UPSCALE_MODEL",),
    function_name="load_model", category="loaders", module=MODULE,
    execute=raising_execute("UpscaleModelLoader"),
)
ImageUpscaleWithModel = node_class(
    "ImageUpscaleWithModel", required={"upscale_model": ("UPSCALE_MODEL",), "image": ("IMAGE",)},
    returns=("IMAGE",), function_name="upscale", category="image/upscaling", module=MODULE,
    execute=raising_execute("ImageUpscaleWithModel"),
)

NODE_CLASS_MAPPINGS = {"UpscaleModelLoader": UpscaleModelLoader, "ImageUpscaleWithModel": ImageUpscaleWithModel}
