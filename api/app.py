"""The Flask app: ComfyUI's routes (each at /path and /api/path), /ws, Socket.IO, custom node routes,
the editor (``/``, from the comfyui-frontend-package wheel) and the farm dashboard (``/nodefarm/``)."""

from __future__ import annotations

import logging

import redis
from flask import Flask, Response, request
from flask_socketio import SocketIO
from werkzeug.exceptions import InternalServerError

from api import auth, browser, connection, live, openapi, origin
from api.live import Hub
from api.routes import (
    blocklist,
    editor,
    files,
    history,
    info,
    internal,
    jobs,
    memory,
    metrics,
    models,
    pack_routes,
    prompt,
    templates,
    userdata,
)
from api.routing import json_response
from api.validate import Invalid
from worker import functions
from worker.admission import Admitter
from worker.farm import Farm

log = logging.getLogger("nodefarm.api")
RETRY_AFTER_S = 2  # what a 503 asks a client to wait while the farm's Redis is away


def unavailable(message: str, exc: Exception) -> Response:
    """503 in ComfyUI's error shape, with when to try again."""
    res = json_response({"error": {"type": "farm_unavailable", "message": message, "details": str(exc)[:300],
                                   "extra_info": {}}, "node_errors": {}}, 503)
    res.headers["Retry-After"] = str(RETRY_AFTER_S)
    return res


def create_app(farm: Farm, admitter: Admitter) -> tuple[Flask, SocketIO, Hub]:
    app = Flask("nodefarm", static_folder=None)
    app.extensions["nodefarm"] = farm
    app.extensions["nodefarm.admitter"] = admitter
    app.config["MAX_CONTENT_LENGTH"] = farm.settings.max_upload_mb * 1024 * 1024 + 1024 * 1024
    connection.install(app, farm.settings.body_timeout_s)
    origin.install(app, farm.settings.cors_origins)
    browser.install(app, farm.settings.cors_origins)
    auth.install(app, farm.settings.auth_token_file, farm.settings.api_token)  # after the Origin guard
    for routes in (prompt, history, files, info, userdata, jobs, models, templates, memory, internal, openapi,
                   blocklist, metrics):
        app.register_blueprint(routes.bp)
    app.register_error_handler(Invalid, lambda exc: exc.response())
    internal.install_logs()
    hub, socketio = live.install(app, farm.settings, farm.r)
    pack_routes.install(app, farm.r)  # after the farm's own routes: on the same rule the farm's wins
    app.register_blueprint(editor.bp)  # `/`, the editor's files and /extensions/<pack>/...

    @app.errorhandler(404)
    def not_found(_exc: Exception) -> Response:
        return Response("404: Not Found", status=404)

    @app.errorhandler(500)
    def server_error(exc: Exception) -> Response:
        return Response(f"500: {exc}", status=500)

    @app.errorhandler(redis.ConnectionError)  # refused, reset, LOADING (a restart reading its AOF)
    @app.errorhandler(redis.TimeoutError)
    def store_unreachable(exc: Exception) -> Response:
        log.warning("%s %s: the farm's Redis is not reachable: %s", request.method, request.path, exc)
        return unavailable("The farm's Redis is not reachable; try again shortly", exc)

    @app.errorhandler(redis.ResponseError)
    def store_error(exc: Exception) -> Response:
        if not functions.lost(exc):
            return server_error(InternalServerError())  # as any other failure: no Redis text in the answer
        functions.ensure_loaded(farm.r)  # the state Redis came back empty: the next request works
        return unavailable("The farm's Redis was restarted empty and is set up again; try again", exc)

    return app, socketio, hub
