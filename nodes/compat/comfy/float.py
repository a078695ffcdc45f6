"""ComfyUI's ``comfy.float``: low-precision rounding of weights needs ComfyUI's model code."""

from __future__ import annotations

from nodes.compat.needs_comfyui import function

stochastic_rounding = function("comfy.float.stochastic_rounding")
manual_stochastic_round_to_float8 = function("comfy.float.manual_stochastic_round_to_float8")
