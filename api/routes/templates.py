"""What custom node packs ship for the editor (ComfyUI's custom_node_manager, spec 2.1): ``/workflow_templates``,
``/i18n``, ``/global_subgraphs``, ``/node_replacements``; and ``/templates`` from the comfyui-workflow-templates
package, when installed."""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, abort, send_from_directory
from werkzeug.security import safe_join

from api.routing import folder_paths, json_response, twin
from api.schemas import SubgraphPath, TemplateFilePath, TemplatePath
from api.validate import takes

log = logging.getLogger("nodefarm.api.templates")
bp = Blueprint("templates", __name__)

EXAMPLE_WORKFLOW_FOLDERS = ("example_workflows", "example", "examples", "workflow", "workflows")


def custom_node_dirs() -> list[Path]:
    """The pack folders of every custom_nodes root (sorted, as ComfyUI globs them)."""
    fp = folder_paths()
    roots = fp.get_folder_paths("custom_nodes") if "custom_nodes" in fp.folder_names_and_paths else []
    out: list[Path] = []
    for root in roots:
        out.extend(Path(p) for p in sorted(glob.glob(os.path.join(glob.escape(str(root)), "*/"))))
    return out


@twin(bp, "/workflow_templates", methods=["GET"])
@takes(summary="Example workflows shipped by node packs")
def workflow_templates() -> Response:
    out: dict[str, list[str]] = {}
    for pack in custom_node_dirs():
        for folder in EXAMPLE_WORKFLOW_FOLDERS:
            for file in sorted((pack / folder).glob("*.json")) if (pack / folder).is_dir() else []:
                out.setdefault(pack.name, []).append(file.stem)
    return json_response(out)


@bp.route("/api/workflow_templates/<pack>/<path:path>", methods=["GET"])
@takes(path=TemplatePath, summary="One example workflow file of a node pack")
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
@takes(summary="Translations shipped by node packs")
def i18n() -> Response:
    return json_response(build_translations())


@twin(bp, "/global_subgraphs", methods=["GET"])
@takes(summary="Subgraph blueprints shipped by node packs")
def global_subgraphs() -> Response:
    """Subgraph blueprints shipped by packs (``<pack>/subgraphs/*.json``), without their data."""
    return json_response({k: {n: v for n, v in e.items() if n != "path"} for k, e in _subgraphs().items()})


@twin(bp, "/global_subgraphs/<subgraph_id>", methods=["GET"])
@takes(path=SubgraphPath, summary="One subgraph blueprint with its data (null when unknown)")
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
@takes(summary="Node replacements (none)")
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
@takes(path=TemplateFilePath, summary="Files of the comfyui-workflow-templates package")
def templates(path: str) -> Response:
    root = templates_root()
    if root is not None and safe_join(str(root), path) and (root / path).is_file():
        return send_from_directory(root, path, max_age=0)
    if root is None and re.fullmatch(r"index(\.[\w-]+)?\.json", path):
        return json_response([])  # no templates package: an empty template index, as the editor expects
    if root is None and path == "index_logo.json":
        return json_response({})
    abort(404)
