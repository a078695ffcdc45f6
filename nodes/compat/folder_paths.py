"""ComfyUI's ``folder_paths`` module: model folders, the input/output/temp/user roots, save paths.

Written from ComfyUI's documented behaviour (spec/comfyui.md sections 7 and 10). The module-level
state below is ComfyUI's public surface (custom nodes read ``folder_paths.models_dir`` and friends);
it is set once per process by :func:`configure`, called from :func:`nodes.boot.boot`.

Two farm hooks, both ``None`` unless a worker installs them (``configure`` leaves them alone):

* the counter hook (:func:`set_counter_hook`): ``fn(kind, subfolder, filename, n) -> first``
  reserves ``n`` consecutive file counters farm-wide for ``<subfolder>/<filename>_<N>_`` in the
  ``"output"`` or ``"temp"`` root, so workers that do not share a disk never pick the same name;
  without it the counter is ComfyUI's scan of the folder.
* the fetch hook (:func:`set_fetch_hook`): ``fn(kind, subfolder, filename) -> Path | None`` is asked
  for an ``input``/``output``/``temp`` file missing on this host; it may materialize the file (e.g.
  from the farm's Redis file store) and return where it now lies.
* the model fetch hook (:func:`set_model_fetch_hook`): ``fn(folder_name, filename, target_dir) ->
  Path | None`` is asked for a model file (a checkpoint, a LoRA, ...) that no folder of this host
  has; it may download it into ``target_dir`` (the farm: from the API host) and return its path.
"""

from __future__ import annotations

import logging
import mimetypes
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from nodes.settings import Settings

log = logging.getLogger("nodefarm.folder_paths")

CounterHook = Callable[[str, str, str, int], int]
FetchHook = Callable[[str, str, str], Path | None]
ModelFetchHook = Callable[[str, str, str], Path | None]

supported_pt_extensions: set[str] = {".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft"}

# Legacy folder names still accepted by every lookup.
_LEGACY_NAMES = {"unet": "diffusion_models", "clip": "text_encoders"}

# Standard model folders: key -> (sub-folders of models_dir, extensions); None = supported_pt_extensions.
_STANDARD_FOLDERS: tuple[tuple[str, tuple[str, ...], frozenset[str] | None], ...] = (
    ("checkpoints", ("checkpoints",), None),
    ("configs", ("configs",), frozenset({".yaml"})),
    ("loras", ("loras",), None),
    ("vae", ("vae",), None),
    ("text_encoders", ("text_encoders", "clip"), None),
    ("diffusion_models", ("unet", "diffusion_models"), None),
    ("clip_vision", ("clip_vision",), None),
    ("style_models", ("style_models",), None),
    ("embeddings", ("embeddings",), None),
    ("diffusers", ("diffusers",), frozenset({"folder"})),
    ("vae_approx", ("vae_approx",), None),
    ("controlnet", ("controlnet", "t2i_adapter"), None),
    ("gligen", ("gligen",), None),
    ("upscale_models", ("upscale_models",), None),
    ("hypernetworks", ("hypernetworks",), None),
    ("photomaker", ("photomaker",), None),
    ("classifiers", ("classifiers",), frozenset({""})),
    ("model_patches", ("model_patches",), None),
    ("audio_encoders", ("audio_encoders",), None),
)

# Content types that the mimetypes table of some Pythons lacks.
_EXTRA_CONTENT_TYPES = {
    ".webp": "image", ".avif": "image", ".jxl": "image", ".heic": "image",
    ".webm": "video", ".mkv": "video", ".mp4": "video", ".mov": "video",
    ".flac": "audio", ".opus": "audio", ".m4a": "audio", ".ogg": "audio", ".wav": "audio", ".mp3": "audio",
    ".gltf": "model", ".glb": "model", ".obj": "model", ".fbx": "model", ".stl": "model",
}

_TYPE_SUFFIXES = {"output": " [output]", "input": " [input]", "temp": " [temp]"}

