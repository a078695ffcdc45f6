"""ComfyUI's ``comfy.ldm.modules.attention``: the attention functions models call, on torch's SDPA.

All of them take ``(q, k, v, heads)`` with q/k/v as (B, L, heads*D) — or (B, heads, L, D) with
``skip_reshape`` — and return (B, L, heads*D) unless ``skip_output_reshape``. :func:`wrap_attn` is the
decorator ComfyUI uses to let patches replace an attention function; here it passes calls through.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch

from nodes.compat.needs_comfyui import function


def wrap_attn(func: Callable[..., Any]) -> Callable[..., Any]:
    """Mark ``func`` as an attention function (patches may wrap it in ComfyUI); calls pass through."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    return wrapper


@wrap_attn
def attention_pytorch(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int,
                      mask: torch.Tensor | None = None, attn_precision: Any = None, skip_reshape: bool = False,
                      skip_output_reshape: bool = False, **kwargs: Any) -> torch.Tensor:
    if skip_reshape:
        b, _, _, dim_head = q.shape
    else:
        b, _, inner = q.shape
        dim_head = inner // heads
        q, k, v = (t.view(b, -1, heads, dim_head).transpose(1, 2) for t in (q, k, v))
    if mask is not None:
        if mask.ndim == 2:
            mask = mask.unsqueeze(0)
        if mask.ndim == 3:
            mask = mask.unsqueeze(1)
    out = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=0.0, is_causal=False)
    if skip_output_reshape:
        return out
    return out.transpose(1, 2).reshape(b, -1, heads * dim_head)


attention_basic = attention_pytorch
attention_split = attention_pytorch
attention_sub_quad = attention_pytorch
optimized_attention = attention_pytorch
optimized_attention_masked = attention_pytorch
attention_sage = function("comfy.ldm.modules.attention.attention_sage")
attention_flash = function("comfy.ldm.modules.attention.attention_flash")
attention_xformers = function("comfy.ldm.modules.attention.attention_xformers")


def optimized_attention_for_device(device: Any = None, mask: bool = False, small_input: bool = False) -> Any:
    return attention_pytorch
