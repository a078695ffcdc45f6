"""ComfyUI's ``comfy.controlnet``: the classes packs subclass or check; loading control models needs ComfyUI."""

from __future__ import annotations

from nodes.compat.needs_comfyui import function, model_class

ControlBase = model_class("comfy.controlnet.ControlBase")
ControlNet = model_class("comfy.controlnet.ControlNet", (ControlBase,))
ControlLora = model_class("comfy.controlnet.ControlLora", (ControlNet,))
T2IAdapter = model_class("comfy.controlnet.T2IAdapter", (ControlBase,))

load_controlnet = function("comfy.controlnet.load_controlnet")
load_controlnet_state_dict = function("comfy.controlnet.load_controlnet_state_dict")
load_t2i_adapter = function("comfy.controlnet.load_t2i_adapter")
