"""ComfyUI's ``comfy.sd``, reduced to importable names: loading checkpoints needs ComfyUI (--comfyui)."""

from __future__ import annotations

from typing import Any

from nodes.compat.needs_comfyui import fail


class CLIP:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        fail("comfy.sd.CLIP")


class VAE:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        fail("comfy.sd.VAE")


class StyleModel:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        fail("comfy.sd.StyleModel")


def load_checkpoint_guess_config(*args: Any, **kwargs: Any) -> Any:
    fail("comfy.sd.load_checkpoint_guess_config")


def load_diffusion_model(*args: Any, **kwargs: Any) -> Any:
    fail("comfy.sd.load_diffusion_model")


def load_clip(*args: Any, **kwargs: Any) -> Any:
    fail("comfy.sd.load_clip")


def load_lora_for_models(*args: Any, **kwargs: Any) -> Any:
    fail("comfy.sd.load_lora_for_models")


def load_style_model(*args: Any, **kwargs: Any) -> Any:
    fail("comfy.sd.load_style_model")
