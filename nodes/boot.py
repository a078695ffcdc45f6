"""The one boot function: compat modules on sys.path, folder_paths configured, registry built.

Every process of the farm calls :func:`boot` once before it touches a node class.
"""

from __future__ import annotations

import gc
import importlib
import logging
import pkgutil
import sys
from pathlib import Path

import nodes as nodes_face
from nodes.registry import NodeRegistry
from nodes.settings import Settings

log = logging.getLogger("nodefarm.boot")

COMPAT_DIR = Path(__file__).resolve().parent / "compat"


def install_compat(*, skip: tuple[str, ...] = ()) -> None:
    """Put the compat folder on sys.path and register each of its modules under its ComfyUI name.

    Idempotent. Every module is imported once as ``nodes.compat.<name>`` and the same object is
    entered as ``sys.modules[<name>]``, so a custom node's ``import folder_paths`` and our
    ``nodes.compat.folder_paths`` never diverge. ``skip``: top-level names the user's ComfyUI
    provides (``--comfyui``): those are neither registered nor found through our folder.
    """
    if not skip and str(COMPAT_DIR) not in sys.path:
        sys.path.insert(0, str(COMPAT_DIR))
    from nodes.compat import aiohttp_web_shim

    aiohttp_web_shim.install()  # `from aiohttp import web` for packs, only when aiohttp is not installed
    if not skip:  # our stand-ins: comfy.ldm.*, comfy.taesd.*, ... import as model-code stand-ins
        from nodes.compat.needs_comfyui import install_model_code_finder

        install_model_code_finder()
    import nodes.compat as compat_pkg

    for info in pkgutil.walk_packages(compat_pkg.__path__, prefix="nodes.compat."):
        short = info.name[len("nodes.compat."):]
        if short.split(".")[0] in skip:
            continue
        if short in sys.modules and sys.modules[short] is sys.modules.get(info.name):
            continue
        module = importlib.import_module(info.name)
        sys.modules[short] = module


def boot(settings: Settings, *, api: bool = False) -> NodeRegistry:
    """Configure the ComfyUI module face from ``settings`` and load every node. Returns the registry.

    With ``settings.comfyui_dir`` the user's ComfyUI is loaded (:mod:`nodes.comfyui`; CPU-only when
    ``api``): its node classes come first, ours fill in the names it lacks."""
    from nodes import builtin, torchvision_fix

    torchvision_fix.without_ops()  # packs and ComfyUI import torchvision; its C++ side may not load
    registry = NodeRegistry()
    if settings.comfyui_dir is not None:
        from nodes import comfyui

        install_compat(skip=comfyui.PROVIDED)
        core, display = comfyui.node_classes(comfyui.load(settings, api=api))
        mine = {k: v for k, v in builtin.NODE_CLASS_MAPPINGS.items() if k not in core}
        registry.add_builtin({**core, **mine}, {**builtin.NODE_DISPLAY_NAME_MAPPINGS, **display}, "nodes")
        custom_dirs = comfyui.custom_nodes_dirs(settings)
    else:
        install_compat()
        from nodes.compat import folder_paths

        custom_dirs = folder_paths.configure(settings)
        registry.add_builtin(builtin.NODE_CLASS_MAPPINGS, builtin.NODE_DISPLAY_NAME_MAPPINGS, "nodes")
    nodes_face.bind_registry(registry)
    registry.load_custom_nodes(custom_dirs)
    nodes_face.bind_registry(registry)
    log.info("loaded %d node classes (%d packs)", len(registry.classes), len(registry.packs))
    settle_heap()
    return registry


def settle_heap() -> None:
    """Move everything loaded so far (torch, the node packs: hundreds of thousands of objects) out
    of the garbage collector's sight. Without it every full collection walks them all, and a
    collection that lands in a request or a node costs tens of milliseconds."""
    gc.collect()
    gc.freeze()
