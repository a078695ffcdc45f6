"""Helpers shared by the builtin node modules: the compute device, PIL conversion, kernels."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from nodes import MAX_RESOLUTION
from nodes.compat.comfy import model_management

__all__ = ["MAX_RESOLUTION", "compute_device", "on_device", "tensor_to_pil", "gaussian_kernel", "filter2d"]


def compute_device() -> torch.device:
    """Where builtin nodes compute: the worker's torch device."""
    return model_management.get_torch_device()


def on_device(t: torch.Tensor) -> torch.Tensor:
    """``t`` on the compute device (a no-op when it is there already)."""
    return t.to(compute_device())


def tensor_to_pil(image: torch.Tensor) -> Image.Image:
    """One IMAGE entry [H, W, C] (0..1) as an 8-bit PIL image (L, RGB or RGBA)."""
    arr = np.clip(255.0 * image.detach().float().cpu().numpy(), 0, 255).astype(np.uint8)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    return Image.fromarray(arr)


def gaussian_kernel(kernel_size: int, sigma: float, device: torch.device) -> torch.Tensor:
    """A normalized 2-D gaussian over a grid spanning -1..1 (sigma is relative to the radius)."""
    axis = torch.linspace(-1.0, 1.0, kernel_size, device=device)
    x, y = torch.meshgrid(axis, axis, indexing="ij")
    g = torch.exp(-(x * x + y * y) / (2.0 * sigma * sigma))
    return g / g.sum()


def filter2d(image: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Convolve each channel of a BHWC batch with a square kernel, reflecting at the borders."""
    radius = kernel.shape[-1] // 2
    x = image.permute(0, 3, 1, 2)
    channels = x.shape[1]
    mode = "reflect" if radius < min(x.shape[-2], x.shape[-1]) else "replicate"
    x = torch.nn.functional.pad(x, (radius, radius, radius, radius), mode=mode)
    weight = kernel.to(dtype=x.dtype).expand(channels, 1, *kernel.shape)
    out = torch.nn.functional.conv2d(x, weight, groups=channels)
    return out.permute(0, 2, 3, 1)