# ---- ComfyUI's module state (set by configure) ------------------------------------------------
base_path: str = os.getcwd()
models_dir: str = os.path.join(base_path, "models")
output_directory: str = os.path.join(base_path, "output")
temp_directory: str = os.path.join(base_path, "temp")
input_directory: str = os.path.join(base_path, "input")
user_directory: str = os.path.join(base_path, "user")
# folder key -> (list of folders, set of extensions); the same shape as ComfyUI's.
folder_names_and_paths: dict[str, tuple[list[str], set[str]]] = {}
# PNG metadata off (--disable-metadata); read by SaveImage.
disable_metadata: bool = False

# ---- farm hooks -------------------------------------------------------------------------------
_counter_hook: CounterHook | None = None
_fetch_hook: FetchHook | None = None
_model_fetch_hook: ModelFetchHook | None = None


class SavePathError(Exception):
    """A save path would land outside the output folder."""


def set_counter_hook(fn: CounterHook | None) -> None:
    """Install (or, with ``None``, remove) the farm-wide file counter."""
    global _counter_hook
    _counter_hook = fn


def set_fetch_hook(fn: FetchHook | None) -> None:
    """Install (or, with ``None``, remove) the fetcher of files missing on this host."""
    global _fetch_hook
    _fetch_hook = fn


def set_model_fetch_hook(fn: ModelFetchHook | None) -> None:
    """Install (or, with ``None``, remove) the fetcher of model files missing on this host."""
    global _model_fetch_hook
    _model_fetch_hook = fn


def fetch_model(folder_name: str, filename: str, target_dir: str) -> str | None:
    """Ask the model fetch hook for ``filename`` of ``folder_name``, to land in ``target_dir``."""
    hook = _model_fetch_hook
    rel = _safe_relative(filename)
    if hook is None or rel is None:
        return None
    got = hook(folder_name, rel.replace(os.sep, "/"), target_dir)
    if got is not None:
        cache_helper.clear()
    return None if got is None else str(got)


class CacheHelper:
    """ComfyUI's ``cache_helper``: a filename-list cache active only inside ``with cache_helper:``."""

    def __init__(self) -> None:
        self.cache: dict[str, Any] = {}
        self.active = False

    def get(self, key: str, default: Any = None) -> Any:
        return self.cache.get(key, default) if self.active else default

    def set(self, key: str, value: Any) -> None:
        if self.active:
            self.cache[key] = value

    def clear(self) -> None:
        self.cache.clear()

    def __enter__(self) -> CacheHelper:
        self.active = True
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.active = False
        self.clear()


cache_helper = CacheHelper()


# ---- configuration ----------------------------------------------------------------------------


def configure(settings: Settings) -> list[Path]:
    """Set every root from ``settings``, create the four data folders, register the model folders,
    read the extra_model_paths YAML files; return the custom_nodes folders to load (in order)."""
    global base_path, models_dir, disable_metadata
    base = Path(settings.base_dir).expanduser().resolve()

    def under_base(p: Path) -> Path:
        p = Path(p).expanduser()
        return p if p.is_absolute() else base / p

    base_path = str(base)
    models_dir = str(under_base(settings.models_dir))
    disable_metadata = bool(settings.disable_metadata)
    set_output_directory(str(under_base(settings.output_dir)))
    set_input_directory(str(under_base(settings.input_dir)))
    set_temp_directory(str(under_base(settings.temp_dir)))
    set_user_directory(str(under_base(settings.user_dir)))
    for folder in (output_directory, input_directory, temp_directory, user_directory):
        os.makedirs(folder, exist_ok=True)

    folder_names_and_paths.clear()
    cache_helper.clear()
    for key, subs, exts in _STANDARD_FOLDERS:
        folder_names_and_paths[key] = (
            [os.path.join(models_dir, s) for s in subs],
            set(supported_pt_extensions if exts is None else exts),
        )
    own_custom = [under_base(p) for p in settings.custom_nodes_dirs]
    folder_names_and_paths["custom_nodes"] = (
        [str(p) for p in own_custom] or [os.path.join(base_path, "custom_nodes")],
        set(),
    )
    yaml_custom: list[Path] = []
    for yaml_file in settings.extra_model_paths:
        yaml_custom.extend(load_extra_path_config(under_base(yaml_file)))
    return _dedupe(own_custom + yaml_custom)


