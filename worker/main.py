"""Running a worker: boot the node registry, attach the runtime to the Celery app, start consuming.

One worker process per GPU (``CUDA_VISIBLE_DEVICES``), prefork with one child: the parent never
initialises CUDA; the child builds its Redis connections and hooks after the fork.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import threading
import time
from typing import Any

from celery.signals import worker_process_init

from nodes.boot import boot
from nodes.registry import NodeRegistry
from nodes.settings import Settings
from worker import events, heartbeat, keys, state
from worker.celery_app import make_celery
from worker.farm import Farm

log = logging.getLogger("nodefarm.worker")

INTERRUPT_POLL_S = 0.02


class WorkerRuntime:
    """Per-process farm handles, rebuilt after a fork (connections are never shared across fork)."""

    def __init__(self, settings: Settings, registry: NodeRegistry, celery: Any) -> None:
        self.settings = settings
        self.registry = registry
        self.celery = celery
        self._farm: Farm | None = None
        self._pid = 0

    def farm(self) -> Farm:
        if self._farm is None or self._pid != os.getpid():
            self._farm = Farm.connect(self.settings, self.registry, self.celery)
            self._pid = os.getpid()
            install_hooks(self._farm)
        return self._farm


def install_hooks(farm: Farm) -> None:
    """Wire ComfyUI's globals (send_sync, progress bar, interrupt, file counters) to the farm."""
    from nodes.compat import folder_paths, server
    from nodes.compat.comfy import model_management, utils
    from worker import files

    model_management.configure(farm.settings.cpu)

    def make_preview(image: tuple, node: str) -> tuple[int, bytes]:
        st = farm.current.get("st") or {"pid": farm.current.get("pid"), "eph": {}}
        meta = {
            "node_id": node,
            "prompt_id": st["pid"],
            "display_node_id": state.display_id(st, node),
            "parent_node_id": state.parent_id(st, node),
            "real_node_id": state.real_id(st, node),
        }
        fmt, pil, max_size = (list(image) + [None, None, None])[:3]
        return events.PREVIEW_IMAGE_WITH_METADATA, events.preview_payload(pil, fmt, max_size, meta)


    def sink(event: str | int, data: Any, sid: str | None) -> None:
        pid = farm.current.get("pid")
        if event == events.UNENCODED_PREVIEW_IMAGE and isinstance(data, (tuple, list)):
            event, data = make_preview(tuple(data), farm.current.get("nid") or "")
        pipe = farm.r.pipeline(transaction=False)
        events.add(pipe, pid, None, event, data, to=sid or "*")
        pipe.execute()

    server.PromptServer.instance.bind_sink(sink)

    last_poll = [0.0, False]

    def probe() -> bool:
        pid = farm.current.get("pid")
        if not pid:
            return False
        now = time.monotonic()
        if now - last_poll[0] >= INTERRUPT_POLL_S:
            last_poll[0] = now
            last_poll[1] = bool(farm.r.exists(keys.run_cancel(pid)))
        return bool(last_poll[1])

    model_management.set_interrupt_probe(probe)

    def progress(value: float, total: float, preview: Any, node_id: str | None = None) -> None:
        model_management.throw_exception_if_processing_interrupted()
        st = farm.current.get("st")
        nid = farm.current.get("nid")
        if st is None or nid is None:
            return
        node = node_id or nid
        pipe = farm.r.pipeline(transaction=False)
        client = st.get("client_id")
        # ComfyUI's order: the progress registry (progress_state) first, then `progress`
        events.add(pipe, st["pid"], client, "progress_state", state.progress_state(st, {node: (value, total)}, only=[]))
        events.add(pipe, st["pid"], client, "progress", {"value": value, "max": total, "prompt_id": st["pid"], "node": node})
        if preview is not None and isinstance(preview, (tuple, list)) and len(preview) >= 2:
            kind, payload = make_preview(tuple(preview), node)
            events.add(pipe, st["pid"], client, kind, payload)
        pipe.execute()

    utils.set_progress_bar_global_hook(progress)
    folder_paths.set_counter_hook(files.make_counter(farm.r))
    folder_paths.set_fetch_hook(files.make_fetch(farm.r, farm.settings))


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def run_worker(settings: Settings, queues: list[str] | None, concurrency: int, pool: str) -> None:
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for d in (settings.output_dir, settings.input_dir, settings.temp_dir):
        d.mkdir(parents=True, exist_ok=True)
    registry = boot(settings)
    app = make_celery(settings)
    app.nf_runtime = WorkerRuntime(settings, registry, app)  # type: ignore[attr-defined]
    worker_process_init.connect(lambda **_: _die_with_parent(), weak=False)
    wanted = list(queues or [keys.SHARED_QUEUE])
    private = keys.worker_queue(settings.worker_name)
    if private not in wanted:
        wanted.append(private)
    stop = threading.Event()
    heartbeat.start(settings, app, stop)
    argv = [
        "worker",
        "-P", pool,
        "-c", str(concurrency),
        "-n", settings.worker_name,
        "-Q", ",".join(wanted),
        "--without-gossip",
        "--without-mingle",
        "-l", settings.log_level,
    ]
    try:
        app.worker_main(argv)
    finally:
        stop.set()
