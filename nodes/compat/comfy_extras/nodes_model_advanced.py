"""ComfyUI's ``comfy_extras.nodes_model_advanced``: model-sampling patches need a model, so ComfyUI."""

from __future__ import annotations

from nodes.compat.needs_comfyui import node_class

MODULE = "comfy_extras.nodes_model_advanced"
_MODEL = ("MODEL",)


def _f(default: float, lo: float, hi: float, step: float = 0.01) -> tuple[str, dict[str, float]]:
    return ("FLOAT", {"default": default, "min": lo, "max": hi, "step": step})


ModelSamplingDiscrete = node_class(
    "ModelSamplingDiscrete",
    required={"model": _MODEL, "sampling": (["eps", "v_prediction", "lcm", "x0", "img_to_img"],),
              "zsnr": ("BOOLEAN", {"default": False})},
    returns=("MODEL",), function_name="patch", category="advanced/model", module=MODULE,
)
ModelSamplingSD3 = node_class(
    "ModelSamplingSD3", required={"model": _MODEL, "shift": _f(3.0, 0.0, 100.0)},
    returns=("MODEL",), function_name="patch", category="advanced/model", module=MODULE,
)
ModelSamplingAuraFlow = node_class(
    "ModelSamplingAuraFlow", required={"model": _MODEL, "shift": _f(1.73, 0.0, 100.0)},
    returns=("MODEL",), function_name="patch_aura", category="advanced/model", module=MODULE,
)
ModelSamplingFlux = node_class(
    "ModelSamplingFlux",
    required={"model": _MODEL, "max_shift": _f(1.15, 0.0, 100.0), "base_shift": _f(0.5, 0.0, 100.0),
              "width": ("INT", {"default": 1024, "min": 16, "max": 16384, "step": 8}),
              "height": ("INT", {"default": 1024, "min": 16, "max": 16384, "step": 8})},
    returns=("MODEL",), function_name="patch", category="advanced/model", module=MODULE,
)
RescaleCFG = node_class(
    "RescaleCFG", required={"model": _MODEL, "multiplier": _f(0.7, 0.0, 1.0)},
    returns=("MODEL",), function_name="patch", category="advanced/model", module=MODULE,
)

NODE_CLASS_MAPPINGS = {
    cls.__name__: cls for cls in (ModelSamplingDiscrete, ModelSamplingSD3, ModelSamplingAuraFlow, ModelSamplingFlux, RescaleCFG)
}