def _dedupe(paths: Iterable[Path]) -> list[Path]:
    seen: set[str] = set()
    out: list[Path] = []
    for p in paths:
        key = os.path.normpath(str(p))
        if key not in seen:
            seen.add(key)
            out.append(Path(key))
    return out


def _split_paths(value: Any) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list) else str(value).split("\n")
    return [str(i).strip() for i in items if str(i).strip()]


def load_extra_path_config(yaml_path: str | os.PathLike[str]) -> list[Path]:
    """Register the folders of one extra_model_paths.yaml; return its ``custom_nodes`` entries.

    Each top-level section may carry ``base_path`` (relative to the YAML file's folder) and
    ``is_default``; every other key names a folder and maps to one path or a multi-line string of
    paths, each relative to ``base_path`` (or, without one, to the YAML file's folder).
    """
    yaml_file = Path(yaml_path).expanduser().resolve()
    with open(yaml_file, encoding="utf-8") as stream:
        config = yaml.safe_load(stream) or {}
    if not isinstance(config, dict):
        raise ValueError(f"{yaml_file}: expected a mapping of sections")
    custom: list[Path] = []
    for section in config.values():
        if not isinstance(section, dict):
            continue
        conf = dict(section)
        section_base: str | None = None
        if conf.get("base_path"):
            section_base = os.path.expandvars(os.path.expanduser(str(conf.pop("base_path"))))
            if not os.path.isabs(section_base):
                section_base = os.path.join(str(yaml_file.parent), section_base)
        conf.pop("base_path", None)
        is_default = bool(conf.pop("is_default", False))
        for key, value in conf.items():
            for entry in _split_paths(value):
                entry = os.path.expandvars(os.path.expanduser(entry))
                if not os.path.isabs(entry):
                    entry = os.path.join(section_base or str(yaml_file.parent), entry)
                full = os.path.normpath(entry)
                add_model_folder_path(str(key), full, is_default)
                if map_legacy(str(key)) == "custom_nodes":
                    custom.append(Path(full))
    return custom


# ---- directories ------------------------------------------------------------------------------


def set_output_directory(output_dir: str) -> None:
    global output_directory
    output_directory = os.path.abspath(output_dir)


def set_temp_directory(temp_dir: str) -> None:
    global temp_directory
    temp_directory = os.path.abspath(temp_dir)


def set_input_directory(input_dir: str) -> None:
    global input_directory
    input_directory = os.path.abspath(input_dir)


def set_user_directory(user_dir: str) -> None:
    global user_directory
    user_directory = os.path.abspath(user_dir)


def get_output_directory() -> str:
    return output_directory


def get_temp_directory() -> str:
    return temp_directory


def get_input_directory() -> str:
    return input_directory


def get_user_directory() -> str:
    return user_directory


def get_directory_by_type(type_name: str) -> str | None:
    """Only ``output``, ``input`` and ``temp`` are reachable by type."""
    return {"output": output_directory, "input": input_directory, "temp": temp_directory}.get(type_name)


def _kind_of_directory(directory: str | os.PathLike[str]) -> str | None:
    d = os.path.abspath(directory)
    for kind in ("output", "temp", "input"):
        root = get_directory_by_type(kind)
        if root is not None and d == os.path.abspath(root):
            return kind
    return None


# ---- model folders ----------------------------------------------------------------------------


def map_legacy(folder_name: str) -> str:
    return _LEGACY_NAMES.get(folder_name, folder_name)


def get_folder_paths(folder_name: str) -> list[str]:
    return list(folder_names_and_paths[map_legacy(folder_name)][0])


