"""ComfyUI's ``comfy.ldm.common_dit``: small tensor helpers of the DiT models."""

from __future__ import annotations

from typing import Any

import torch


def pad_to_patch_size(img: torch.Tensor, patch_size: tuple[int, ...] = (2, 2),
                      padding_mode: str = "circular") -> torch.Tensor:
    """Pad the trailing dims of ``img`` up to multiples of ``patch_size``."""
    pad: list[int] = []
    for i in range(1, len(patch_size) + 1):
        pad += [0, (patch_size[-i] - img.shape[-i] % patch_size[-i]) % patch_size[-i]]
    mode = padding_mode if not torch.jit.is_tracing() else "reflect"
    return torch.nn.functional.pad(img, pad, mode=mode)


def rms_norm(x: torch.Tensor, weight: torch.Tensor | None = None, eps: float = 1e-6) -> Any:
    """RMS normalisation over the last dim, scaled by ``weight`` when given."""
    normed = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return normed if weight is None else normed * weight.to(dtype=x.dtype, device=x.device)
