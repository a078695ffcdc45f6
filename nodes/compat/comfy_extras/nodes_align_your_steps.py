"""ComfyUI's ``comfy_extras.nodes_align_your_steps`` (stand-in: its sigma tables come with ComfyUI)."""

from __future__ import annotations

from nodes.compat.comfy_extras._v3 import raising_execute
from nodes.compat.needs_comfyui import node_class

AlignYourStepsScheduler = node_class(
    "AlignYourStepsScheduler",
    required={
        "model_type": (["SD1", "SDXL", "SVD"],),
        "steps": ("INT", {"default": 10, "min": 1, "max": 10000}),
        "denoise": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01}),
    },
    returns=("SIGMAS",), function_name="get_sigmas", category="sampling/custom_sampling/schedulers",
    module="comfy_extras.nodes_align_your_steps", execute=raising_execute("AlignYourStepsScheduler"),
)

NODE_CLASS_MAPPINGS = {"AlignYourStepsScheduler": AlignYourStepsScheduler}
