"""ComfyUI's ``comfy_extras.nodes_gits`` (stand-in: its sigma tables come with ComfyUI)."""

from __future__ import annotations

from nodes.compat.comfy_extras._v3 import raising_execute
from nodes.compat.needs_comfyui import node_class

GITSScheduler = node_class(
    "GITSScheduler",
    required={
        "coeff": ("FLOAT", {"default": 1.20, "min": 0.80, "max": 1.50, "step": 0.05}),
        "steps": ("INT", {"default": 10, "min": 2, "max": 1000}),
        "denoise": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01}),
    },
    returns=("SIGMAS",), function_name="get_sigmas", category="sampling/custom_sampling/schedulers",
    module="comfy_extras.nodes_gits", execute=raising_execute("GITSScheduler"),
)

NODE_CLASS_MAPPINGS = {"GITSScheduler": GITSScheduler}
