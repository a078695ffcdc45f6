"""ComfyUI's model_manager routes (``/experiment/models...``, model previews) and ``/view_metadata`` (spec 2.1)."""

from __future__ import annotations

import base64
import glob
import io
import json
import os
from typing import Any

from flask import Blueprint, Response
from werkzeug.security import safe_join

from api.routing import folder_paths as _folder_paths
from api.routing import json_response, twin
from api.schemas import FolderPath, ModelPreviewPath, ViewMetadataQuery
from api.validate import takes

bp = Blueprint("models", __name__)


@twin(bp, "/experiment/models", methods=["GET"])
@takes(summary="Model folders with their paths")
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
@takes(path=FolderPath, summary="Model files of a folder with sizes and times")
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
        for dirpath, subdirs, filenames in fp.walk(directory):
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
@takes(path=ModelPreviewPath, summary="A model's preview image as WebP")
def model_preview(folder: str, path_index: int, filename: str) -> Response:
    fp = _folder_paths()
    if folder not in fp.folder_names_and_paths:
        return Response(status=404)
    roots = fp.folder_names_and_paths[folder][0]
    if path_index < 0 or path_index >= len(roots) or filename not in fp.get_filename_list(folder):
        return Response(status=404)  # only the preview of a model the folder lists
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
@takes(path=FolderPath, query=ViewMetadataQuery, summary="A safetensors file's metadata")
def view_metadata(folder: str, query: ViewMetadataQuery) -> Response:
    filename = query.filename
    if not filename or not filename.endswith(".safetensors"):
        return Response(status=404)
    fp = _folder_paths()
    if folder not in fp.folder_names_and_paths or filename not in fp.get_filename_list(folder):
        return Response(status=404)  # only a model the folder lists
    path = fp.get_full_path(folder, filename)
    if path is None:
        return Response(status=404)
    header = safetensors_metadata(path, 1024 * 1024)
    if header is None or "__metadata__" not in header:
        return Response(status=404)
    return json_response(header["__metadata__"])
