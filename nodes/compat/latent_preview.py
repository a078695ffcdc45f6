"""ComfyUI's ``latent_preview``: the sampler step callback that drives a node's progress bar.

No latent decoders (TAESD, latent2rgb) ship with nodefarm, so :func:`get_previewer` returns None
and the callback reports progress without a preview image.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nodes.compat.comfy.cli_args import LatentPreviewMethod, args

MAX_PREVIEW_RESOLUTION = args.preview_size


class LatentPreviewer:
    """Base of latent previewers: decode an ``x0`` latent to a preview image."""

    def decode_latent_to_preview(self, x0: Any) -> Any:
        raise NotImplementedError

    def decode_latent_to_preview_image(self, preview_format: str, x0: Any) -> tuple[str, Any, int]:
        return (preview_format, self.decode_latent_to_preview(x0), args.preview_size)


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


__all__ = ["MAX_PREVIEW_RESOLUTION", "LatentPreviewMethod", "LatentPreviewer", "get_previewer", "prepare_callback"]