def add_model_folder_path(folder_name: str, full_folder_path: str, is_default: bool = False) -> None:
    """Add a folder to a key (created if new); ``is_default`` puts it first."""
    folder_name = map_legacy(folder_name)
    full_folder_path = str(full_folder_path)
    if folder_name not in folder_names_and_paths:
        folder_names_and_paths[folder_name] = ([full_folder_path], set())
        return
    paths = folder_names_and_paths[folder_name][0]
    if full_folder_path in paths:
        if is_default and paths[0] != full_folder_path:
            paths.remove(full_folder_path)
            paths.insert(0, full_folder_path)
    elif is_default:
        paths.insert(0, full_folder_path)
    else:
        paths.append(full_folder_path)


def walk(directory: str) -> Iterator[tuple[str, list[str], list[str]]]:
    """``os.walk`` following links (model folders are often links to other disks), each real folder
    visited once: a link that loops back (``models/x -> ..``) ends the descent instead of the listing."""
    seen: set[str] = set()
    for root, subdirs, names in os.walk(directory, followlinks=True, topdown=True):
        real = os.path.realpath(root)
        if real in seen:
            subdirs[:] = []
            continue
        seen.add(real)
        subdirs[:] = [d for d in subdirs if os.path.realpath(os.path.join(root, d)) not in seen]
        yield root, subdirs, names


def recursive_search(directory: str, excluded_dir_names: list[str] | None = None) -> tuple[list[str], dict[str, float]]:
    """Files under ``directory`` as relative posix paths, plus the mtime of every folder visited."""
    if not os.path.isdir(directory):
        return [], {}
    excluded = set(excluded_dir_names or [".git"])
    files: list[str] = []
    dirs: dict[str, float] = {directory: os.path.getmtime(directory)}
    for root, subdirs, names in walk(directory):
        subdirs[:] = [d for d in subdirs if d not in excluded]
        for name in names:
            files.append(os.path.relpath(os.path.join(root, name), directory).replace(os.sep, "/"))
        for d in subdirs:
            path = os.path.join(root, d)
            try:
                dirs[path] = os.path.getmtime(path)
            except OSError:
                continue
    return files, dirs


def filter_files_extensions(files: Iterable[str], extensions: Iterable[str]) -> list[str]:
    exts = {e.lower() for e in extensions}
    return sorted(f for f in files if not exts or os.path.splitext(f)[-1].lower() in exts)


def get_filename_list(folder_name: str) -> list[str]:
    """Every file of a folder key (all its folders, recursively), filtered by its extensions, sorted."""
    folder_name = map_legacy(folder_name)
    cached = cache_helper.get(folder_name)
    if cached is not None:
        return list(cached)
    if folder_name not in folder_names_and_paths:
        return []
    folders, extensions = folder_names_and_paths[folder_name]
    found: set[str] = set()
    for folder in folders:
        files, _ = recursive_search(folder, excluded_dir_names=[".git"])
        found.update(filter_files_extensions(files, extensions))
    result = sorted(found)
    cache_helper.set(folder_name, result)
    return list(result)


def _safe_relative(filename: str) -> str | None:
    """``filename`` as a path that cannot climb out of its root, or None when it is empty."""
    rel = os.path.relpath(os.path.join(os.sep, filename), os.sep)
    return None if rel in ("", ".") else rel


def get_full_path(folder_name: str, filename: str) -> str | None:
    """Where ``filename`` lies in the folders of ``folder_name`` (None when nowhere).

    ``input`` is accepted as a folder key for the input directory; files missing there are asked
    of the fetch hook.
    """
    folder_name = map_legacy(folder_name)
    if folder_name in folder_names_and_paths:
        folders = folder_names_and_paths[folder_name][0]
    elif folder_name == "input":
        folders = [input_directory]
    else:
        return None
    rel = _safe_relative(filename)
    if rel is None:
        return None
    for folder in folders:
        full = os.path.join(folder, rel)
        if os.path.isfile(full):
            return full
        if os.path.islink(full):
            log.warning("path %s exists but does not link anywhere valid", full)
    for folder in folders:
        if _kind_of_directory(folder) == "input":
            fetched = _fetch(folder, rel)
            if fetched is not None:
                return fetched
    if folder_name != "input" and folders:
        return fetch_model(folder_name, rel, folders[0])
    return None


