"""ComfyUI's ``comfy.samplers``, reduced to the names packs read at import time.

The sampler and scheduler name lists are real (packs build their combos from them); sampling
itself needs a diffusion model and raises.
"""

from __future__ import annotations

from typing import Any

from nodes.compat.needs_comfyui import fail, function, model_class

KSAMPLER_NAMES = [
    "euler", "euler_cfg_pp", "euler_ancestral", "euler_ancestral_cfg_pp", "heun", "heunpp2", "dpm_2",
    "dpm_2_ancestral", "lms", "dpm_fast", "dpm_adaptive", "dpmpp_2s_ancestral", "dpmpp_2s_ancestral_cfg_pp",
    "dpmpp_sde", "dpmpp_sde_gpu", "dpmpp_2m", "dpmpp_2m_cfg_pp", "dpmpp_2m_sde", "dpmpp_2m_sde_gpu",
    "dpmpp_3m_sde", "dpmpp_3m_sde_gpu", "ddpm", "lcm", "ipndm", "ipndm_v", "deis", "res_multistep",
    "res_multistep_cfg_pp", "res_multistep_ancestral", "res_multistep_ancestral_cfg_pp",
    "gradient_estimation", "gradient_estimation_cfg_pp", "er_sde", "seeds_2", "seeds_3", "sa_solver",
    "sa_solver_pece",
]  # fmt: skip
SAMPLER_NAMES = KSAMPLER_NAMES + ["ddim", "uni_pc", "uni_pc_bh2"]
SCHEDULER_NAMES = [
    "simple", "sgm_uniform", "karras", "exponential", "ddim_uniform", "beta", "normal", "linear_quadratic",
    "kl_optimal",
]  # fmt: skip


class Sampler:
    def sample(self, *args: Any, **kwargs: Any) -> Any:
        fail("comfy.samplers.Sampler.sample")


class KSAMPLER(Sampler):
    def __init__(self, sampler_function: Any, extra_options: dict[str, Any] | None = None,
                 inpaint_options: dict[str, Any] | None = None) -> None:
        self.sampler_function = sampler_function
        self.extra_options = extra_options or {}
        self.inpaint_options = inpaint_options or {}


class KSampler:
    SCHEDULERS = SCHEDULER_NAMES
    SAMPLERS = SAMPLER_NAMES
    DISCARD_PENULTIMATE_SIGMA_SAMPLERS = {"dpm_2", "dpm_2_ancestral", "uni_pc", "uni_pc_bh2"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        fail("comfy.samplers.KSampler")


class CFGGuider:
    def __init__(self, model_patcher: Any) -> None:
        self.model_patcher = model_patcher
        self.model_options: dict[str, Any] = getattr(model_patcher, "model_options", {})
        self.conds: dict[str, Any] = {}
        self.cfg = 1.0

    def set_conds(self, positive: Any, negative: Any) -> None:
        self.conds = {"positive": positive, "negative": negative}

    def set_cfg(self, cfg: float) -> None:
        self.cfg = cfg

    def sample(self, *args: Any, **kwargs: Any) -> Any:
        fail("comfy.samplers.CFGGuider.sample")


def ksampler(sampler_name: str, extra_options: dict[str, Any] | None = None,
             inpaint_options: dict[str, Any] | None = None) -> KSAMPLER:
    if sampler_name not in SAMPLER_NAMES:
        raise ValueError(f"unknown sampler {sampler_name!r}")
    return KSAMPLER(sampler_name, extra_options, inpaint_options)


def sampler_object(name: str) -> Sampler:
    return ksampler(name)


def calculate_sigmas(model_sampling: Any, scheduler_name: str, steps: int) -> Any:
    fail("comfy.samplers.calculate_sigmas")


# ---- the sampler internals packs wrap or call: model code, so stand-ins ---------------------------

KSamplerX0Inpaint = model_class("comfy.samplers.KSamplerX0Inpaint")
sampling_function = function("comfy.samplers.sampling_function")
calc_cond_batch = function("comfy.samplers.calc_cond_batch")
get_area_and_mult = function("comfy.samplers.get_area_and_mult")
can_concat_cond = function("comfy.samplers.can_concat_cond")
cond_cat = function("comfy.samplers.cond_cat")
sample = function("comfy.samplers.sample")
