"""nodefarm's node layer, and ComfyUI's ``nodes`` module face for custom nodes.

Custom nodes do ``import nodes`` and read ``nodes.MAX_RESOLUTION``, ``nodes.NODE_CLASS_MAPPINGS``,
``nodes.EXTENSION_WEB_DIRS`` or subclass ``nodes.SaveImage``; this package is that module. The
mappings are filled by :func:`nodes.boot.boot` (the one place that mutates them); our own code
passes the :class:`nodes.registry.NodeRegistry` around instead of reading these globals.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nodes.registry import NodeRegistry

MAX_RESOLUTION = 16384

NODE_CLASS_MAPPINGS: dict[str, type] = {}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {}
EXTENSION_WEB_DIRS: dict[str, str] = {}
LOADED_MODULE_DIRS: dict[str, str] = {}


def bind_registry(registry: NodeRegistry) -> None:
    """Mirror the registry into ComfyUI's module-level mappings (called by boot only)."""
    NODE_CLASS_MAPPINGS.clear()
    NODE_CLASS_MAPPINGS.update(registry.classes)
    NODE_DISPLAY_NAME_MAPPINGS.clear()
    NODE_DISPLAY_NAME_MAPPINGS.update(registry.display_names)
    EXTENSION_WEB_DIRS.clear()
    EXTENSION_WEB_DIRS.update({k: str(v) for k, v in registry.web_dirs.items()})
    LOADED_MODULE_DIRS.clear()
    LOADED_MODULE_DIRS.update({p.name: str(p.path) for p in registry.packs if p.error is None})


def interrupt_processing(value: bool = True) -> None:
    from nodes import face

    face.live("comfy.model_management").interrupt_current_processing(value)


def before_node_execution() -> None:
    from nodes import face

    face.live("comfy.model_management").throw_exception_if_processing_interrupted()


def __getattr__(name: str) -> Any:
    # What custom nodes take from ComfyUI's `nodes` module, resolved lazily so that importing this
    # package has no side effects: with --comfyui everything of the user's ComfyUI's nodes.py
    # (common_ksampler, CLIPTextEncode, its SaveImage, ...); without it our core classes, then the
    # stand-ins for ComfyUI's (the model ones say to start the farm with --comfyui when called).
    import sys

    if name.startswith("__") or name in _submodules():
        raise AttributeError(name)  # `from nodes import schema` of a submodule not imported yet
    comfyui_nodes = sys.modules.get("comfyui_nodes")
    if comfyui_nodes is not None:
        if hasattr(comfyui_nodes, name):
            return getattr(comfyui_nodes, name)
    else:
        from nodes import builtin
        from nodes.compat.comfy_nodes_standins import standin

        found = builtin.NODE_CLASS_MAPPINGS.get(name) or standin(name)
        if found is not None:
            return found
    raise AttributeError(f"module 'nodes' has no attribute {name!r}")


@functools.cache
def _submodules() -> frozenset[str]:
    import pkgutil

    return frozenset(m.name for m in pkgutil.iter_modules(__path__))
