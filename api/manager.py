"""ComfyUI's manager routes and the rest of its core routes (spec 2.1 and 2.2).

``/experiment/models...`` (model_manager), ``/workflow_templates`` and ``/i18n`` (custom_node_manager),
``/internal/*`` (frontend-only, no ``/api`` twin), ``/free``, ``/upload/mask``, ``/view_metadata``.
"""

from __future__ import annotations

import base64
import collections
import glob
import hashlib
import io
import json
import logging
import os
import re
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, abort, request, send_from_directory
from werkzeug.security import safe_join

from api.routing import body_json, empty, farm, json_response, twin
from worker import files, keys

log = logging.getLogger("nodefarm.api.manager")
bp = Blueprint("manager", __name__)

EXAMPLE_WORKFLOW_FOLDERS = ("example_workflows", "example", "examples", "workflow", "workflows")
FREE_FLAGS = keys.PREFIX + "free"  # HASH of the last POST /free flags, for workers to act on
LOG_ENTRIES = 300


def _folder_paths() -> Any:
    from nodes.compat import folder_paths

    return folder_paths


def custom_node_dirs() -> list[Path]:
    """The pack folders of every custom_nodes root (sorted, as ComfyUI globs them)."""
    fp = _folder_paths()
    roots = fp.get_folder_paths("custom_nodes") if "custom_nodes" in fp.folder_names_and_paths else []
    out: list[Path] = []
    for root in roots:
        out.extend(Path(p) for p in sorted(glob.glob(os.path.join(glob.escape(str(root)), "*/"))))
    return out


# ---- model_manager -------------------------------------------------------------------------------


@twin(bp, "/experiment/models", methods=["GET"])
def model_folders() -> Response:
    fp = _folder_paths()
    return json_response(
        [
            {"name": name, "folders": fp.get_folder_paths(name)}
            for name in fp.folder_names_and_paths
            if name not in ("configs", "custom_nodes")
        ]
    )


@twin(bp, "/experiment/models/<folder>", methods=["GET"])
def models_in_folder(folder: str) -> Response:
    fp = _folder_paths()
    folder = fp.map_legacy(folder)
    if folder not in fp.folder_names_and_paths:
        return Response(status=404)
    paths, extensions = fp.folder_names_and_paths[folder]
    out: list[dict[str, Any]] = []
    for index, directory in enumerate(paths):
        if not os.path.isdir(directory):
            continue
        for dirpath, subdirs, filenames in os.walk(directory, followlinks=True, topdown=True):
            subdirs[:] = sorted(d for d in subdirs if d != ".git" and not d.startswith("."))
            for name in sorted(filenames):
                if name.startswith("."):
                    continue
                if extensions and "folder" not in extensions and os.path.splitext(name)[1].lower() not in extensions:
                    continue
                full = os.path.join(dirpath, name)
                try:
                    st = os.stat(full)
                except OSError:
                    continue
                out.append(
                    {
                        "name": os.path.relpath(full, directory).replace(os.sep, "/"),
                        "pathIndex": index,
                        "modified": st.st_mtime,
                        "created": st.st_ctime,
                        "size": st.st_size,
                    }
                )
    return json_response(out)


def safetensors_metadata(path: str, max_size: int) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                return None
            length = int.from_bytes(head, "little")
            if length > max_size:
                return None
            header = json.loads(fh.read(length))
    except (OSError, ValueError):
        return None
    return header if isinstance(header, dict) else None


@twin(bp, "/experiment/models/preview/<folder>/<int:path_index>/<path:filename>", methods=["GET"])
def model_preview(folder: str, path_index: int, filename: str) -> Response:
    fp = _folder_paths()
    if folder not in fp.folder_names_and_paths:
        return Response(status=404)
    roots = fp.folder_names_and_paths[folder][0]
    if path_index < 0 or path_index >= len(roots):
        return Response(status=404)
    full = safe_join(roots[path_index], filename)
    if full is None or not os.path.isdir(os.path.dirname(full)):
        return Response(status=404)
    from PIL import Image

    base = os.path.splitext(full)[0]
    sources: list[Any] = []
    matches = sorted(glob.glob(glob.escape(base) + ".*"))
    for candidate in matches:
        stem = os.path.splitext(candidate)[0]
        if fp._content_type(candidate) == "image" and stem in (base, base + ".preview"):
            sources.append(candidate)
    tensors = next((m for m in matches if m.endswith(".safetensors")), None)
    if tensors:
        meta = (safetensors_metadata(tensors, 8 * 1024 * 1024) or {}).get("__metadata__", {})
        try:
            for image in json.loads(meta.get("ssmd_cover_images") or "[]"):
                sources.append(io.BytesIO(base64.b64decode(image)))
        except (ValueError, TypeError):
            pass
    if not sources:
        return Response(status=404)
    try:
        with Image.open(sources[0]) as img:
            buffer = io.BytesIO()
            img.save(buffer, format="WEBP")
    except Exception:
        return Response(status=404)
    return Response(buffer.getvalue(), mimetype="image/webp")


