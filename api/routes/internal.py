"""ComfyUI's frontend-only ``/internal/*`` routes (no ``/api`` twin, spec 2.2) and the log buffer behind
``/internal/logs``."""

from __future__ import annotations

import collections
import logging
import os
import threading
from datetime import UTC, datetime

from flask import Blueprint, Response

from api.routing import empty, farm, json_response
from api.routing import folder_paths as _folder_paths
from api.schemas import DirectoryTypePath, SubscribeBody
from api.validate import takes

bp = Blueprint("internal", __name__)

LOG_ENTRIES = 300


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
@takes(summary="This API process's recent log lines as one text")
def internal_logs() -> Response:
    return json_response("".join(e["t"] + " - " + e["m"] for e in LOGS.get()))


@bp.route("/internal/logs/raw", methods=["GET"])
@takes(summary="This API process's recent log entries")
def internal_logs_raw() -> Response:
    size = os.get_terminal_size() if os.isatty(1) else os.terminal_size((80, 24))
    return json_response({"entries": LOGS.get(), "size": {"cols": size.columns, "rows": size.lines}})


@bp.route("/internal/logs/subscribe", methods=["PATCH"])
@takes(body=SubscribeBody, summary="Subscribe a client to log lines (accepted; the farm does not stream them)")
def internal_logs_subscribe(body: SubscribeBody) -> Response:
    return empty()  # accepted; log lines are not streamed over /ws by the farm


@bp.route("/internal/folder_paths", methods=["GET"])
@takes(summary="The model folders of this host")
def internal_folder_paths() -> Response:
    fp = _folder_paths()
    return json_response({key: value[0] for key, value in fp.folder_names_and_paths.items()})


@bp.route("/internal/files/<directory_type>", methods=["GET"])
@takes(path=DirectoryTypePath, summary="Files in output/, input/ or temp/, newest first")
def internal_files(directory_type: str) -> Response:
    directory = farm().settings.directory(directory_type)
    entries = [e for e in os.scandir(directory) if e.is_file() and not e.name.startswith(".")] if directory and directory.is_dir() else []
    entries.sort(key=lambda e: -e.stat().st_mtime)
    return json_response([e.name for e in entries])
