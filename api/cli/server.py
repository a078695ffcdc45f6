"""Serving the API in the foreground: boot, background threads (event relay, file lander), HTTP."""

from __future__ import annotations

import logging
import shutil
import threading

from nodes.boot import boot
from nodes.settings import Settings
from worker import functions
from worker.admission import Admitter
from worker.farm import Farm

log = logging.getLogger("nodefarm.api")


def build(settings: Settings) -> tuple[Farm, object, object, threading.Event]:
    """Everything `serve` runs, without blocking (tests use it too)."""
    from api import live
    from api.app import create_app
    from api.routes import files

    for d in (settings.output_dir, settings.input_dir, settings.user_dir):
        d.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(settings.temp_dir, ignore_errors=True)  # ComfyUI wipes temp at start
    settings.temp_dir.mkdir(parents=True, exist_ok=True)
    registry = boot(settings, api=True)
    farm = Farm.connect(settings, registry)
    functions.load(farm.r)
    files.seed_counters(farm.r, settings)
    files.publish_inputs(farm.r, settings)
    stop = threading.Event()
    admitter = Admitter(farm, stop)
    app, socketio, hub = create_app(farm, admitter)
    admitter.start()
    live.start_relay(settings, hub, socketio, stop)
    files.start_lander(settings, stop)
    return farm, app, socketio, stop


def serve(settings: Settings) -> None:
    from api import connection

    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    _farm, app, socketio, stop = build(settings)
    log.info("nodefarm API on http://%s:%d/", settings.host, settings.port)
    try:
        socketio.run(app, host=settings.host, port=settings.port, allow_unsafe_werkzeug=True, log_output=False,  # type: ignore[attr-defined]
                     request_handler=connection.request_handler(settings.header_timeout_s))
    finally:
        stop.set()