@twin(bp, "/view_metadata/<folder>", methods=["GET"])
def view_metadata(folder: str) -> Response:
    filename = request.args.get("filename")
    if not filename or not filename.endswith(".safetensors"):
        return Response(status=404)
    path = _folder_paths().get_full_path(folder, filename)
    if path is None:
        return Response(status=404)
    header = safetensors_metadata(path, 1024 * 1024)
    if header is None or "__metadata__" not in header:
        return Response(status=404)
    return json_response(header["__metadata__"])


# ---- custom_node_manager -------------------------------------------------------------------------


@twin(bp, "/workflow_templates", methods=["GET"])
def workflow_templates() -> Response:
    out: dict[str, list[str]] = {}
    for pack in custom_node_dirs():
        for folder in EXAMPLE_WORKFLOW_FOLDERS:
            for file in sorted((pack / folder).glob("*.json")) if (pack / folder).is_dir() else []:
                out.setdefault(pack.name, []).append(file.stem)
    return json_response(out)


@bp.route("/api/workflow_templates/<pack>/<path:path>", methods=["GET"])
def workflow_template_file(pack: str, path: str) -> Response:
    for pack_dir in custom_node_dirs():
        if pack_dir.name != pack:
            continue
        for folder in EXAMPLE_WORKFLOW_FOLDERS:
            root = pack_dir / folder
            joined = safe_join(str(root), path)
            if joined and os.path.isfile(joined):
                return send_from_directory(root, path, max_age=0)
    abort(404)


def _load_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.error("cannot load translations %s: %s", path, exc)
        return {}
    return data if isinstance(data, dict) else {}


def deep_merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for key, value in b.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def build_translations() -> dict[str, Any]:
    """``{lang: {...main.json, nodeDefs, commands, settings}}`` merged over every pack's ``locales/``."""
    translations: dict[str, Any] = {}
    for pack in custom_node_dirs():
        locales = pack / "locales"
        if not locales.is_dir():
            continue
        for lang_dir in sorted(p for p in locales.iterdir() if p.is_dir()):
            entry: dict[str, Any] = {}
            if (lang_dir / "main.json").is_file():
                entry = _load_json(lang_dir / "main.json")
            for key in ("nodeDefs", "commands", "settings"):
                if (lang_dir / f"{key}.json").is_file():
                    entry[key] = _load_json(lang_dir / f"{key}.json")
            if entry:
                translations = deep_merge(translations, {lang_dir.name: entry})
    return translations


@twin(bp, "/i18n", methods=["GET"])
def i18n() -> Response:
    return json_response(build_translations())


@twin(bp, "/global_subgraphs", methods=["GET"])
def global_subgraphs() -> Response:
    """Subgraph blueprints shipped by packs (``<pack>/subgraphs/*.json``), without their data."""
    return json_response({k: {n: v for n, v in e.items() if n != "path"} for k, e in _subgraphs().items()})


@twin(bp, "/global_subgraphs/<subgraph_id>", methods=["GET"])
def global_subgraph(subgraph_id: str) -> Response:
    entry = _subgraphs().get(subgraph_id)
    if entry is None:
        return json_response(None)
    try:
        data = Path(entry["path"]).read_text(encoding="utf-8")
    except OSError:
        return json_response(None)
    return json_response({**{n: v for n, v in entry.items() if n != "path"}, "data": data})


def _subgraphs() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for pack in custom_node_dirs():
        for file in sorted((pack / "subgraphs").glob("*.json")) if (pack / "subgraphs").is_dir() else []:
            path = file.as_posix()
            key = hashlib.sha256(f"custom_node{path}".encode()).hexdigest()
            out[key] = {"source": "custom_node", "name": file.stem, "path": path,
                        "info": {"node_pack": "custom_nodes." + pack.name}}
    return out


@twin(bp, "/node_replacements", methods=["GET"])
def node_replacements() -> Response:
    return json_response({})


# ---- /templates (the comfyui-workflow-templates package, when installed) --------------------------


def templates_root() -> Path | None:
    try:
        import comfyui_workflow_templates as cwt  # type: ignore[import-not-found]
    except ImportError:
        return None
    getter = getattr(cwt, "get_templates_path", None)
    try:
        path = Path(getter()) if callable(getter) else Path(cwt.__file__).parent / "templates"
    except Exception:
        return None
    return path if path.is_dir() else None


@bp.route("/templates/<path:path>", methods=["GET"])
def templates(path: str) -> Response:
    root = templates_root()
    if root is not None and safe_join(str(root), path) and (root / path).is_file():
        return send_from_directory(root, path, max_age=0)
    if root is None and re.fullmatch(r"index(\.[\w-]+)?\.json", path):
        return json_response([])  # no templates package: an empty template index, as the editor expects
    if root is None and path == "index_logo.json":
        return json_response({})
    abort(404)


# ---- /free ---------------------------------------------------------------------------------------


