"""The Celery app: JSON only, late acks, prefetch 1, no result backend, one task (a node).

Settings follow DESIGN section 5 and reference/celery-redis.md section 7.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery

from nodes.settings import Settings
from worker import keys


def reliable_conf(time_limit: int, visibility: int = 0) -> dict[str, Any]:
    """Celery settings for long GPU nodes that must never be lost (DESIGN section 5): JSON only,
    late acks that re-queue when a worker dies, prefetch 1, no result backend, a visibility timeout
    (``visibility``; 0: twice the hard time limit) that a live worker keeps pushing back for the
    messages it holds (worker/rescue.py), so kombu never re-delivers a node while it runs.

    kombu looks for expired messages every ``unacked_restore_interval`` x ``unacked_restore_throttle``
    seconds (100 by default); here every quarter of the timeout, at most every 10 s."""
    visibility = visibility or 2 * time_limit
    restore_every = max(1, min(10, visibility // 4))
    return {
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "event_serializer": "json",
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_ignore_result": True,
        "result_backend": None,
        "task_time_limit": time_limit,
        "broker_transport_options": {"visibility_timeout": visibility, "queue_order_strategy": "priority",
                                     "unacked_restore_interval": restore_every, "unacked_restore_throttle": 1},
        "visibility_timeout": visibility,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "broker_connection_retry_on_startup": True,
        "worker_hijack_root_logger": False,
        "worker_redirect_stdouts": False,
        # task events for Flower and `celery events` (README, "Flower"); node tasks are published by the
        # run functions (worker/functions.lua publish), whose headers give them readable names and args
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "worker_soft_shutdown_timeout": 10,
        # a pool child boots before it reports up; with --comfyui that imports the user's ComfyUI
        # (torch, transformers, its node packs): often well past Celery's default of 4 s
        "worker_proc_alive_timeout": 180,
    }


def make_celery(settings: Settings) -> Celery:
    app = Celery("nodefarm", broker=settings.redis_url, set_as_current=False)
    app.conf.update(reliable_conf(settings.node_time_limit, settings.visibility_timeout),
                    task_default_queue=keys.SHARED_QUEUE, worker_send_task_events=settings.task_events)

    @app.task(name=keys.NODE_TASK, ignore_result=True, acks_late=True, bind=True)
    def node_task(self: Any, pid: str, nid: str, seq: int = 1) -> None:
        from worker.task import execute_task

        sent = getattr(self.request, "nf_sent", None)  # a header of the message (worker/functions.lua publish)
        execute_task(runtime(app).farm(), pid, nid, int(seq), sent if isinstance(sent, (int, float)) else None)

    return app


def runtime(app: Any) -> Any:
    """The worker runtime attached to the app by :func:`worker.main.run_worker`."""
    rt = getattr(app, "nf_runtime", None)
    if rt is None:
        raise RuntimeError("worker runtime not attached (start workers with `nodefarm worker`)")
    return rt


def process_id() -> int:
    return os.getpid()
