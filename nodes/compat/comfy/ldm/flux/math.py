"""ComfyUI's ``comfy.ldm.flux.math``: rotary position embedding and attention of Flux, model-free."""

from __future__ import annotations

from typing import Any

import torch

from nodes.compat.comfy.ldm.modules.attention import optimized_attention


def rope(pos: torch.Tensor, dim: int, theta: int) -> torch.Tensor:
    """Rotation matrices (…, n, dim/2, 2, 2) for positions ``pos`` and frequency base ``theta``."""
    if dim % 2:
        raise ValueError("rope: dim must be even")
    scale = torch.arange(0, dim, 2, dtype=torch.float64, device=pos.device) / dim
    omega = 1.0 / (theta**scale)
    angles = torch.einsum("...n,d->...nd", pos.to(torch.float64), omega)
    cos, sin = torch.cos(angles), torch.sin(angles)
    out = torch.stack([cos, -sin, sin, cos], dim=-1)
    return out.reshape(*out.shape[:-1], 2, 2).float()


def apply_rope1(x: torch.Tensor, freqs_cis: torch.Tensor) -> torch.Tensor:
    pairs = x.to(freqs_cis.dtype).reshape(*x.shape[:-1], -1, 1, 2)
    out = freqs_cis[..., 0] * pairs[..., 0] + freqs_cis[..., 1] * pairs[..., 1]
    return out.reshape(*x.shape).type_as(x)


def apply_rope(xq: torch.Tensor, xk: torch.Tensor, freqs_cis: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate queries and keys by ``freqs_cis`` (from :func:`rope`)."""
    return apply_rope1(xq, freqs_cis), apply_rope1(xk, freqs_cis)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, pe: torch.Tensor | None,
              mask: torch.Tensor | None = None, transformer_options: Any = None) -> torch.Tensor:
    """Rotary-embedded multi-head attention over (B, heads, L, D) inputs; output (B, L, heads*D)."""
    heads = q.shape[1]
    if pe is not None:
        q, k = apply_rope(q, k, pe)
    return optimized_attention(q, k, v, heads, skip_reshape=True, mask=mask)  # type: ignore[no-any-return]
