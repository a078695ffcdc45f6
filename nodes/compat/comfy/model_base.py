"""ComfyUI's ``comfy.model_base``: the model types packs compare against; the models need ComfyUI."""

from __future__ import annotations

import enum

from nodes.compat.needs_comfyui import model_class


class ModelType(enum.Enum):
    EPS = 1
    V_PREDICTION = 2
    V_PREDICTION_EDM = 3
    STABLE_CASCADE = 4
    EDM = 5
    FLOW = 6
    V_PREDICTION_CONTINUOUS = 7
    FLUX = 8
    IMG_TO_IMG = 9


BaseModel = model_class("comfy.model_base.BaseModel")
SD21UNCLIP = model_class("comfy.model_base.SD21UNCLIP", (BaseModel,))
SDXL = model_class("comfy.model_base.SDXL", (BaseModel,))
SD3 = model_class("comfy.model_base.SD3", (BaseModel,))
Flux = model_class("comfy.model_base.Flux", (BaseModel,))
