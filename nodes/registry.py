"""The node registry: builtin nodes plus every custom node pack of every ``custom_nodes`` folder.

The API process (validation, ``/object_info``) and every worker build the same registry at boot
with :func:`nodes.boot.boot`. A pack that fails to import is logged and skipped; builtin names
cannot be overridden by a pack.
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import logging
import sys
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import nodes as nodes_face

log = logging.getLogger("nodefarm.registry")


@dataclass
class PackInfo:
    """One loaded (or failed) custom node pack."""

    name: str
    path: Path
    nodes: list[str] = field(default_factory=list)
    web_dir: Path | None = None
    error: str | None = None


@dataclass
class NodeRegistry:
    classes: dict[str, type] = field(default_factory=dict)
    display_names: dict[str, str] = field(default_factory=dict)
    # EXTENSION_WEB_DIRS: pack name -> absolute folder of its web extension.
    web_dirs: dict[str, Path] = field(default_factory=dict)
    packs: list[PackInfo] = field(default_factory=list)
    builtin_names: frozenset[str] = frozenset()

    def get(self, class_type: str) -> type | None:
        return self.classes.get(class_type)

    def __contains__(self, class_type: object) -> bool:
        return class_type in self.classes

    def missing_hint(self, class_type: str) -> str | None:
        """Why a class a prompt names is not here, when it is known: one of ComfyUI's core nodes (which
        nodes/compat declares for packs) on a farm started without the user's ComfyUI."""
        from nodes.compat.comfy_nodes_standins import NODE_CLASSES
        from nodes.compat.needs_comfyui import HINT

        return f"{class_type} is one of ComfyUI's core nodes: {HINT}" if class_type in NODE_CLASSES else None

    def add_builtin(self, mappings: dict[str, type], display: dict[str, str], module: str) -> None:
        for name, cls in mappings.items():
            self.classes[name] = cls
            if not hasattr(cls, "RELATIVE_PYTHON_MODULE"):
                cls.RELATIVE_PYTHON_MODULE = module  # type: ignore[attr-defined]
        self.display_names.update(display)
        self.builtin_names = frozenset(self.classes)

    def add_pack_nodes(self, pack: PackInfo, mappings: dict[str, type], display: dict[str, str]) -> None:
        for name, cls in mappings.items():
            if name in self.builtin_names:
                log.warning("custom node pack %s tried to override builtin node %s; ignored", pack.name, name)
                continue
            try:
                cls.RELATIVE_PYTHON_MODULE = f"custom_nodes.{pack.name}"  # type: ignore[attr-defined]
            except (AttributeError, TypeError):
                pass
            self.classes[name] = cls
            pack.nodes.append(name)
            if name in display:
                self.display_names[name] = display[name]

    # ---- loading -------------------------------------------------------------------------------

    def load_custom_nodes(self, folders: Iterable[Path]) -> None:
        seen: set[Path] = set()
        for folder in folders:
            folder = Path(folder)
            if not folder.is_dir() or folder.resolve() in seen:
                continue
            seen.add(folder.resolve())
            for entry in sorted(folder.iterdir()):
                if entry.name.startswith(".") or entry.name == "__pycache__" or entry.name.endswith(".disabled"):
                    continue
                if entry.is_dir() and (entry / "__init__.py").is_file():
                    self._load_pack(entry, entry / "__init__.py")
                elif entry.is_file() and entry.suffix == ".py":
                    self._load_pack(entry, entry)

    def _load_pack(self, path: Path, init: Path) -> None:
        name = path.stem if path.is_file() else path.name
        pack = PackInfo(name=name, path=path)
        self.packs.append(pack)
        module_name = str(path.resolve()).replace(".", "_x_") if path.is_dir() else name
        try:
            spec = importlib.util.spec_from_file_location(
                module_name, init, submodule_search_locations=[str(path)] if path.is_dir() else None
            )
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot import {init}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            before = dict(nodes_face.EXTENSION_WEB_DIRS)
            spec.loader.exec_module(module)
            self._capture_web_dirs(before)
            self._register_module(pack, module)
        except Exception as exc:  # a broken pack must never take the farm down
            sys.modules.pop(module_name, None)
            pack.error = f"{type(exc).__name__}: {exc}"
            log.error("Cannot import custom node pack %s: %s\n%s", path, pack.error, traceback.format_exc())

    def _capture_web_dirs(self, before: dict[str, str]) -> None:
        """Keep the folders a pack put into ``nodes.EXTENSION_WEB_DIRS`` while it was imported (some
        packs register their JS that way instead of, or besides, ``WEB_DIRECTORY``); boot's
        :func:`nodes.bind_registry` rebuilds that dict from :attr:`web_dirs`. A relative folder is
        taken from the working directory, as upstream's static route does."""
        for name, folder in list(nodes_face.EXTENSION_WEB_DIRS.items()):
            if before.get(name) == folder or not isinstance(name, str):
                continue
            try:
                path = Path(folder).resolve()
            except (TypeError, ValueError, OSError):
                log.warning("nodes.EXTENSION_WEB_DIRS[%r] = %r is not a folder; ignored", name, folder)
                continue
            if path.is_dir():
                self.web_dirs[name] = path
            else:
                log.warning("nodes.EXTENSION_WEB_DIRS[%r]: no folder %s; ignored", name, path)

    def _register_module(self, pack: PackInfo, module: ModuleType) -> None:
        web = getattr(module, "WEB_DIRECTORY", None)
        if web is not None:
            web_dir = (pack.path / web).resolve() if pack.path.is_dir() else (pack.path.parent / web).resolve()
            if web_dir.is_dir():
                pack.web_dir = web_dir
                self.web_dirs[pack.name] = web_dir
        mappings = getattr(module, "NODE_CLASS_MAPPINGS", None)
        if isinstance(mappings, dict):
            display = getattr(module, "NODE_DISPLAY_NAME_MAPPINGS", None) or {}
            self.add_pack_nodes(pack, mappings, display)
            return
        entry = getattr(module, "comfy_entrypoint", None)
        if callable(entry):
            self._register_v3(pack, entry)
            return
        log.warning("custom node pack %s has no NODE_CLASS_MAPPINGS nor comfy_entrypoint; skipped", pack.name)

    def _register_v3(self, pack: PackInfo, entry: Any) -> None:
        extension = _run_maybe_async(entry())
        node_list = _run_maybe_async(extension.get_node_list())
        mappings: dict[str, type] = {}
        display: dict[str, str] = {}
        for node_cls in node_list:
            schema = node_cls.GET_SCHEMA() if hasattr(node_cls, "GET_SCHEMA") else node_cls.define_schema()
            mappings[schema.node_id] = node_cls
            if getattr(schema, "display_name", None):
                display[schema.node_id] = schema.display_name
        self.add_pack_nodes(pack, mappings, display)


def _run_maybe_async(value: Any) -> Any:
    if inspect.isawaitable(value):
        return asyncio.run(_await(value))
    return value


async def _await(value: Any) -> Any:
    return await value
