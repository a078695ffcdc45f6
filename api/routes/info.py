"""Read-only routes: /object_info, /system_stats, /embeddings, /models, /extensions, /features."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path
from urllib.parse import quote

import torch
from flask import Blueprint, Response, send_file

from api.routing import farm, json_response, twin
from api.schemas import FolderPath, ModelFilePath, NodeClassPath
from api.validate import takes
from nodes import face, schema
from worker import blocklist, keys

bp = Blueprint("info", __name__)

VERSION = "0.3.64"


@twin(bp, "/object_info", methods=["GET"])
@takes(summary="Every node class: inputs, outputs, category (ComfyUI's node definitions)")
def object_info() -> Response:
    return json_response(schema.object_info(farm().registry))


@twin(bp, "/object_info/<path:node_class>", methods=["GET"])
@takes(path=NodeClassPath, summary="One node class ({} when unknown)")
def object_info_one(node_class: str) -> Response:
    registry = farm().registry
    cls = registry.get(node_class)
    if cls is None:
        return json_response({})
    return json_response({node_class: schema.node_info(node_class, cls, registry.display_names.get(node_class, node_class))})


def live_devices() -> list[dict]:
    f = farm()
    names = [n.decode() if isinstance(n, bytes) else n for n in f.r.zrange(keys.WORKERS, 0, -1)]
    devices: list[dict] = []
    blocked = blocklist.entries(f.r) if names else {}  # worker/blocklist.py; api/routes/blocklist.py lifts
    pipe = f.r.pipeline(transaction=False)
    for n in names:
        pipe.hvals(keys.worker_running(n))
    running = dict(zip(names, pipe.execute(), strict=True)) if names else {}
    now = time.time()
    for raw in f.r.mget([keys.worker_info(n) for n in names]) if names else []:
        if raw:
            info = json.loads(raw)
            entry = blocked.get(info["name"])
            # what it executes now (`nodefarm status`): [pid, node id, seq] payloads of its running hash
            busy = [{"prompt_id": p[0], "node": p[1]} for p in map(json.loads, running.get(info["name"], []))]
            for d in info.get("devices", []):
                devices.append({**d, "name": f"{d['name']} ({info['name']})", "models": info.get("models", []),
                                "restarts": info.get("restarts", 0), "worker": info["name"],
                                "blocklisted": entry.to_json() if entry is not None else None,
                                "host": info.get("host"), "heartbeat_age": round(max(0.0, now - float(info.get("beat") or now)), 1),
                                "running": busy})
    return devices


@twin(bp, "/system_stats", methods=["GET"])
@takes(summary="This host, and every live worker with its devices, VRAM and resident models")
def system_stats() -> Response:
    from worker.heartbeat import memory

    total, free = memory()
    return json_response(
        {
            "system": {
                "os": os.name,
                "ram_total": total,
                "ram_free": free,
                "comfyui_version": VERSION,
                "required_frontend_version": "1.27.10",
                "installed_templates_version": None,
                "required_templates_version": None,
                "python_version": sys.version,
                "pytorch_version": torch.__version__,
                "embedded_python": False,
                "argv": sys.argv,
                "nodefarm": {"host": platform.node(), "workers": len({d["name"] for d in live_devices()})},
            },
            "devices": live_devices(),
        }
    )


@twin(bp, "/embeddings", methods=["GET"])
@takes(summary="Embedding names")
def embeddings() -> Response:
    folder_paths = face.live("folder_paths")  # the user's ComfyUI's with --comfyui: its model folders

    return json_response([os.path.splitext(n)[0] for n in folder_paths.get_filename_list("embeddings")])


@twin(bp, "/models", methods=["GET"])
@takes(summary="Model folder names")
def models() -> Response:
    folder_paths = face.live("folder_paths")

    return json_response(list(folder_paths.folder_names_and_paths.keys()))


@twin(bp, "/models/<folder>", methods=["GET"])
@takes(path=FolderPath, summary="Model files of one folder")
def models_in(folder: str) -> Response:
    folder_paths = face.live("folder_paths")

    if folder not in folder_paths.folder_names_and_paths:
        return Response("unknown folder", status=404)
    return json_response(folder_paths.get_filename_list(folder))


@bp.route("/internal/models/<folder>/<path:filename>", methods=["GET"])
@takes(path=ModelFilePath, summary="A model file of the API host, for worker hosts without it")
def model_file(folder: str, filename: str) -> Response:
    """A model file of this host, for a worker host that lacks it (``worker.files.make_model_fetch``)."""
    folder_paths = face.live("folder_paths")
    if folder == "custom_nodes" or folder not in folder_paths.folder_names_and_paths:
        return Response("unknown folder", status=404)
    # only a model the folder lists (what the editor offers): links the operator put there are
    # honoured, and no other name a client makes up reaches a file
    if filename not in folder_paths.get_filename_list(folder):
        return Response("no such model", status=404)
    path = folder_paths.get_full_path(folder, filename)
    if path is None or not os.path.isfile(path):
        return Response("no such model", status=404)
    return send_file(path, mimetype="application/octet-stream", conditional=True)


@twin(bp, "/extensions", methods=["GET"])
@takes(summary="Editor extension scripts of the installed node packs")
def extensions() -> Response:
    from api.routes.editor import frontend_root, web_dirs

    urls: list[str] = []
    root = frontend_root()
    if root is not None:  # the editor's own /extensions/core/... scripts, as ComfyUI lists them
        urls += ["/" + js.relative_to(root).as_posix() for js in sorted((root / "extensions").rglob("*.js"))]
    for name, web_dir in sorted(web_dirs().items()):
        for js in sorted(Path(web_dir).rglob("*.js")):
            rel = js.relative_to(web_dir).as_posix()
            urls.append(f"/extensions/{quote(name)}/{rel}")
    return json_response(urls)


@twin(bp, "/features", methods=["GET"])
@takes(summary="Server features the editor checks")
def features() -> Response:
    return json_response({"supports_preview_metadata": True, "max_upload_size": farm().settings.max_upload_mb * 1024 * 1024})


@bp.route("/nodefarm/info")
@takes(summary="This API host's folders")
def nodefarm_info() -> Response:
    s = farm().settings
    return json_response({"output_dir": str(s.output_dir), "input_dir": str(s.input_dir), "temp_dir": str(s.temp_dir)})
