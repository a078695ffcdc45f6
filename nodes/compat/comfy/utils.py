"""ComfyUI's ``comfy.utils``: the progress bar and its global hook, resizing, checkpoint loading.

Written from ComfyUI's documented behaviour (spec/comfyui.md sections 5.11 and 7).

Module state (ComfyUI's globals): ``PROGRESS_BAR_HOOK``, the one function every
:class:`ProgressBar` reports to (installed by the worker with :func:`set_progress_bar_global_hook`;
it routes the report to the executing node through a ContextVar), and ``PROGRESS_BAR_ENABLED``
(console bars on or off; kept for custom nodes that read it).
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import struct
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

log = logging.getLogger("nodefarm.comfy_utils")

ProgressHook = Callable[..., Any]

PROGRESS_BAR_ENABLED = True
PROGRESS_BAR_HOOK: ProgressHook | None = None


def set_progress_bar_enabled(enabled: bool) -> None:
    global PROGRESS_BAR_ENABLED
    PROGRESS_BAR_ENABLED = enabled


def set_progress_bar_global_hook(function: ProgressHook | None) -> None:
    global PROGRESS_BAR_HOOK
    PROGRESS_BAR_HOOK = function


class ProgressBar:
    """Reports ``(current, total, preview, node_id=...)`` to the global hook on every update."""

    def __init__(self, total: int, node_id: str | None = None) -> None:
        self.total = total
        self.current: int | float = 0
        self.hook: ProgressHook | None = PROGRESS_BAR_HOOK
        self.node_id = node_id

    def update_absolute(self, value: int | float, total: int | None = None, preview: Any = None) -> None:
        if total is not None:
            self.total = total
        if value > self.total:
            value = self.total
        self.current = value
        hook = self.hook if self.hook is not None else PROGRESS_BAR_HOOK
        if hook is not None:
            hook(self.current, self.total, preview, node_id=self.node_id)

    def update(self, value: int | float) -> None:
        self.update_absolute(self.current + value)


# ---- resizing ----------------------------------------------------------------------------------


def lanczos(samples: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Lanczos resize of a BCHW batch through PIL, one image at a time (values quantized to 8 bits
    for 1, 3 or 4 channels like ComfyUI; other channel counts resize each channel in float)."""
    device = samples.device
    out: list[torch.Tensor] = []
    for image in samples.detach().float().cpu():
        channels = image.shape[0]
        if channels in (1, 3, 4):
            arr = np.clip(255.0 * image.movedim(0, -1).numpy(), 0, 255).astype(np.uint8)
            pil = Image.fromarray(arr[..., 0] if channels == 1 else arr)
            resized = np.asarray(pil.resize((width, height), resample=Image.Resampling.LANCZOS))
            t = torch.from_numpy(resized.astype(np.float32) / 255.0)
            out.append(t.unsqueeze(0) if channels == 1 else t.movedim(-1, 0))
        else:
            planes = [
                torch.from_numpy(np.asarray(
                    Image.fromarray(c.numpy().astype(np.float32), mode="F").resize(
                        (width, height), resample=Image.Resampling.LANCZOS)
                ).copy())
                for c in image
            ]
            out.append(torch.stack(planes))
    return torch.stack(out).to(device=device, dtype=samples.dtype)


