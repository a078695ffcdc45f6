"""Dispatch: one Celery task per ready node, on the queue its inputs call for.

A node whose input exists only in one worker's memory (a MODEL, anything that cannot be
serialized) goes to that worker's private queue; every other node goes to the shared queue that
any worker consumes. A task names the run, the node and which dispatch of it this is (a stale
or duplicate delivery finds its number outdated and does nothing).
"""

from __future__ import annotations

from collections.abc import Iterable

from nodes.core.state import RunState, Step, route
from worker import keys
from worker.farm import Farm


def send(farm: Farm, pid: str, ready: Iterable[tuple[str, int, str]]) -> None:
    """Send ``(node, seq, holder worker or "")`` tasks of one run."""
    for nid, seq, holder in ready:
        queue = keys.worker_queue(holder) if holder else keys.SHARED_QUEUE
        farm.celery.send_task(keys.NODE_TASK, args=[pid, nid, seq], queue=queue)


def step(farm: Farm, state: RunState, step: Step) -> None:
    """Send the tasks of the nodes a Python-applied step made ready."""
    send(farm, state.pid, [(nid, state.seq[nid], route(state, nid) or "") for nid in step.dispatch])
