"""ComfyUI's ``comfy.sdxl_clip``: SDXL text encoders need ComfyUI's model code."""

from __future__ import annotations

from nodes.compat.needs_comfyui import model_class

SDXLClipG = model_class("comfy.sdxl_clip.SDXLClipG")
SDXLClipGTokenizer = model_class("comfy.sdxl_clip.SDXLClipGTokenizer")
SDXLTokenizer = model_class("comfy.sdxl_clip.SDXLTokenizer")
SDXLClipModel = model_class("comfy.sdxl_clip.SDXLClipModel")
SDXLRefinerClipModel = model_class("comfy.sdxl_clip.SDXLRefinerClipModel")
