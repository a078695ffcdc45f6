"""ComfyUI's core node classes that nodefarm's builtin library lacks, as packs import them from ``nodes``.

Packs write ``from nodes import LoraLoader, KSampler, common_ksampler`` at module level, subclass
them (``class LoraLoaderWithImages(LoraLoader)``) or call them inside their own nodes. Each class
here declares ComfyUI's inputs and outputs, so subclasses and ``/object_info`` see the same
interface. Model-free ones (conditioning lists, latent noise masks) run here; the rest raise
:class:`~nodes.compat.needs_comfyui.NeedsComfyUIError` ("... start the farm with --comfyui ...").

:func:`standin` is what the ``nodes`` module face asks for a name its builtin library lacks.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from nodes.compat import needs_comfyui
from nodes.compat.comfy.samplers import SAMPLER_NAMES, SCHEDULER_NAMES
from nodes.compat.needs_comfyui import files, node_class
from nodes.compat.node_helpers import conditioning_set_values

log = logging.getLogger("nodefarm.compat")

MAX_RESOLUTION = 16384
SEED = ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF, "control_after_generate": True})
COND = ("CONDITIONING",)
STRENGTH = ("FLOAT", {"default": 1.0, "min": 0.0, "max": 10.0, "step": 0.01})


def _percent(default: float) -> tuple[str, dict[str, Any]]:
    return ("FLOAT", {"default": default, "min": 0.0, "max": 1.0, "step": 0.001})


def _pos(step: int = 8, default: int = 0, minimum: int = 0) -> tuple[str, dict[str, Any]]:
    return ("INT", {"default": default, "min": minimum, "max": MAX_RESOLUTION, "step": step})


def _tiles() -> dict[str, Any]:
    return {
        "tile_size": ("INT", {"default": 512, "min": 64, "max": 4096, "step": 32}),
        "overlap": ("INT", {"default": 64, "min": 0, "max": 4096, "step": 32}),
        "temporal_size": ("INT", {"default": 64, "min": 8, "max": 4096, "step": 4}),
        "temporal_overlap": ("INT", {"default": 8, "min": 4, "max": 4096, "step": 4}),
    }


# ---- model-free implementations ---------------------------------------------------------------


def _combine(self: Any, conditioning_1: list[Any], conditioning_2: list[Any]) -> tuple[Any]:
    return (conditioning_1 + conditioning_2,)


def _first_from(conditioning_from: list[Any], node: str) -> list[Any]:
    if len(conditioning_from) > 1:
        log.warning("%s: conditioning_from holds %d entries; only the first is used", node, len(conditioning_from))
    return conditioning_from[0]


def _concat(self: Any, conditioning_to: list[Any], conditioning_from: list[Any]) -> tuple[Any]:
    cond_from = _first_from(conditioning_from, "ConditioningConcat")[0]
    return ([[torch.cat((entry[0], cond_from), 1), dict(entry[1])] for entry in conditioning_to],)


def _average(self: Any, conditioning_to: list[Any], conditioning_from: list[Any],
             conditioning_to_strength: float) -> tuple[Any]:
    first = _first_from(conditioning_from, "ConditioningAverage")
    cond_from, pooled_from = first[0], first[1].get("pooled_output")
    w = conditioning_to_strength
    out = []
    for tensor_to, options_to in conditioning_to:
        pooled_to = options_to.get("pooled_output", pooled_from)
        source = cond_from[:, : tensor_to.shape[1]]
        missing = tensor_to.shape[1] - source.shape[1]
        if missing > 0:  # a shorter source is padded with zero tokens
            source = torch.cat([source, source.new_zeros((source.shape[0], missing, tensor_to.shape[2]))], dim=1)
        options = dict(options_to)
        if pooled_from is not None and pooled_to is not None:
            options["pooled_output"] = pooled_to * w + pooled_from * (1.0 - w)
        elif pooled_from is not None:
            options["pooled_output"] = pooled_from
        out.append([tensor_to * w + source * (1.0 - w), options])
    return (out,)


def _zero_out(self: Any, conditioning: list[Any]) -> tuple[Any]:
    out = []
    for tensor, options in conditioning:
        options = dict(options)
        for key in ("pooled_output", "conditioning_lyrics"):
            if options.get(key) is not None:
                options[key] = torch.zeros_like(options[key])
        out.append([torch.zeros_like(tensor), options])
    return (out,)


def _set_range(self: Any, conditioning: list[Any], start: float, end: float) -> tuple[Any]:
    return (conditioning_set_values(conditioning, {"start_percent": start, "end_percent": end}),)


def _set_area(self: Any, conditioning: list[Any], width: int, height: int, x: int, y: int,
              strength: float) -> tuple[Any]:
    area = (height // 8, width // 8, y // 8, x // 8)  # in latent pixels
    return (conditioning_set_values(conditioning, {"area": area, "strength": strength, "set_area_to_bounds": False}),)


def _set_area_percentage(self: Any, conditioning: list[Any], width: float, height: float, x: float, y: float,
                         strength: float) -> tuple[Any]:
    area = ("percentage", height, width, y, x)
    return (conditioning_set_values(conditioning, {"area": area, "strength": strength, "set_area_to_bounds": False}),)


def _set_area_strength(self: Any, conditioning: list[Any], strength: float) -> tuple[Any]:
    return (conditioning_set_values(conditioning, {"strength": strength}),)


def _set_mask(self: Any, conditioning: list[Any], mask: torch.Tensor, set_cond_area: str,
              strength: float) -> tuple[Any]:
    mask = mask.unsqueeze(0) if mask.ndim < 3 else mask
    values = {"mask": mask, "set_area_to_bounds": set_cond_area != "default", "mask_strength": strength}
    return (conditioning_set_values(conditioning, values),)


def _set_latent_noise_mask(self: Any, samples: dict[str, Any], mask: torch.Tensor) -> tuple[Any]:
    out = dict(samples)
    out["noise_mask"] = mask.reshape((-1, 1, mask.shape[-2], mask.shape[-1]))
    return (out,)


# ---- the classes ----------------------------------------------------------------------------------

_LORA_LOADER = node_class("LoraLoader", required={
    "model": ("MODEL",), "clip": ("CLIP",), "lora_name": files("loras"),
    "strength_model": ("FLOAT", {"default": 1.0, "min": -100.0, "max": 100.0, "step": 0.01}),
    "strength_clip": ("FLOAT", {"default": 1.0, "min": -100.0, "max": 100.0, "step": 0.01}),
}, returns=("MODEL", "CLIP"), function_name="load_lora", category="loaders")

_NODES: list[type] = [
    # loaders
    node_class("CheckpointLoaderSimple", required={"ckpt_name": files("checkpoints")},
               returns=("MODEL", "CLIP", "VAE"), function_name="load_checkpoint", category="loaders"),
    node_class("CheckpointLoader", required={"config_name": files("configs"), "ckpt_name": files("checkpoints")},
               returns=("MODEL", "CLIP", "VAE"), function_name="load_checkpoint", category="advanced/loaders",
               DEPRECATED=True),
    node_class("unCLIPCheckpointLoader", required={"ckpt_name": files("checkpoints")},
               returns=("MODEL", "CLIP", "VAE", "CLIP_VISION"), function_name="load_checkpoint", category="loaders"),
    node_class("DiffusersLoader", required={"model_path": ([],)}, returns=("MODEL", "CLIP", "VAE"),
               function_name="load_checkpoint", category="advanced/loaders/deprecated"),
    _LORA_LOADER,
    node_class("LoraLoaderModelOnly", required={
        "model": ("MODEL",), "lora_name": files("loras"),
        "strength_model": ("FLOAT", {"default": 1.0, "min": -100.0, "max": 100.0, "step": 0.01}),
    }, returns=("MODEL",), function_name="load_lora_model_only", category="loaders", bases=(_LORA_LOADER,)),
    node_class("VAELoader", required={"vae_name": files("vae")}, returns=("VAE",), function_name="load_vae",
               category="loaders"),
    node_class("UNETLoader", required={
        "unet_name": files("diffusion_models"),
        "weight_dtype": (["default", "fp8_e4m3fn", "fp8_e4m3fn_fast", "fp8_e5m2"],),
    }, returns=("MODEL",), function_name="load_unet", category="advanced/loaders"),
    node_class("CLIPLoader", required={
        "clip_name": files("text_encoders"),
        "type": (["stable_diffusion", "stable_cascade", "sd3", "stable_audio", "mochi", "ltxv", "pixart", "cosmos",
                  "lumina2", "wan", "hidream", "chroma", "ace", "omnigen2", "qwen_image", "hunyuan_image"],),
    }, optional={"device": (["default", "cpu"], {"advanced": True})}, returns=("CLIP",), function_name="load_clip",
        category="advanced/loaders"),
    node_class("DualCLIPLoader", required={
        "clip_name1": files("text_encoders"), "clip_name2": files("text_encoders"),
        "type": (["sdxl", "sd3", "flux", "hunyuan_video", "hidream", "hunyuan_image"],),
    }, optional={"device": (["default", "cpu"], {"advanced": True})}, returns=("CLIP",), function_name="load_clip",
        category="advanced/loaders"),
    node_class("CLIPVisionLoader", required={"clip_name": files("clip_vision")}, returns=("CLIP_VISION",),
               function_name="load_clip", category="loaders"),
    node_class("ControlNetLoader", required={"control_net_name": files("controlnet")}, returns=("CONTROL_NET",),
               function_name="load_controlnet", category="loaders"),
    node_class("DiffControlNetLoader", required={"model": ("MODEL",), "control_net_name": files("controlnet")},
               returns=("CONTROL_NET",), function_name="load_controlnet", category="loaders"),
    node_class("StyleModelLoader", required={"style_model_name": files("style_models")}, returns=("STYLE_MODEL",),
               function_name="load_style_model", category="loaders"),
    node_class("GLIGENLoader", required={"gligen_name": files("gligen")}, returns=("GLIGEN",),
               function_name="load_gligen", category="loaders"),
    # text and images through models
    node_class("CLIPTextEncode", required={
        "text": ("STRING", {"multiline": True, "dynamicPrompts": True}), "clip": ("CLIP",),
    }, returns=("CONDITIONING",), function_name="encode", category="conditioning"),
    node_class("CLIPSetLastLayer", required={
        "clip": ("CLIP",), "stop_at_clip_layer": ("INT", {"default": -1, "min": -24, "max": -1, "step": 1}),
    }, returns=("CLIP",), function_name="set_last_layer", category="conditioning"),
    node_class("CLIPVisionEncode", required={
        "clip_vision": ("CLIP_VISION",), "image": ("IMAGE",), "crop": (["center", "none"],),
    }, returns=("CLIP_VISION_OUTPUT",), function_name="encode", category="conditioning"),
    node_class("StyleModelApply", required={
        "conditioning": COND, "style_model": ("STYLE_MODEL",), "clip_vision_output": ("CLIP_VISION_OUTPUT",),
        "strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 10.0, "step": 0.001}),
        "strength_type": (["multiply", "attn_bias"],),
    }, returns=("CONDITIONING",), function_name="apply_stylemodel", category="conditioning/style_model"),
    node_class("unCLIPConditioning", required={
        "conditioning": COND, "clip_vision_output": ("CLIP_VISION_OUTPUT",),
        "strength": ("FLOAT", {"default": 1.0, "min": -10.0, "max": 10.0, "step": 0.01}),
        "noise_augmentation": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.01}),
    }, returns=("CONDITIONING",), function_name="apply_adm", category="conditioning"),
    node_class("VAEDecode", required={"samples": ("LATENT",), "vae": ("VAE",)}, returns=("IMAGE",),
               function_name="decode", category="latent"),
    node_class("VAEEncode", required={"pixels": ("IMAGE",), "vae": ("VAE",)}, returns=("LATENT",),
               function_name="encode", category="latent"),
    node_class("VAEDecodeTiled", required={"samples": ("LATENT",), "vae": ("VAE",), **_tiles()},
               returns=("IMAGE",), function_name="decode", category="_for_testing"),
    node_class("VAEEncodeTiled", required={"pixels": ("IMAGE",), "vae": ("VAE",), **_tiles()},
               returns=("LATENT",), function_name="encode", category="_for_testing"),
    node_class("VAEEncodeForInpaint", required={
        "pixels": ("IMAGE",), "vae": ("VAE",), "mask": ("MASK",),
        "grow_mask_by": ("INT", {"default": 6, "min": 0, "max": 64, "step": 1}),
    }, returns=("LATENT",), function_name="encode", category="latent/inpaint"),
    node_class("InpaintModelConditioning", required={
        "positive": COND, "negative": COND, "vae": ("VAE",), "pixels": ("IMAGE",), "mask": ("MASK",),
        "noise_mask": ("BOOLEAN", {"default": True}),
    }, returns=("CONDITIONING", "CONDITIONING", "LATENT"), return_names=("positive", "negative", "latent"),
        function_name="encode", category="conditioning/inpaint"),
    node_class("ControlNetApply", required={
        "conditioning": COND, "control_net": ("CONTROL_NET",), "image": ("IMAGE",), "strength": STRENGTH,
    }, returns=("CONDITIONING",), function_name="apply_controlnet", category="conditioning/controlnet",
        DEPRECATED=True),
    node_class("ControlNetApplyAdvanced", required={
        "positive": COND, "negative": COND, "control_net": ("CONTROL_NET",), "image": ("IMAGE",),
        "strength": STRENGTH, "start_percent": _percent(0.0), "end_percent": _percent(1.0),
    }, optional={"vae": ("VAE",)}, returns=("CONDITIONING", "CONDITIONING"), return_names=("positive", "negative"),
        function_name="apply_controlnet", category="conditioning/controlnet"),
    # sampling
    node_class("KSampler", required={
        "model": ("MODEL",), "seed": SEED,
        "steps": ("INT", {"default": 20, "min": 1, "max": 10000}),
        "cfg": ("FLOAT", {"default": 8.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01}),
        "sampler_name": (SAMPLER_NAMES,), "scheduler": (SCHEDULER_NAMES,),
        "positive": COND, "negative": COND, "latent_image": ("LATENT",),
        "denoise": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01}),
    }, returns=("LATENT",), function_name="sample", category="sampling"),
    node_class("KSamplerAdvanced", required={
        "model": ("MODEL",), "add_noise": (["enable", "disable"],), "noise_seed": SEED,
        "steps": ("INT", {"default": 20, "min": 1, "max": 10000}),
        "cfg": ("FLOAT", {"default": 8.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01}),
        "sampler_name": (SAMPLER_NAMES,), "scheduler": (SCHEDULER_NAMES,),
        "positive": COND, "negative": COND, "latent_image": ("LATENT",),
        "start_at_step": ("INT", {"default": 0, "min": 0, "max": 10000}),
        "end_at_step": ("INT", {"default": 10000, "min": 0, "max": 10000}),
        "return_with_leftover_noise": (["disable", "enable"],),
    }, returns=("LATENT",), function_name="sample", category="sampling"),
    # conditioning lists: model-free, they run here
    node_class("ConditioningCombine", required={"conditioning_1": COND, "conditioning_2": COND},
               returns=("CONDITIONING",), function_name="combine", category="conditioning", implementation=_combine),
    node_class("ConditioningConcat", required={"conditioning_to": COND, "conditioning_from": COND},
               returns=("CONDITIONING",), function_name="concat", category="conditioning", implementation=_concat),
    node_class("ConditioningAverage", required={
        "conditioning_to": COND, "conditioning_from": COND,
        "conditioning_to_strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01}),
    }, returns=("CONDITIONING",), function_name="addWeighted", category="conditioning", implementation=_average),
    node_class("ConditioningZeroOut", required={"conditioning": COND}, returns=("CONDITIONING",),
               function_name="zero_out", category="advanced/conditioning", implementation=_zero_out),
    node_class("ConditioningSetTimestepRange", required={
        "conditioning": COND, "start": _percent(0.0), "end": _percent(1.0),
    }, returns=("CONDITIONING",), function_name="set_range", category="advanced/conditioning",
        implementation=_set_range),
    node_class("ConditioningSetArea", required={
        "conditioning": COND, "width": _pos(default=64, minimum=64), "height": _pos(default=64, minimum=64),
        "x": _pos(), "y": _pos(), "strength": STRENGTH,
    }, returns=("CONDITIONING",), function_name="append", category="conditioning", implementation=_set_area),
    node_class("ConditioningSetAreaPercentage", required={
        "conditioning": COND,
        "width": ("FLOAT", {"default": 1.0, "min": 0, "max": 1.0, "step": 0.01}),
        "height": ("FLOAT", {"default": 1.0, "min": 0, "max": 1.0, "step": 0.01}),
        "x": ("FLOAT", {"default": 0, "min": 0, "max": 1.0, "step": 0.01}),
        "y": ("FLOAT", {"default": 0, "min": 0, "max": 1.0, "step": 0.01}),
        "strength": STRENGTH,
    }, returns=("CONDITIONING",), function_name="append", category="conditioning",
        implementation=_set_area_percentage),
    node_class("ConditioningSetAreaStrength", required={"conditioning": COND, "strength": STRENGTH},
               returns=("CONDITIONING",), function_name="append", category="conditioning",
               implementation=_set_area_strength),
    node_class("ConditioningSetMask", required={
        "conditioning": COND, "mask": ("MASK",), "strength": STRENGTH, "set_cond_area": (["default", "mask bounds"],),
    }, returns=("CONDITIONING",), function_name="append", category="conditioning", implementation=_set_mask),
    node_class("SaveLatent", required={
        "samples": ("LATENT",), "filename_prefix": ("STRING", {"default": "latents/ComfyUI"}),
    }, hidden={"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}, returns=(), function_name="save",
        category="_for_testing", output_node=True),
    node_class("SetLatentNoiseMask", required={"samples": ("LATENT",), "mask": ("MASK",)}, returns=("LATENT",),
               function_name="set_mask", category="latent/inpaint", implementation=_set_latent_noise_mask),
]

NODE_CLASSES: dict[str, type] = {cls.__name__: cls for cls in _NODES}

common_ksampler = needs_comfyui.function("nodes.common_ksampler")

FUNCTIONS: dict[str, Any] = {"common_ksampler": common_ksampler}


def standin(name: str) -> Any | None:
    """The stand-in for ComfyUI's ``nodes.<name>`` (a node class or ``common_ksampler``), or None."""
    found = NODE_CLASSES.get(name)
    return found if found is not None else FUNCTIONS.get(name)


__all__ = ["FUNCTIONS", "MAX_RESOLUTION", "NODE_CLASSES", "common_ksampler", "standin"]
