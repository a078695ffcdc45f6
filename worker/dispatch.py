"""Dispatch: one Celery task per ready node, on the queue its inputs call for.

A node whose input exists only in one worker's memory (a MODEL, anything that cannot be
serialized) goes to that worker's private queue; every other node goes to the shared queue that
any worker consumes. A task names the run, the node and which dispatch of it this is (a stale
or duplicate delivery finds its number outdated and does nothing).

Task messages are pushed by the Redis Functions (``publish`` in ``worker/functions.lua``) in the
same atomic step that made their nodes ready: ``nf_done`` for a finished node, ``nf_publish``
inside the transaction of every other step. A node is never marked dispatched without its task.
"""

from __future__ import annotations

from typing import Any

from nodes.core.state import RunState, Step, route
from worker import functions


def ready(state: RunState, step: Step) -> list[tuple[str, int, str]]:
    """``(node, seq, holder worker or "")`` of the nodes a step made ready."""
    return [(nid, state.seq[nid], route(state, nid) or "") for nid in step.dispatch]


def publish_in(pipe: Any, state: RunState, step: Step) -> None:
    """Queue the step's node tasks on its transaction."""
    functions.publish_in(pipe, state.pid, ready(state, step))
