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

import redis
from celery.signals import task_received, worker_process_init, worker_process_shutdown

from nodes.boot import boot
from nodes.registry import NodeRegistry
from nodes.settings import Settings
from worker import cores, functions, heartbeat, hooks, keys, rescue
from worker.celery_app import make_celery
from worker.farm import Farm

log = logging.getLogger("nodefarm.worker")

class WorkerRuntime:
    """Per-process farm handles, rebuilt after a fork (connections are never shared across fork)."""

    def __init__(self, settings: Settings, registry: NodeRegistry | None) -> None:
        self.settings = settings
        self.registry = registry  # None: each pool child boots its own (the user's ComfyUI, --comfyui)
        self._farm: Farm | None = None
        self._pid = 0

    def boot_child(self) -> None:
        """A pool child loads the user's ComfyUI itself: ComfyUI probes CUDA on import, which a
        Celery parent must never do before it forks."""
        if self.registry is None:
            self.registry = boot(self.settings)

    def farm(self) -> Farm:
        if self._farm is None or self._pid != os.getpid():
            self.boot_child()
            assert self.registry is not None
            self._farm = Farm.connect(self.settings, self.registry)
            self._pid = os.getpid()
            hooks.install(self._farm)
        return self._farm

    def shutdown(self) -> None:
        """A pool child exits: finish the uploads it still owes the result store."""
        if self._farm is not None and self._pid == os.getpid():
            self._farm.store.flush()


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
    in_child = settings.comfyui_dir is not None and pool == "prefork"
    registry = None if in_child else boot(settings)
    state = redis.Redis.from_url(settings.redis_url)
    functions.load(state)
    heartbeat.restarted(state, settings)  # nodes an earlier process of this name left running
    app = make_celery(settings)
    runtime = WorkerRuntime(settings, registry)
    app.nf_runtime = runtime  # type: ignore[attr-defined]
    worker_process_shutdown.connect(lambda **_: runtime.shutdown(), weak=False)
    worker_process_init.connect(lambda **_: _die_with_parent(), weak=False)
    worker_process_init.connect(lambda **_: cores.apply(settings, concurrency), weak=False)
    worker_process_init.connect(lambda **_: runtime.farm(), weak=False)  # boot and connect before the first node
    if pool != "prefork":  # no pool child: this process runs the nodes
        cores.apply(settings)
    # its private queue first: with the "priority" queue order (worker/celery_app.py) a worker takes
    # what only it can run, or what it was given for locality, before anything from the shared queue
    private = keys.worker_queue(settings.worker_name)
    wanted = [private] + [q for q in (queues or [keys.SHARED_QUEUE]) if q != private]
    stop = threading.Event()
    heartbeat.start(settings, stop)
    holdings = rescue.Holdings(settings, state)  # what this worker took from the broker (prefetched, running)
    task_received.connect(holdings.received, weak=False)
    rescue.start(settings, holdings, stop)
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
        try:  # a clean stop: kombu put what it had prefetched back on its queue; nothing to re-send later
            state.delete(keys.worker_reserved(settings.worker_name))
        except redis.RedisError:
            pass
