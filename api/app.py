"""The Flask app: ComfyUI's routes (each at /path and /api/path), /ws, Socket.IO, the editor page."""

from __future__ import annotations

from pathlib import Path

from flask import Flask, Response, send_from_directory
from flask_socketio import SocketIO

from api import files, history, info, live, prompt
from api.live import Hub
from worker.farm import Farm

FRONTEND_DIR = Path(__file__).resolve().parent.parent / "frontend"


def create_app(farm: Farm) -> tuple[Flask, SocketIO, Hub]:
    app = Flask("nodefarm", static_folder=None)
    app.extensions["nodefarm"] = farm
    app.config["MAX_CONTENT_LENGTH"] = farm.settings.max_upload_mb * 1024 * 1024 + 1024 * 1024
    for bp in (prompt.bp, history.bp, files.bp, info.bp):
        app.register_blueprint(bp)
    hub, socketio = live.install(app, farm.settings, farm.r)

    @app.route("/")
    def index() -> Response:
        response = send_from_directory(FRONTEND_DIR, "index.html")
        response.headers["Cache-Control"] = "no-cache"
        return response

    @app.errorhandler(404)
    def not_found(_exc: Exception) -> Response:
        return Response("404: Not Found", status=404)

    @app.errorhandler(500)
    def server_error(exc: Exception) -> Response:
        return Response(f"500: {exc}", status=500)

    return app, socketio, hub