def get_full_path_or_raise(folder_name: str, filename: str) -> str:
    full = get_full_path(folder_name, filename)
    if full is None:
        raise FileNotFoundError(f"Model in folder '{folder_name}' with filename '{filename}' not found.")
    return full


# ---- annotated input names ("name.png [output]") ----------------------------------------------


def annotated_filepath(name: str) -> tuple[str, str | None]:
    """Strip a `` [input]``/`` [output]``/`` [temp]`` suffix: (name, its root or None)."""
    for kind, suffix in _TYPE_SUFFIXES.items():
        if name.endswith(suffix):
            return name[: -len(suffix)], get_directory_by_type(kind)
    return name, None


def _fetch(base_dir: str, rel_name: str) -> str | None:
    """Ask the fetch hook for ``rel_name`` under one of the three roots; its path, or None."""
    hook = _fetch_hook
    kind = _kind_of_directory(base_dir)
    rel = os.path.normpath(rel_name)
    if hook is None or kind is None or os.path.isabs(rel) or rel == ".." or rel.startswith(".." + os.sep):
        return None
    subfolder, filename = os.path.split(rel)
    result = hook(kind, subfolder.replace(os.sep, "/"), filename)
    if result is None or not os.path.exists(result):
        return None
    return str(result)


class OutsideRootError(FileNotFoundError):
    """A file name that would leave its root (``..``, an absolute path, a link out, NUL, ``\\``)."""


DRIVE = re.compile(r"^[A-Za-z]:")  # a Windows drive letter: absolute there, so never a name here


def safe_join(root: Path, subfolder: str, filename: str) -> Path | None:
    """``root/subfolder/filename`` if it stays inside ``root`` (symlinks resolved), else None: every
    file name a client or a node gives is checked by this one function (API and workers alike)."""
    if not filename or "\x00" in filename or "\x00" in subfolder or "\\" in filename or "\\" in subfolder:
        return None  # NUL, and Windows separators (a name that means ..\x there must not be a file here)
    if filename.startswith("/") or ".." in Path(filename).parts or os.path.isabs(subfolder):
        return None
    if DRIVE.match(filename) or DRIVE.match(subfolder):
        return None
    base = Path(root).resolve()
    target = (base / subfolder / filename).resolve()
    if target == base:
        return None
    try:
        target.relative_to(base)
    except ValueError:
        return None
    return target


def contained(name: str, default_dir: str | None = None) -> tuple[str, str] | None:
    """(root, name relative to it) of an annotated name (``x.png [output]``) that stays inside its
    root (:func:`safe_join`); None when it would leave it. Unlike ComfyUI, a name never reaches a
    file outside the roots."""
    name, base_dir = annotated_filepath(name)
    if base_dir is None:
        base_dir = default_dir if default_dir is not None else get_input_directory()
    path = safe_join(Path(base_dir), "", name)
    return None if path is None else (base_dir, str(path.relative_to(Path(base_dir).resolve())))


def get_annotated_filepath(name: str, default_dir: str | None = None) -> str:
    found = contained(name, default_dir)
    if found is None:
        raise OutsideRootError(f"{name!r} is not a file inside the farm's input, output or temp folder")
    base_dir, rel = found
    path = os.path.join(base_dir, rel)
    if not os.path.exists(path):
        fetched = _fetch(base_dir, rel)
        if fetched is not None:
            return fetched
    return path


def exists_annotated_filepath(name: str) -> bool:
    found = contained(name)
    if found is None:
        return False
    base_dir, rel = found
    return os.path.exists(os.path.join(base_dir, rel)) or _fetch(base_dir, rel) is not None


# ---- content types and input listing ----------------------------------------------------------


