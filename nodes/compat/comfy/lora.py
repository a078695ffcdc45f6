"""ComfyUI's ``comfy.lora``: matching LoRA keys to a model and applying them needs ComfyUI's model code."""

from __future__ import annotations

from nodes.compat.needs_comfyui import function

load_lora = function("comfy.lora.load_lora")
model_lora_keys_clip = function("comfy.lora.model_lora_keys_clip")
model_lora_keys_unet = function("comfy.lora.model_lora_keys_unet")
calculate_weight = function("comfy.lora.calculate_weight")
weight_decompose = function("comfy.lora.weight_decompose")
