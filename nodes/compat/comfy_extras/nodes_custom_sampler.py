"""ComfyUI's ``comfy_extras.nodes_custom_sampler``.

Model-free parts run here: the noise objects (:class:`Noise_RandomNoise` draws ComfyUI's seeded CPU
noise), ``RandomNoise``/``DisableNoise``, ``KSamplerSelect``, and the sigma list utilities. Schedulers
that read a model, guiders and the samplers themselves are stand-ins that name ``--comfyui``.
"""

from __future__ import annotations

from typing import Any

import torch

from nodes.compat.comfy import samplers
from nodes.compat.comfy.sample import prepare_noise
from nodes.compat.needs_comfyui import model_class, node_class

MODULE = "comfy_extras.nodes_custom_sampler"
SEED = ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF, "control_after_generate": True})
CFG = ("FLOAT", {"default": 8.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01})
STEPS = ("INT", {"default": 20, "min": 1, "max": 10000})
DENOISE = ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01})


class Noise_EmptyNoise:
    """No noise: zeros shaped like the latent."""

    def __init__(self) -> None:
        self.seed = 0

    def generate_noise(self, input_latent: dict[str, Any]) -> torch.Tensor:
        latent = input_latent["samples"]
        return torch.zeros(latent.shape, dtype=latent.dtype, layout=latent.layout, device="cpu")


class Noise_RandomNoise:
    """ComfyUI's seeded noise for a latent (its ``batch_index`` picks the entries)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def generate_noise(self, input_latent: dict[str, Any]) -> torch.Tensor:
        return prepare_noise(input_latent["samples"], self.seed, input_latent.get("batch_index"))


def _random_noise(self: Any, noise_seed: int) -> tuple[Any]:
    return (Noise_RandomNoise(noise_seed),)


def _disable_noise(self: Any) -> tuple[Any]:
    return (Noise_EmptyNoise(),)


def _sampler_select(self: Any, sampler_name: str) -> tuple[Any]:
    return (samplers.sampler_object(sampler_name),)


def _split_sigmas(self: Any, sigmas: torch.Tensor, step: int) -> tuple[Any, Any]:
    return (sigmas[: step + 1], sigmas[step:])


def _flip_sigmas(self: Any, sigmas: torch.Tensor) -> tuple[Any]:
    if len(sigmas) == 0:
        return (sigmas,)
    flipped = sigmas.flip(0)
    if flipped[0] == 0:
        flipped = flipped.clone()
        flipped[0] = 0.0001
    return (flipped,)


RandomNoise = node_class("RandomNoise", required={"noise_seed": SEED}, returns=("NOISE",), function_name="get_noise",
                         category="sampling/custom_sampling/noise", module=MODULE, implementation=_random_noise)
DisableNoise = node_class("DisableNoise", required={}, returns=("NOISE",), function_name="get_noise",
                          category="sampling/custom_sampling/noise", module=MODULE, implementation=_disable_noise)
KSamplerSelect = node_class("KSamplerSelect", required={"sampler_name": (samplers.SAMPLER_NAMES,)},
                            returns=("SAMPLER",), function_name="get_sampler",
                            category="sampling/custom_sampling/samplers", module=MODULE,
                            implementation=_sampler_select)
SplitSigmas = node_class("SplitSigmas", required={"sigmas": ("SIGMAS",),
                                                  "step": ("INT", {"default": 0, "min": 0, "max": 10000})},
                         returns=("SIGMAS", "SIGMAS"), return_names=("high_sigmas", "low_sigmas"),
                         function_name="get_sigmas", category="sampling/custom_sampling/sigmas", module=MODULE,
                         implementation=_split_sigmas)
FlipSigmas = node_class("FlipSigmas", required={"sigmas": ("SIGMAS",)}, returns=("SIGMAS",),
                        function_name="get_sigmas", category="sampling/custom_sampling/sigmas", module=MODULE,
                        implementation=_flip_sigmas)

BasicScheduler = node_class(
    "BasicScheduler",
    required={"model": ("MODEL",), "scheduler": (samplers.SCHEDULER_NAMES,), "steps": STEPS, "denoise": DENOISE},
    returns=("SIGMAS",), function_name="get_sigmas", category="sampling/custom_sampling/schedulers", module=MODULE,
)
BasicGuider = node_class(
    "BasicGuider", required={"model": ("MODEL",), "conditioning": ("CONDITIONING",)}, returns=("GUIDER",),
    function_name="get_guider", category="sampling/custom_sampling/guiders", module=MODULE,
)
CFGGuider = node_class(
    "CFGGuider",
    required={"model": ("MODEL",), "positive": ("CONDITIONING",), "negative": ("CONDITIONING",), "cfg": CFG},
    returns=("GUIDER",), function_name="get_guider", category="sampling/custom_sampling/guiders", module=MODULE,
)
SamplerCustom = node_class(
    "SamplerCustom",
    required={"model": ("MODEL",), "add_noise": ("BOOLEAN", {"default": True}), "noise_seed": SEED, "cfg": CFG,
              "positive": ("CONDITIONING",), "negative": ("CONDITIONING",), "sampler": ("SAMPLER",),
              "sigmas": ("SIGMAS",), "latent_image": ("LATENT",)},
    returns=("LATENT", "LATENT"), return_names=("output", "denoised_output"), function_name="sample",
    category="sampling/custom_sampling", module=MODULE,
)
SamplerCustomAdvanced = node_class(
    "SamplerCustomAdvanced",
    required={"noise": ("NOISE",), "guider": ("GUIDER",), "sampler": ("SAMPLER",), "sigmas": ("SIGMAS",),
              "latent_image": ("LATENT",)},
    returns=("LATENT", "LATENT"), return_names=("output", "denoised_output"), function_name="sample",
    category="sampling/custom_sampling", module=MODULE,
)

Guider_Basic = model_class(f"{MODULE}.Guider_Basic", (samplers.CFGGuider,))

NODE_CLASS_MAPPINGS = {
    cls.__name__: cls
    for cls in (RandomNoise, DisableNoise, KSamplerSelect, SplitSigmas, FlipSigmas, BasicScheduler, BasicGuider,
                CFGGuider, SamplerCustom, SamplerCustomAdvanced)
}