def _content_type(filename: str) -> str | None:
    ext = os.path.splitext(filename)[-1].lower()
    if ext in _EXTRA_CONTENT_TYPES:
        return _EXTRA_CONTENT_TYPES[ext]
    mime, _ = mimetypes.guess_type(filename, strict=False)
    return mime.split("/")[0] if mime else None


def filter_files_content_types(files: Iterable[str], content_types: list[str]) -> list[str]:
    """Keep the files whose content type (``image``, ``video``, ``audio``, ``model``) is listed."""
    wanted = set(content_types)
    return [f for f in files if _content_type(f) in wanted]


def get_input_subfolders() -> list[str]:
    """Every folder under the input directory, as sorted relative posix paths."""
    if not os.path.isdir(input_directory):
        return []
    folders: list[str] = []
    for root, _dirs, _files in os.walk(input_directory):
        rel = os.path.relpath(root, input_directory)
        if rel != ".":
            folders.append(rel.replace(os.sep, "/"))
    return sorted(folders)


# ---- save paths (spec section 10 step 2) ------------------------------------------------------


def _compute_vars(text: str, image_width: int, image_height: int) -> str:
    now = time.localtime()
    values = {
        "%width%": str(image_width),
        "%height%": str(image_height),
        "%year%": str(now.tm_year),
        "%month%": f"{now.tm_mon:02d}",
        "%day%": f"{now.tm_mday:02d}",
        "%hour%": f"{now.tm_hour:02d}",
        "%minute%": f"{now.tm_min:02d}",
        "%second%": f"{now.tm_sec:02d}",
    }
    for key, value in values.items():
        text = text.replace(key, value)
    return text


def _scan_counter(folder: str, filename: str) -> int:
    """1 + the largest N of a file named ``<filename>_<N>_...`` in ``folder`` (1 when none)."""
    prefix = filename + "_"
    best = 0
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return 1
    for name in names:
        if not name.startswith(prefix):
            continue
        digits = name[len(prefix):].split("_")[0]
        if digits.isascii() and digits.isdigit():
            best = max(best, int(digits))
    return best + 1


def _save_path(
    filename_prefix: str, output_dir: str, image_width: int, image_height: int, batch: int
) -> tuple[str, str, int, str, str]:
    if "%" in filename_prefix:
        filename_prefix = _compute_vars(filename_prefix, image_width, image_height)
    normalized = os.path.normpath(filename_prefix)
    subfolder = os.path.dirname(normalized)
    filename = os.path.basename(normalized)
    root = os.path.abspath(output_dir)
    full_output_folder = os.path.join(root, subfolder)
    if os.path.commonpath((root, os.path.abspath(full_output_folder))) != root:
        raise SavePathError(
            "Saving image outside the output folder is not allowed."
            f"\n full_output_folder: {os.path.abspath(full_output_folder)}\n output_dir: {root}"
        )
    os.makedirs(full_output_folder, exist_ok=True)
    kind = _kind_of_directory(root)
    hook = _counter_hook
    if hook is not None and kind in ("output", "temp"):
        counter = int(hook(kind, subfolder.replace(os.sep, "/"), filename, max(1, batch)))
    else:
        counter = _scan_counter(full_output_folder, filename)
    return full_output_folder, filename, counter, subfolder, filename_prefix


def get_save_image_path(
    filename_prefix: str, output_dir: str, image_width: int = 0, image_height: int = 0
) -> tuple[str, str, int, str, str]:
    """ComfyUI's save path: ``(full_output_folder, filename, counter, subfolder, filename_prefix)``.

    With the counter hook installed one counter is reserved farm-wide (a custom node that saves a
    batch from this counter should reserve more through :func:`reserve_save_path`).
    """
    return _save_path(filename_prefix, output_dir, image_width, image_height, 1)


def reserve_save_path(
    filename_prefix: str, output_dir: str, image_width: int = 0, image_height: int = 0, batch: int = 1
) -> tuple[str, str, int, str, str]:
    """Like :func:`get_save_image_path`, reserving ``batch`` consecutive counters from the one returned."""
    return _save_path(filename_prefix, output_dir, image_width, image_height, batch)