def _source_coords(size_in: int, size_out: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Half-pixel-centred source positions of each output pixel: (low index, high index, ratio)."""
    pos = (torch.arange(size_out, device=device, dtype=torch.float32) + 0.5) * (size_in / size_out) - 0.5
    pos = pos.clamp(0, size_in - 1)
    low = pos.floor().long()
    high = (low + 1).clamp(max=size_in - 1)
    return low, high, pos - low.float()


def _slerp(a: torch.Tensor, b: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation along dim 1 (channels); magnitudes are interpolated linearly."""
    norm_a = a.norm(dim=1, keepdim=True)
    norm_b = b.norm(dim=1, keepdim=True)
    unit_a = a / norm_a.clamp_min(1e-12)
    unit_b = b / norm_b.clamp_min(1e-12)
    dot = (unit_a * unit_b).sum(dim=1, keepdim=True).clamp(-1.0, 1.0)
    omega = torch.acos(dot)
    sin_omega = torch.sin(omega)
    safe = sin_omega.abs() > 1e-5
    sin_safe = torch.where(safe, sin_omega, torch.ones_like(sin_omega))
    wa = torch.where(safe, torch.sin((1.0 - ratio) * omega) / sin_safe, 1.0 - ratio)
    wb = torch.where(safe, torch.sin(ratio * omega) / sin_safe, ratio)
    direction = wa * unit_a + wb * unit_b
    result = direction * (norm_a * (1.0 - ratio) + norm_b * ratio)
    # nearly identical directions: plain linear interpolation is exact enough and stable
    return torch.where(dot > 1.0 - 1e-5, a * (1.0 - ratio) + b * ratio, result)


def bislerp(samples: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Bilinear resize of a BCHW batch in which each 1-D blend is a slerp of channel vectors."""
    dtype = samples.dtype
    x = samples.float()
    y_low, y_high, y_ratio = _source_coords(x.shape[-2], height, x.device)
    x_low, x_high, x_ratio = _source_coords(x.shape[-1], width, x.device)
    rows = _slerp(x[:, :, y_low, :], x[:, :, y_high, :], y_ratio.view(1, 1, -1, 1))
    out = _slerp(rows[:, :, :, x_low], rows[:, :, :, x_high], x_ratio.view(1, 1, 1, -1))
    return out.to(dtype)


def common_upscale(samples: torch.Tensor, width: int, height: int, upscale_method: str, crop: str) -> torch.Tensor:
    """Resize the last two dims of ``samples`` (BCHW, or more leading dims) to ``height`` x ``width``.

    ``crop="center"`` first crops the source to the target aspect ratio. Methods: nearest-exact,
    bilinear, area, bicubic (torch), lanczos (PIL), bislerp.
    """
    s = samples
    if crop == "center":
        old_w, old_h = samples.shape[-1], samples.shape[-2]
        old_aspect, new_aspect = old_w / old_h, width / height
        x = y = 0
        if old_aspect > new_aspect:
            x = round((old_w - old_w * (new_aspect / old_aspect)) / 2)
        elif old_aspect < new_aspect:
            y = round((old_h - old_h * (old_aspect / new_aspect)) / 2)
        s = samples.narrow(-2, y, old_h - y * 2).narrow(-1, x, old_w - x * 2)
    lead = s.shape[:-3]
    flat = s.reshape(-1, *s.shape[-3:]) if s.ndim != 4 else s
    if upscale_method == "bislerp":
        out = bislerp(flat, width, height)
    elif upscale_method == "lanczos":
        out = lanczos(flat, width, height)
    else:
        out = F.interpolate(flat, size=(height, width), mode=upscale_method)
    return out.reshape(*lead, *out.shape[-3:]) if s.ndim != 4 else out


def repeat_to_batch_size(tensor: torch.Tensor, batch_size: int, dim: int = 0) -> torch.Tensor:
    """Cut or cyclically repeat ``tensor`` along ``dim`` to exactly ``batch_size`` entries."""
    size = tensor.shape[dim]
    if size > batch_size:
        return tensor.narrow(dim, 0, batch_size)
    if size < batch_size:
        repeats = [1] * tensor.ndim
        repeats[dim] = math.ceil(batch_size / size)
        return tensor.repeat(repeats).narrow(dim, 0, batch_size)
    return tensor


def reshape_mask(input_mask: torch.Tensor, output_shape: tuple[int, ...] | torch.Size) -> torch.Tensor:
    """Resize a mask to ``output_shape`` (B, C, *spatial): interpolate, repeat channels and batch."""
    dims = len(output_shape) - 2
    modes = {1: "linear", 2: "bilinear", 3: "trilinear"}
    if dims not in modes:
        raise ValueError(f"reshape_mask: unsupported output shape {tuple(output_shape)}")
    mask = input_mask
    if dims == 1 and mask.ndim < 3:
        mask = mask.reshape((-1, 1, mask.shape[-1]))
    elif dims == 2:
        mask = mask.reshape((-1, 1, mask.shape[-2], mask.shape[-1]))
    elif dims == 3 and mask.ndim < 5:
        mask = mask.reshape((1, 1, -1, mask.shape[-2], mask.shape[-1]))
    mask = F.interpolate(mask.float(), size=tuple(output_shape[2:]), mode=modes[dims])
    if mask.shape[1] < output_shape[1]:
        mask = mask.repeat((1, output_shape[1]) + (1,) * dims)[:, : output_shape[1]]
    return repeat_to_batch_size(mask, output_shape[0])


# ---- files -------------------------------------------------------------------------------------


def safetensors_header(safetensors_path: str, max_size: int = 100 * 1024 * 1024) -> bytes | None:
    """The raw JSON header of a .safetensors file, or None when it claims more than ``max_size``."""
    with open(safetensors_path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        if length > max_size:
            return None
        return f.read(length)


def load_torch_file(
    ckpt: str, safe_load: bool = True, device: Any = None, return_metadata: bool = False
) -> Any:
    """A state dict from a .safetensors/.sft file or a torch checkpoint (``weights_only`` always)."""
    dev = torch.device("cpu") if device is None else torch.device(device)
    metadata: dict[str, str] | None = None
    if str(ckpt).lower().endswith((".safetensors", ".sft")):
        import safetensors.torch

        sd = safetensors.torch.load_file(str(ckpt), device=str(dev))
        if return_metadata:
            header = safetensors_header(str(ckpt))
            metadata = json.loads(header).get("__metadata__") if header else None
    else:
        loaded = torch.load(str(ckpt), map_location=dev, weights_only=True)
        if isinstance(loaded, dict) and "global_step" in loaded:
            log.debug("global step: %s", loaded["global_step"])
        if isinstance(loaded, dict) and "state_dict" in loaded:
            sd = loaded["state_dict"]
        elif isinstance(loaded, dict) and len(loaded) == 1:
            only = next(iter(loaded.values()))
            sd = only if isinstance(only, dict) else loaded
        else:
            sd = loaded
    return (sd, metadata) if return_metadata else sd


def state_dict_prefix_replace(
    state_dict: dict[str, Any], replace_prefix: dict[str, str], filter_keys: bool = False
) -> dict[str, Any]:
    out: dict[str, Any] = {} if filter_keys else state_dict
    for prefix, new in replace_prefix.items():
        for key in [k for k in state_dict if k.startswith(prefix)]:
            out[new + key[len(prefix):]] = state_dict.pop(key)
    return out


def save_torch_file(sd: dict[str, torch.Tensor], ckpt: str, metadata: dict[str, str] | None = None) -> None:
    """Write a state dict as .safetensors (with string ``metadata`` in its header when given)."""
    import safetensors.torch

    safetensors.torch.save_file(sd, str(ckpt), metadata=metadata)


def calculate_parameters(sd: dict[str, Any], prefix: str = "") -> int:
    """Number of elements in the tensors of ``sd`` whose keys start with ``prefix``."""
    return sum(int(v.nelement()) for k, v in sd.items() if k.startswith(prefix))


# ---- tiled processing --------------------------------------------------------------------------

Scale = float | Callable[[float], float]


def get_tiled_scale_steps(width: int, height: int, tile_x: int, tile_y: int, overlap: int) -> int:
    """How many tiles :func:`tiled_scale` runs for one image of ``width`` x ``height``."""

    def count(size: int, tile: int) -> int:
        return 1 if size <= tile else math.ceil((size - overlap) / (tile - overlap))

    return count(height, tile_y) * count(width, tile_x)


def _per_dim(value: Any, dims: int) -> list[Any]:
    return list(value) if isinstance(value, (tuple, list)) else [value] * dims


def _apply(scale: Scale, value: float, downscale: bool) -> float:
    if callable(scale):
        return scale(value)
    return value / scale if downscale else value * scale


def _feather(weights: torch.Tensor, dim: int, width: int) -> None:
    """Ramp ``weights`` linearly up from both ends of ``dim`` over ``width`` cells, in place."""
    if width <= 0 or width >= weights.shape[dim]:
        return
    for i in range(width):
        factor = (i + 1) / width
        weights.narrow(dim, i, 1).mul_(factor)
        weights.narrow(dim, weights.shape[dim] - 1 - i, 1).mul_(factor)


@torch.inference_mode()
def tiled_scale_multidim(
    samples: torch.Tensor,
    function: Callable[[torch.Tensor], torch.Tensor],
    tile: Sequence[int] = (64, 64),
    overlap: int | Sequence[int] = 8,
    upscale_amount: Scale | Sequence[Scale] = 4,
    out_channels: int = 3,
    output_device: Any = "cpu",
    downscale: bool = False,
    index_formulas: Scale | Sequence[Scale] | None = None,
    pbar: Any = None,
) -> torch.Tensor:
    """Run ``function`` over overlapping tiles of ``samples`` (B, C, *spatial) and blend the results.

    Each spatial dim ``d`` is cut into tiles of ``tile[d]`` with ``overlap[d]`` cells shared between
    neighbours; ``function`` maps a tile to an output ``upscale_amount`` times larger (or smaller with
    ``downscale``; a callable gives the output size for an input size) with ``out_channels`` channels.
    Overlaps are cross-faded with linear ramps. ``index_formulas`` maps tile positions to output
    positions when they do not scale like sizes. ``pbar.update(1)`` is called per tile.
    """
    dims = len(tile)
    scales = _per_dim(upscale_amount, dims)
    overlaps = _per_dim(overlap, dims)
    positions_scale = scales if index_formulas is None else _per_dim(index_formulas, dims)

    def out_size(shape: Sequence[int]) -> list[int]:
        return [round(_apply(scales[d], shape[d], downscale)) for d in range(dims)]

    output = torch.empty([samples.shape[0], out_channels, *out_size(samples.shape[2:])], device=output_device)
    for b in range(samples.shape[0]):
        item = samples[b : b + 1]
        spatial = item.shape[2:]
        if all(spatial[d] <= tile[d] for d in range(dims)):
            output[b : b + 1] = function(item).to(output_device)
            if pbar is not None:
                pbar.update(1)
            continue
        acc = torch.zeros([1, out_channels, *out_size(spatial)], device=output_device)
        weight = torch.zeros_like(acc)
        starts = [
            range(0, spatial[d] - overlaps[d], tile[d] - overlaps[d]) if spatial[d] > tile[d] else [0]
            for d in range(dims)
        ]
        for corner in itertools.product(*starts):
            piece = item
            out_at: list[int] = []
            for d in range(dims):
                start = max(0, min(spatial[d] - overlaps[d], corner[d]))
                piece = piece.narrow(d + 2, start, min(tile[d], spatial[d] - start))
                out_at.append(round(_apply(positions_scale[d], start, downscale)))
            result = function(piece).to(output_device)
            mask = torch.ones_like(result)
            for d in range(dims):
                _feather(mask, d + 2, round(_apply(scales[d], overlaps[d], downscale)))
            acc_view, weight_view = acc, weight
            for d in range(dims):
                acc_view = acc_view.narrow(d + 2, out_at[d], mask.shape[d + 2])
                weight_view = weight_view.narrow(d + 2, out_at[d], mask.shape[d + 2])
            acc_view.add_(result * mask)
            weight_view.add_(mask)
            if pbar is not None:
                pbar.update(1)
        output[b : b + 1] = acc / weight
    return output


def tiled_scale(
    samples: torch.Tensor,
    function: Callable[[torch.Tensor], torch.Tensor],
    tile_x: int = 64,
    tile_y: int = 64,
    overlap: int = 8,
    upscale_amount: Scale = 4,
    out_channels: int = 3,
    output_device: Any = "cpu",
    pbar: Any = None,
) -> torch.Tensor:
    """:func:`tiled_scale_multidim` over the last two dims (B, C, H, W) with ``tile_x`` x ``tile_y`` tiles."""
    return tiled_scale_multidim(samples, function, (tile_y, tile_x), overlap=overlap, upscale_amount=upscale_amount,
                                out_channels=out_channels, output_device=output_device, pbar=pbar)


# ---- module attributes -------------------------------------------------------------------------


def get_attr(obj: Any, attr: str) -> Any:
    """``obj.a.b.c`` for ``attr="a.b.c"``."""
    for name in attr.split("."):
        obj = getattr(obj, name)
    return obj


def set_attr(obj: Any, attr: str, value: Any) -> Any:
    """Set ``obj.a.b.c = value``; returns the previous value."""
    *path, last = attr.split(".")
    for name in path:
        obj = getattr(obj, name)
    previous = getattr(obj, last)
    setattr(obj, last, value)
    return previous


def set_attr_param(obj: Any, attr: str, value: torch.Tensor) -> Any:
    """Like :func:`set_attr`, wrapping ``value`` in a frozen ``torch.nn.Parameter``."""
    return set_attr(obj, attr, torch.nn.Parameter(value, requires_grad=False))
