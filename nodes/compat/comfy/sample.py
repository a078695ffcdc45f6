"""ComfyUI's ``comfy.sample``: seeded noise works on CPU; sampling needs model weights and raises."""

from __future__ import annotations

from typing import Any

import numpy as np

from nodes.compat.needs_comfyui import fail


def prepare_noise(latent_image: Any, seed: int, noise_inds: Any = None) -> Any:
    """Gaussian noise shaped like ``latent_image`` from ``seed`` (CPU generator, so it is device-independent).

    With ``noise_inds`` (batch indices), noise is drawn for indices ``0..max`` in order and the
    entries for the requested (unique, sorted) indices are returned, in that order.
    """
    import torch

    generator = torch.manual_seed(seed)
    if noise_inds is None:
        return torch.randn(latent_image.size(), dtype=latent_image.dtype, layout=latent_image.layout,
                           generator=generator, device="cpu")
    unique_inds, inverse = np.unique(np.asarray(noise_inds), return_inverse=True)
    drawn = []
    for index in range(int(unique_inds[-1]) + 1):
        noise = torch.randn([1] + list(latent_image.size())[1:], dtype=latent_image.dtype,
                            layout=latent_image.layout, generator=generator, device="cpu")
        if index in unique_inds:
            drawn.append(noise)
    return torch.cat([drawn[i] for i in inverse], dim=0)


def fix_empty_latent_channels(model: Any, latent_image: Any) -> Any:
    fail("comfy.sample.fix_empty_latent_channels")


def sample(*args: Any, **kwargs: Any) -> Any:
    fail("comfy.sample.sample")


def sample_custom(*args: Any, **kwargs: Any) -> Any:
    fail("comfy.sample.sample_custom")
