"""The farm-wide prompt queue (ComfyUI's PromptQueue): pending and running runs, their items.

Pending runs wait in a ZSET ordered by ``number`` (``front`` submissions get a negative one);
running runs sit in another ZSET while they execute. The item (what ``/queue`` shows) and what is
never shown (sensitive extra data, nodes whose validation runs again on the worker) are stored per
run. ``status`` events tell every client the queue size after each change.
"""

from __future__ import annotations

import json
from typing import Any

import redis

from nodes.core.item import QueueItem
from worker import events, keys


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def next_number(r: redis.Redis) -> int:
    """ComfyUI's PromptServer.number: incremented on every POST /prompt without a number."""
    return int(r.incr(keys.NUMBER)) - 1


def queue_remaining(r: redis.Redis) -> int:
    pipe = r.pipeline(transaction=False)
    pipe.zcard(keys.QUEUE)
    pipe.zcard(keys.RUNNING)
    pending, running = pipe.execute()
    return int(pending) + int(running)


def emit_status(r: redis.Redis) -> None:
    pipe = r.pipeline(transaction=False)
    events.add(pipe, None, None, "status", events.status_data(queue_remaining(r)))
    pipe.execute()


def enqueue(r: redis.Redis, item: QueueItem) -> None:
    """Queue a validated run and tell every client the queue size (one atomic step: ``nf_enqueue``)."""
    pid = item.prompt_id
    private = json.dumps(item.private()) if item.sensitive or item.deferred else ""
    r.fcall("nf_enqueue", 5, keys.run_item(pid), keys.run_private(pid), keys.QUEUE, keys.RUNNING, keys.EVENTS,
            pid, repr(float(item.number)), json.dumps(item.wire()), private)


def load_item(r: Any, pid: str) -> QueueItem | None:
    """A run's item with its private part (sensitive extra data, deferred validation)."""
    raw, private = r.mget([keys.run_item(pid), keys.run_private(pid)])
    if raw is None:
        return None
    return QueueItem.from_wire(json.loads(raw), json.loads(private) if private else None)


def queue_items(r: redis.Redis) -> tuple[list[QueueItem], list[QueueItem]]:
    """(running, pending) items in queue order."""
    pipe = r.pipeline(transaction=False)
    pipe.zrange(keys.RUNNING, 0, -1)
    pipe.zrange(keys.QUEUE, 0, -1)
    running_ids, pending_ids = pipe.execute()
    ids = [_s(p) for p in running_ids] + [_s(p) for p in pending_ids]
    raw = r.mget([keys.run_item(p) for p in ids]) if ids else []
    items = [QueueItem.from_wire(json.loads(x)) if x else None for x in raw]
    n = len(running_ids)
    return [i for i in items[:n] if i], [i for i in items[n:] if i]


def delete_pending(r: redis.Redis, pids: list[str]) -> None:
    for pid in pids:
        if r.zrem(keys.QUEUE, pid):
            r.delete(keys.run_item(pid), keys.run_private(pid))
    emit_status(r)


def clear_pending(r: redis.Redis) -> None:
    delete_pending(r, [_s(p) for p in r.zrange(keys.QUEUE, 0, -1)])


def pop_admittable(r: redis.Redis, max_active: int) -> str | None:
    """Move the head of the queue to running if fewer than ``max_active`` runs run, and tell every
    client the queue size (one atomic step: ``nf_admit``). The moved run's id, or None."""
    pid = r.fcall("nf_admit", 3, keys.QUEUE, keys.RUNNING, keys.EVENTS, str(max_active))
    return _s(pid) if pid else None
