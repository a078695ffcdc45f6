"""Bring your own ComfyUI: load the user's ComfyUI checkout (``--comfyui DIR``) into this process.

With ``Settings.comfyui_dir`` set, :func:`nodes.boot.boot` calls :func:`load` instead of standing in
with our compat modules: ComfyUI's own ``comfy``, ``comfy_extras``, ``comfy_api``,
``comfy_execution``, ``folder_paths``, ``latent_preview``, ``node_helpers`` and ``nodes.py`` are
imported from that folder at run time. nodefarm keeps its own ``server`` (``PromptServer``) and
wraps a few ``folder_paths`` functions with the farm's hooks (farm-wide save counters, inputs and
model files fetched when they are missing on this host). nodefarm contains none of ComfyUI's code.

Order matters, as ComfyUI's own ``main.py`` knows:

* ``comfy.cli_args`` imported once with the flags the farm passes through (``NODEFARM_COMFYUI_ARGS``)
  as its argv, so ComfyUI's own parser gives them their meaning, then ``args_parsing`` off again;
  the farm's folders and ``--cpu`` set in ``args``, all before ``comfy.model_management`` (which
  probes CUDA) is imported;
* ComfyUI's ``utils`` package before ``nodes.py`` (which puts ``<ComfyUI>/comfy`` first on sys.path,
  where ``comfy/utils.py`` would shadow it);
* ``nodes.py`` is imported as ``comfyui_nodes``: our package is ``nodes``, and its ``__getattr__``
  hands out ComfyUI's objects (``from nodes import common_ksampler, SaveImage``) from there.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import inspect
import logging
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from nodes import torchvision_fix
from nodes.errors import NodefarmNodesError
from nodes.settings import Settings

log = logging.getLogger("nodefarm.comfyui")

NODES_MODULE = "comfyui_nodes"
# the modules ComfyUI provides itself: our stand-ins for them are not installed in this mode
PROVIDED = ("comfy", "comfy_extras", "comfy_api", "comfy_execution", "execution", "folder_paths", "latent_preview",
            "node_helpers", "protocol")


class ComfyUIError(NodefarmNodesError):
    """The ComfyUI folder given with --comfyui cannot be used."""


def check_dir(path: Path) -> Path:
    """``path`` resolved, or a ComfyUIError saying what is missing."""
    root = Path(path).expanduser().resolve()
    missing = [n for n in ("nodes.py", "folder_paths.py", "comfy", "comfy_extras") if not (root / n).exists()]
    if missing:
        raise ComfyUIError(f"--comfyui {root}: not a ComfyUI checkout (no {', '.join(missing)})")
    return root


def active() -> ModuleType | None:
    """ComfyUI's ``nodes.py`` module when this process loaded a ComfyUI, else None."""
    return sys.modules.get(NODES_MODULE)


