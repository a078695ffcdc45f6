"""The ComfyUI modules live in this process, by their ComfyUI names.

After :func:`nodes.boot.boot`, ``sys.modules["comfy.model_management"]`` (and every other ComfyUI
name) is either the user's ComfyUI (``--comfyui``) or our stand-in from ``nodes/compat``. Farm code
that must talk to whichever is live (the executor's ExecutionBlocker, the interrupt flag, the
progress hook, folder_paths) asks here; before boot (the pure unit tier) the stand-in answers.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import Any


def live(name: str) -> ModuleType:
    """The module ComfyUI code in this process gets for ``import <name>``."""
    module = sys.modules.get(name)
    return module if module is not None else importlib.import_module(f"nodes.compat.{name}")


def stand_in(name: str) -> ModuleType:
    """Our own module for a ComfyUI name (whatever is live)."""
    return importlib.import_module(f"nodes.compat.{name}")


def both(name: str, attr: str) -> tuple[Any, ...]:
    """``attr`` of the live module and of our stand-in, each once (for ``isinstance``/``except``)."""
    a, b = getattr(live(name), attr), getattr(stand_in(name), attr)
    return (a,) if a is b else (a, b)
