"""The OpenAPI 3.1 description of the farm's routes, built from the routes' own schemas.

Every farm route declares its input with :func:`api.validate.takes`; this module walks the Flask URL
map and turns those declarations into ``/openapi.json`` (path and query parameters, JSON, form and raw
bodies). Routes served twice (``/x`` and ``/api/x``, as ComfyUI does) are described once, at ``/x``.
The test suite fuzzes the farm from this document (``tests/integration/test_fuzz.py``).
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Flask, Response, current_app
from pydantic import BaseModel

from api.routing import json_response
from api.validate import RouteSpec, spec_of

bp = Blueprint("openapi", __name__)

CONVERTER = re.compile(r"<(?:(\w+):)?(\w+)>")
ERROR = {"$ref": "#/components/schemas/Error"}
ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {"anyOf": [{"type": "string"}, {"type": "object", "properties": {
            "type": {"type": "string"}, "message": {"type": "string"}, "details": {"type": "string"},
            "extra_info": {"type": "object"}}}]},
        "node_errors": {"type": "object"},
    },
}


def _schema(model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(schema.pop("$defs", {}))
    return schema


def _parameters(model: type[BaseModel], where: str, components: dict[str, Any]) -> list[dict[str, Any]]:
    schema = _schema(model, components)
    required = set(schema.get("required", []))
    return [{"name": name, "in": where, "required": where == "path" or name in required, "schema": prop}
            for name, prop in schema.get("properties", {}).items()]


def _operation(rule: str, method: str, view_name: str, spec: RouteSpec, components: dict[str, Any]) -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": f"{method.lower()}_{view_name}", "summary": spec.summary or view_name,
                          "responses": {"200": {"description": "OK"}, "400": {
                              "description": "Input that does not fit the schema",
                              "content": {"application/json": {"schema": ERROR}}}}}
    params: list[dict[str, Any]] = []
    path_names = [m.group(2) for m in CONVERTER.finditer(rule)]
    if spec.path is not None:
        params += [p for p in _parameters(spec.path, "path", components) if p["name"] in path_names]
    known = {p["name"] for p in params}
    for m in CONVERTER.finditer(rule):  # parameters the route has without a model (never for ours)
        if m.group(2) not in known:
            kind = {"int": "integer", "float": "number"}.get(m.group(1) or "", "string")
            params.append({"name": m.group(2), "in": "path", "required": True, "schema": {"type": kind}})
    if spec.query is not None:
        params += _parameters(spec.query, "query", components)
    if params:
        op["parameters"] = params
    if spec.body is not None:
        op["requestBody"] = {"required": False, "content": {"application/json": {"schema": _schema(spec.body, components)}}}
    elif spec.form is not None:
        form = _schema(spec.form, components)
        form.setdefault("properties", {}).update({name: {"type": "string", "format": "binary"} for name in spec.files})
        form["required"] = sorted(set(form.get("required", [])) | set(spec.files))
        op["requestBody"] = {"required": True, "content": {"multipart/form-data": {"schema": form}}}
    elif spec.raw_body:
        op["requestBody"] = {"required": False, "content": {spec.raw_body: {"schema": {}}}}
    return op


def describe(app: Flask) -> dict[str, Any]:
    """The OpenAPI document of ``app``'s routes that declare their input."""
    paths: dict[str, dict[str, Any]] = {}
    components: dict[str, Any] = {"Error": ERROR_SCHEMA}
    twins = _twins(app)
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        view = app.view_functions.get(rule.endpoint)
        spec = spec_of(view) if view is not None else None
        if spec is None or (rule.rule.startswith("/api/") and rule.rule[4:] in twins):
            continue
        path = CONVERTER.sub(lambda m: "{" + m.group(2) + "}", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(rule.rule, method, rule.endpoint.replace(".", "_"),
                                                                   spec, components)
    return {
        "openapi": "3.1.0",
        "info": {"title": "nodefarm", "version": "0.1.0", "description":
                 "ComfyUI's HTTP API on a render farm, plus the farm's own routes. Each ComfyUI route is also "
                 "served under /api (e.g. /api/prompt). Live events: the /ws websocket and Socket.IO."},
        "paths": paths,
        "components": {"schemas": components},
    }


def _twins(app: Flask) -> set[str]:
    return {r.rule for r in app.url_map.iter_rules() if not r.rule.startswith("/api/")}


@bp.route("/openapi.json", methods=["GET"])
def openapi() -> Response:
    cached = current_app.extensions.get("nodefarm.openapi")
    if cached is None:
        cached = current_app.extensions["nodefarm.openapi"] = describe(current_app)
    return json_response(cached)
