"""ComfyUI's ``comfy.ldm.modules.distributions.distributions``: the VAE's diagonal Gaussian posterior."""

from __future__ import annotations

import torch


class DiagonalGaussianDistribution:
    """A Gaussian over latents from ``parameters`` = mean and log-variance stacked on dim 1."""

    def __init__(self, parameters: torch.Tensor, deterministic: bool = False) -> None:
        self.parameters = parameters
        self.mean, logvar = torch.chunk(parameters, 2, dim=1)
        self.logvar = torch.clamp(logvar, -30.0, 20.0)
        self.deterministic = deterministic
        self.std = torch.exp(0.5 * self.logvar)
        self.var = torch.exp(self.logvar)
        if deterministic:
            self.var = self.std = torch.zeros_like(self.mean)

    def sample(self) -> torch.Tensor:
        return self.mean + self.std * torch.randn_like(self.mean)

    def mode(self) -> torch.Tensor:
        return self.mean
