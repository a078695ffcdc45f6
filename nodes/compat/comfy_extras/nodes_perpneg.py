"""ComfyUI's ``comfy_extras.nodes_perpneg``: perpendicular-negative guidance needs a model."""

from __future__ import annotations

from nodes.compat.comfy.samplers import CFGGuider
from nodes.compat.comfy_extras._v3 import raising_execute
from nodes.compat.needs_comfyui import node_class


class Guider_PerpNeg(CFGGuider):
    """Subclassable like ComfyUI's; guiding (sampling) raises through :class:`CFGGuider`."""

    neg_scale = 1.0

    def set_conds(self, positive: object, negative: object, empty_negative_prompt: object = None) -> None:  # type: ignore[override]
        self.conds = {"positive": positive, "negative": negative, "empty_negative_prompt": empty_negative_prompt}

    def set_cfg(self, cfg: float, neg_scale: float = 1.0) -> None:  # type: ignore[override]
        self.cfg = cfg
        self.neg_scale = neg_scale


_FLOAT = ("FLOAT", {"default": 1.0, "min": 0.0, "max": 100.0, "step": 0.01})
PerpNeg = node_class(
    "PerpNeg", required={"model": ("MODEL",), "empty_conditioning": ("CONDITIONING",), "neg_scale": _FLOAT},
    returns=("MODEL",), function_name="patch", category="_for_testing", module="comfy_extras.nodes_perpneg",
    execute=raising_execute("PerpNeg"), DEPRECATED=True,
)
PerpNegGuider = node_class(
    "PerpNegGuider",
    required={
        "model": ("MODEL",), "positive": ("CONDITIONING",), "negative": ("CONDITIONING",),
        "empty_conditioning": ("CONDITIONING",),
        "cfg": ("FLOAT", {"default": 8.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01}),
        "neg_scale": _FLOAT,
    },
    returns=("GUIDER",), function_name="get_guider", category="_for_testing", module="comfy_extras.nodes_perpneg",
    execute=raising_execute("PerpNegGuider"),
)

NODE_CLASS_MAPPINGS = {"PerpNeg": PerpNeg, "PerpNegGuider": PerpNegGuider}
