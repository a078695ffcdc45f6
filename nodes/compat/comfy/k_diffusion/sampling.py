"""ComfyUI's ``comfy.k_diffusion.sampling``.

The sigma schedules and step helpers are plain math and run here; the ``sample_*`` samplers drive a
diffusion model and are stand-ins that name ``--comfyui``.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from nodes.compat.comfy.k_diffusion.utils import append_dims
from nodes.compat.needs_comfyui import function, model_class


def get_sigmas_karras(n: int, sigma_min: float, sigma_max: float, rho: float = 7.0,
                      device: Any = "cpu") -> torch.Tensor:
    """Karras et al. (2022) schedule of ``n`` sigmas, then a final 0."""
    ramp = torch.linspace(0, 1, n, device=device)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    sigmas = (hi + ramp * (lo - hi)) ** rho
    return torch.cat([sigmas, sigmas.new_zeros([1])])


def get_sigmas_exponential(n: int, sigma_min: float, sigma_max: float, device: Any = "cpu") -> torch.Tensor:
    """``n`` sigmas evenly spaced in log space from ``sigma_max`` to ``sigma_min``, then a final 0."""
    sigmas = torch.linspace(math.log(sigma_max), math.log(sigma_min), n, device=device).exp()
    return torch.cat([sigmas, sigmas.new_zeros([1])])


def get_sigmas_polyexponential(n: int, sigma_min: float, sigma_max: float, rho: float = 1.0,
                               device: Any = "cpu") -> torch.Tensor:
    """Polynomial in log sigma (``rho`` = 1 is exponential), then a final 0."""
    ramp = torch.linspace(1, 0, n, device=device) ** rho
    sigmas = torch.exp(ramp * (math.log(sigma_max) - math.log(sigma_min)) + math.log(sigma_min))
    return torch.cat([sigmas, sigmas.new_zeros([1])])


def to_d(x: torch.Tensor, sigma: torch.Tensor, denoised: torch.Tensor) -> torch.Tensor:
    """The Karras ODE derivative ``(x - denoised) / sigma``."""
    return (x - denoised) / append_dims(sigma, x.ndim)


def get_ancestral_step(sigma_from: Any, sigma_to: Any, eta: float = 1.0) -> tuple[Any, Any]:
    """``(sigma_down, sigma_up)`` of an ancestral step from ``sigma_from`` to ``sigma_to``."""
    if not eta:
        return sigma_to, 0.0
    sigma_up = min(sigma_to, eta * (sigma_to**2 * (sigma_from**2 - sigma_to**2) / sigma_from**2) ** 0.5)
    sigma_down = (sigma_to**2 - sigma_up**2) ** 0.5
    return sigma_down, sigma_up


def default_noise_sampler(x: torch.Tensor, seed: int | None = None) -> Any:
    """A ``noise_sampler(sigma, sigma_next)`` drawing Gaussian noise shaped like ``x`` (seeded when given)."""
    generator = None
    if seed is not None:
        generator = torch.Generator(device=x.device)
        generator.manual_seed(seed)

    def sample(sigma: Any, sigma_next: Any) -> torch.Tensor:
        return torch.randn(x.size(), dtype=x.dtype, layout=x.layout, device=x.device, generator=generator)

    return sample


BrownianTreeNoiseSampler = model_class("comfy.k_diffusion.sampling.BrownianTreeNoiseSampler")
BatchedBrownianTree = model_class("comfy.k_diffusion.sampling.BatchedBrownianTree")

_SAMPLERS = (
    "euler", "euler_ancestral", "heun", "heunpp2", "dpm_2", "dpm_2_ancestral", "lms", "dpm_fast", "dpm_adaptive",
    "dpmpp_2s_ancestral", "dpmpp_sde", "dpmpp_2m", "dpmpp_2m_sde", "dpmpp_3m_sde", "ddpm", "lcm", "ipndm",
    "ipndm_v", "deis", "euler_cfg_pp", "euler_ancestral_cfg_pp", "dpmpp_2s_ancestral_cfg_pp", "dpmpp_2m_cfg_pp",
    "dpmpp_2m_sde_gpu", "dpmpp_3m_sde_gpu", "dpmpp_sde_gpu", "res_multistep", "res_multistep_cfg_pp",
    "res_multistep_ancestral", "res_multistep_ancestral_cfg_pp", "gradient_estimation",
    "gradient_estimation_cfg_pp", "er_sde", "seeds_2", "seeds_3", "sa_solver", "sa_solver_pece",
)  # fmt: skip

for _name in _SAMPLERS:
    globals()[f"sample_{_name}"] = function(f"comfy.k_diffusion.sampling.sample_{_name}")


def __getattr__(name: str) -> Any:
    # samplers of newer ComfyUI versions: a stand-in too
    if name.startswith("sample_"):
        return function(f"comfy.k_diffusion.sampling.{name}")
    raise AttributeError(f"module 'comfy.k_diffusion.sampling' has no attribute {name!r}")
