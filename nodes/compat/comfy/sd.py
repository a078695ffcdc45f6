"""ComfyUI's ``comfy.sd``, reduced to importable names: loading checkpoints needs model weights."""

from __future__ import annotations

from typing import Any

_NEEDS_WEIGHTS = "comfy.sd.{} needs model weights; nodefarm's builtin library has none"


class CLIP:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(_NEEDS_WEIGHTS.format("CLIP"))


class VAE:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(_NEEDS_WEIGHTS.format("VAE"))


class StyleModel:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(_NEEDS_WEIGHTS.format("StyleModel"))


def load_checkpoint_guess_config(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError(_NEEDS_WEIGHTS.format("load_checkpoint_guess_config"))


def load_diffusion_model(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError(_NEEDS_WEIGHTS.format("load_diffusion_model"))


def load_clip(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError(_NEEDS_WEIGHTS.format("load_clip"))


def load_lora_for_models(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError(_NEEDS_WEIGHTS.format("load_lora_for_models"))


def load_style_model(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError(_NEEDS_WEIGHTS.format("load_style_model"))