@twin(bp, "/free", methods=["POST"])
def free() -> Response:
    body = body_json({}) or {}
    if not isinstance(body, dict):
        body = {}
    flags = {k: "1" for k in ("unload_models", "free_memory") if body.get(k)}
    if flags:
        r = farm().r
        pipe = r.pipeline(transaction=False)
        pipe.hset(FREE_FLAGS, mapping={**flags, "at": str(time.time())})
        pipe.execute()
    return empty()


# ---- /upload/mask --------------------------------------------------------------------------------


@twin(bp, "/upload/mask", methods=["POST"])
def upload_mask() -> Response:
    """Copy the uploaded image's alpha channel onto ``original_ref`` (keeping its PNG text) and save it
    as a new upload, with ``/upload/image``'s naming rules."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    from api.files import ANNOTATION, land_from_redis, read_upload, store_upload, upload_answer

    f = farm()
    up = read_upload()
    if isinstance(up, Response):
        return up
    try:
        ref = json.loads(request.form.get("original_ref") or "")
        assert isinstance(ref, dict)
    except (ValueError, AssertionError):
        return Response("invalid original_ref", status=400)
    ref_name = str(ref.get("filename", ""))
    m = ANNOTATION.match(ref_name)
    ref_kind = m.group(2) if m else str(ref.get("type") or "output")
    ref_name = m.group(1) if m else ref_name
    if not ref_name or ref_name.startswith("/") or ".." in ref_name:
        return Response("invalid original_ref", status=400)
    ref_root = f.settings.directory(ref_kind)
    if ref_root is None:
        return Response("invalid original_ref type", status=400)
    ref_sub = str(ref.get("subfolder") or "")
    original = files.safe_join(ref_root, ref_sub, ref_name)
    if original is None:
        return Response("forbidden", status=403)
    if not original.is_file():
        original = land_from_redis(f.r, f.settings, ref_kind, ref_sub, ref_name) or original
    if up.same_as_existing:
        return upload_answer(up)
    if not original.is_file():
        return upload_answer(up)  # ComfyUI writes nothing
    with Image.open(original) as orig:
        meta = PngInfo()
        for k, v in (getattr(orig, "text", None) or {}).items():
            meta.add_text(k, v)
        merged = orig.convert("RGBA")
    with Image.open(io.BytesIO(up.data)) as mask:
        merged.putalpha(mask.convert("RGBA").getchannel("A"))
    buffer = io.BytesIO()
    merged.save(buffer, format="PNG", compress_level=4, pnginfo=meta)
    return store_upload(up, buffer.getvalue())


# ---- /internal -----------------------------------------------------------------------------------


class LogBuffer(logging.Handler):
    """The last log records of this process, as ComfyUI's ``app/logger`` keeps them."""

    def __init__(self, size: int = LOG_ENTRIES) -> None:
        super().__init__(logging.INFO)
        self.entries: collections.deque[dict[str, str]] = collections.deque(maxlen=size)
        self.lock_entries = threading.Lock()
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            t = datetime.fromtimestamp(record.created, UTC).isoformat()
            with self.lock_entries:
                self.entries.append({"t": t, "m": self.format(record) + "\n"})
        except Exception:
            self.handleError(record)

    def get(self) -> list[dict[str, str]]:
        with self.lock_entries:
            return list(self.entries)


LOGS = LogBuffer()


def install_logs() -> None:
    root = logging.getLogger()
    if LOGS not in root.handlers:
        root.addHandler(LOGS)


@bp.route("/internal/logs", methods=["GET"])
def internal_logs() -> Response:
    return json_response("".join(e["t"] + " - " + e["m"] for e in LOGS.get()))


@bp.route("/internal/logs/raw", methods=["GET"])
def internal_logs_raw() -> Response:
    size = os.get_terminal_size() if os.isatty(1) else os.terminal_size((80, 24))
    return json_response({"entries": LOGS.get(), "size": {"cols": size.columns, "rows": size.lines}})


@bp.route("/internal/logs/subscribe", methods=["PATCH"])
def internal_logs_subscribe() -> Response:
    body = body_json({}) or {}
    if not isinstance(body, dict) or "clientId" not in body:
        return Response(status=400)
    return empty()  # accepted; log lines are not streamed over /ws by the farm


@bp.route("/internal/folder_paths", methods=["GET"])
def internal_folder_paths() -> Response:
    fp = _folder_paths()
    return json_response({key: value[0] for key, value in fp.folder_names_and_paths.items()})


@bp.route("/internal/files/<directory_type>", methods=["GET"])
def internal_files(directory_type: str) -> Response:
    if directory_type not in ("output", "input", "temp"):
        return json_response({"error": "Invalid directory type"}, 400)
    directory = farm().settings.directory(directory_type)
    entries = [e for e in os.scandir(directory) if e.is_file() and not e.name.startswith(".")] if directory and directory.is_dir() else []
    entries.sort(key=lambda e: -e.stat().st_mtime)
    return json_response([e.name for e in entries])


def install(app: Flask) -> None:
    install_logs()
    app.register_blueprint(bp)
