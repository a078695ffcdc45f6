"""ComfyUI's ``latent_preview``: the sampler step callback that drives a node's progress bar.

No latent decoder weights (TAESD) ship with nodefarm, so :func:`get_previewer` returns None and the
callback reports progress without a preview image. :class:`Latent2RGBPreviewer` (a linear map from
latent channels to RGB) works; :class:`TAESD` is a stand-in that names ``--comfyui``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nodes.compat.comfy.cli_args import LatentPreviewMethod, args
from nodes.compat.needs_comfyui import model_class

MAX_PREVIEW_RESOLUTION = args.preview_size


class LatentPreviewer:
    """Base of latent previewers: decode an ``x0`` latent to a preview image."""

    def decode_latent_to_preview(self, x0: Any) -> Any:
        raise NotImplementedError

    def decode_latent_to_preview_image(self, preview_format: str, x0: Any) -> tuple[str, Any, int]:
        return (preview_format, self.decode_latent_to_preview(x0), args.preview_size)


def preview_to_image(latent_image: Any) -> Any:
    """An (H, W, 3) tensor in [-1, 1] as an 8-bit RGB PIL image."""
    import torch
    from PIL import Image

    scaled = ((latent_image + 1.0) / 2.0).clamp(0, 1).mul(255.0)
    return Image.fromarray(scaled.to(device="cpu", dtype=torch.uint8).numpy())


class Latent2RGBPreviewer(LatentPreviewer):
    """Preview by a linear map of latent channels to RGB (``latent_rgb_factors``: one RGB row per channel)."""

    def __init__(self, latent_rgb_factors: Any, latent_rgb_factors_bias: Any = None) -> None:
        import torch

        self.latent_rgb_factors = torch.tensor(latent_rgb_factors, device="cpu").transpose(0, 1)
        self.latent_rgb_factors_bias = (
            torch.tensor(latent_rgb_factors_bias, device="cpu") if latent_rgb_factors_bias is not None else None
        )

    def decode_latent_to_preview(self, x0: Any) -> Any:
        import torch

        factors = self.latent_rgb_factors.to(dtype=x0.dtype, device=x0.device)
        bias = None if self.latent_rgb_factors_bias is None else self.latent_rgb_factors_bias.to(
            dtype=x0.dtype, device=x0.device)
        first = x0[0:1]
        if first.ndim == 5:  # video latents: the first frame
            first = first[:, :, 0]
        rgb = torch.nn.functional.linear(first.movedim(1, -1), factors, bias=bias)[0]
        return preview_to_image(rgb)


TAESD = model_class("latent_preview.TAESD")


class TAESDPreviewerImpl(LatentPreviewer):
    """Preview through a TAESD decoder (which needs ComfyUI: :class:`TAESD` cannot be built here)."""

    def __init__(self, taesd: Any) -> None:
        self.taesd = taesd

    def decode_latent_to_preview(self, x0: Any) -> Any:
        decoded = self.taesd.decode(x0[:1])[0].movedim(0, 2)
        return preview_to_image(decoded)


def get_previewer(device: Any, latent_format: Any) -> LatentPreviewer | None:
    """The previewer for ``args.preview_method``; always None here (no decoder weights)."""
    return None


def prepare_callback(
    model: Any, steps: int, x0_output_dict: dict[str, Any] | None = None
) -> Callable[[int, Any, Any, int], None]:
    """A ``callback(step, x0, x, total_steps)`` that advances a ``ProgressBar(steps)``.

    When ``x0_output_dict`` is given, the latest ``x0`` is stored in it under ``"x0"``.
    """
    from nodes.compat.comfy import utils as comfy_utils

    previewer = get_previewer(getattr(model, "load_device", None), None)
    progress = comfy_utils.ProgressBar(steps)

    def callback(step: int, x0: Any, x: Any, total_steps: int) -> None:
        if x0_output_dict is not None:
            x0_output_dict["x0"] = x0
        preview = previewer.decode_latent_to_preview_image("JPEG", x0) if previewer is not None else None
        progress.update_absolute(step + 1, total_steps, preview)

    return callback


__all__ = [
    "MAX_PREVIEW_RESOLUTION", "TAESD", "Latent2RGBPreviewer", "LatentPreviewMethod", "LatentPreviewer",
    "TAESDPreviewerImpl", "get_previewer", "prepare_callback", "preview_to_image",
]