def load(settings: Settings, *, api: bool = False) -> ModuleType:
    """Import the ComfyUI of ``settings.comfyui_dir`` into this process; returns its ``nodes.py``.

    ``api``: the API process, which loads ComfyUI CPU-only (validation and ``/object_info``).
    Idempotent."""
    loaded = active()
    if loaded is not None:
        return loaded
    assert settings.comfyui_dir is not None
    root = check_dir(settings.comfyui_dir)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    _configure_args(settings, api=api)
    torchvision_fix.without_ops()
    importlib.import_module("utils.extra_config")  # ComfyUI's utils package, before nodes.py shadows it
    folder_paths = importlib.import_module("folder_paths")
    _configure_folders(folder_paths, settings)
    spec = importlib.util.spec_from_file_location(NODES_MODULE, root / "nodes.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[NODES_MODULE] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(NODES_MODULE, None)
        raise
    failed = asyncio.run(module.init_extra_nodes(init_custom_nodes=False, init_api_nodes=False))
    if failed:
        log.warning("ComfyUI extras that did not import: %s", ", ".join(failed))
    log.info("ComfyUI %s loaded from %s: %d node classes", _version(root), root, len(module.NODE_CLASS_MAPPINGS))
    return module


def _version(root: Path) -> str:
    try:
        return str(importlib.import_module("comfyui_version").__version__)
    except Exception:  # noqa: BLE001 - a version string is decoration
        return "(unknown version)"


def _configure_args(settings: Settings, *, api: bool) -> None:
    options = importlib.import_module("comfy.options")
    options.enable_args_parsing(True)  # ComfyUI parses (and post-processes) the flags passed through
    argv = sys.argv
    sys.argv = ["main.py", *shlex.split(settings.comfyui_args)]
    try:
        cli_args = importlib.import_module("comfy.cli_args")
    except SystemExit as exc:  # argparse already printed the reason
        raise ComfyUIError(f"ComfyUI rejected the flags {settings.comfyui_args!r}") from exc
    finally:
        sys.argv = argv
        options.enable_args_parsing(False)
    args = cli_args.args
    args.cpu = bool(args.cpu or settings.cpu or api)
    if not args.cpu and not _accelerator():
        log.warning("no GPU visible to torch %s: this worker runs ComfyUI on the CPU (--cpu)",
                    importlib.import_module("torch").__version__)
        args.cpu = True
    args.disable_metadata = bool(args.disable_metadata or settings.disable_metadata)
    args.output_directory = str(settings.output_dir)
    args.input_directory = str(settings.input_dir)
    args.user_directory = str(settings.user_dir)
    if api:
        args.preview_method = importlib.import_module("comfy.cli_args").LatentPreviewMethod.NoPreviews


def _accelerator() -> bool:
    """Whether torch sees a device ComfyUI can use besides the CPU (CUDA/ROCm, Apple MPS, Intel XPU)."""
    torch = importlib.import_module("torch")
    if torch.cuda.is_available():
        return True
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return True
    xpu = getattr(torch, "xpu", None)
    return bool(xpu is not None and xpu.is_available())


def _configure_folders(fp: ModuleType, settings: Settings) -> None:
    """ComfyUI's folder_paths pointed at the farm's folders, its file functions given the farm hooks."""
    from nodes.compat import folder_paths as farm_fp

    farm_fp.configure(settings)  # the farm's own view: hooks, roots, extra model paths
    fp.set_output_directory(str(settings.output_dir))
    fp.set_input_directory(str(settings.input_dir))
    fp.set_temp_directory(str(settings.temp_dir))
    fp.set_user_directory(str(settings.user_dir))
    if settings.models_dir.resolve() != Path(fp.models_dir).resolve():
        for name in list(fp.folder_names_and_paths):
            if name == "custom_nodes":
                continue
            fp.add_model_folder_path(name, str(settings.models_dir / name), is_default=True)
    if settings.extra_model_paths:
        extra_config = importlib.import_module("utils.extra_config")
        for path in settings.extra_model_paths:
            extra_config.load_extra_path_config(str(path))
    _wrap_folder_paths(fp, farm_fp)


def _wrap_folder_paths(fp: ModuleType, farm_fp: ModuleType) -> None:
    real_full_path: Callable[..., Any] = fp.get_full_path
    real_annotated: Callable[..., Any] = fp.get_annotated_filepath
    real_exists: Callable[..., Any] = fp.exists_annotated_filepath
    real_save_path: Callable[..., Any] = fp.get_save_image_path

    def get_full_path(folder_name: str, filename: str) -> str | None:
        found = real_full_path(folder_name, filename)
        if found is None:
            found = farm_fp.get_full_path(folder_name, filename)
        if found is None:  # a model the API host has: fetched from there into this host's first folder
            try:
                folders = fp.get_folder_paths(folder_name)
            except KeyError:
                folders = []
            if folders:
                found = farm_fp.fetch_model(folder_name, filename, folders[0])
        return found

    # both answer inside the farm's roots only (the same folders as ComfyUI's): a name with `..`, an
    # absolute path or a link out is refused before ComfyUI's own function sees it
    def get_annotated_filepath(name: str, default_dir: str | None = None) -> str:
        if farm_fp.contained(name, default_dir) is None:
            raise farm_fp.OutsideRootError(f"{name!r} is not a file inside the farm's input, output or temp folder")
        path = real_annotated(name, default_dir)
        if os.path.exists(path):
            return str(path)
        return str(farm_fp.get_annotated_filepath(name, default_dir))

    def exists_annotated_filepath(name: str) -> bool:
        if farm_fp.contained(name) is None:
            return False
        return bool(real_exists(name) or farm_fp.exists_annotated_filepath(name))

    def get_save_image_path(filename_prefix: str, output_dir: str, image_width: int = 0,
                            image_height: int = 0) -> tuple[str, str, int, str, str]:
        real_save_path(filename_prefix, output_dir, image_width, image_height)  # ComfyUI's own checks
        return farm_fp.reserve_save_path(filename_prefix, output_dir, image_width, image_height,
                                         batch=_caller_batch())

    for fn in (get_full_path, get_annotated_filepath, exists_annotated_filepath, get_save_image_path):
        setattr(fp, fn.__name__, fn)


def _caller_batch() -> int:
    """How many files the saving node will number from one counter: the length of the ``images``
    its save function holds (ComfyUI's SaveImage numbers a batch counter, counter+1, ...)."""
    frame = inspect.currentframe()
    try:
        caller = frame.f_back.f_back if frame is not None and frame.f_back is not None else None
        images = caller.f_locals.get("images") if caller is not None else None
        return max(1, len(images)) if images is not None and hasattr(images, "__len__") else 1
    except TypeError:
        return 1
    finally:
        del frame


def node_classes(module: ModuleType) -> tuple[dict[str, type], dict[str, str]]:
    """ComfyUI's core and extra node classes and their display names."""
    return dict(module.NODE_CLASS_MAPPINGS), dict(module.NODE_DISPLAY_NAME_MAPPINGS)


def custom_nodes_dirs(settings: Settings) -> list[Path]:
    """The custom_nodes folders of the farm, then ComfyUI's own (and those of extra_model_paths)."""
    fp = sys.modules["folder_paths"]
    out = list(settings.custom_nodes_dirs)
    out += [Path(p) for p in fp.get_folder_paths("custom_nodes") if Path(p) not in out]
    return out
