"""ComfyUI's ``comfy.diffusers_convert``: converting diffusers checkpoints needs ComfyUI's model code."""

from __future__ import annotations

from nodes.compat.needs_comfyui import function

convert_unet_state_dict = function("comfy.diffusers_convert.convert_unet_state_dict")
convert_vae_state_dict = function("comfy.diffusers_convert.convert_vae_state_dict")
convert_text_enc_state_dict = function("comfy.diffusers_convert.convert_text_enc_state_dict")
convert_text_enc_state_dict_v20 = function("comfy.diffusers_convert.convert_text_enc_state_dict_v20")
load_diffusers = function("comfy.diffusers_convert.load_diffusers")
