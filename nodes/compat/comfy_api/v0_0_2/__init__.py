"""ComfyUI's ``comfy_api.v0_0_2``: the same API as ``comfy_api.latest`` (re-exported)."""

from __future__ import annotations

from nodes.compat.comfy_api.latest import (
    IO,
    UI,
    ComfyAPI,
    ComfyAPISync,
    ComfyExtension,
    Input,
    InputImpl,
    Types,
    io,
    ui,
)

__all__ = ["IO", "UI", "ComfyAPI", "ComfyAPISync", "ComfyExtension", "Input", "InputImpl", "Types", "io", "ui"]
