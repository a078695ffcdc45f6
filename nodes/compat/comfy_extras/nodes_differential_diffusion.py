"""ComfyUI's ``comfy_extras.nodes_differential_diffusion``: patching a model needs ComfyUI."""

from __future__ import annotations

from nodes.compat.comfy_extras._v3 import raising_execute
from nodes.compat.needs_comfyui import node_class

DifferentialDiffusion = node_class(
    "DifferentialDiffusion",
    required={"model": ("MODEL",)},
    optional={"strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01})},
    returns=("MODEL",), function_name="apply", category="_for_testing",
    module="comfy_extras.nodes_differential_diffusion", execute=raising_execute("DifferentialDiffusion"),
)

NODE_CLASS_MAPPINGS = {"DifferentialDiffusion": DifferentialDiffusion}
