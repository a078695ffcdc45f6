"""The farm-wide prompt queue (ComfyUI's PromptQueue): pending and running runs, their items.

Admission order, farm-wide (``nf_admit`` in functions.lua, :func:`admission_order` here):

1. the highest priority level first: ``extra_data["priority"]`` (an integer, default 0; higher goes
   sooner), changed while pending with ``POST /api/jobs/<id>/priority``;
2. within a level, submitters take turns (round-robin): ``extra_data["nodefarm_submitter"]`` (the
   token's name, else the client id, stamped by api/auth.py). A submitter served, or newly arrived,
   takes the next turn, after every other submitter waiting there: one client's 500 queued runs delay
   another client's single run by at most one run of each other client of its level;
3. within a submitter, ComfyUI's order: lower ``number`` first (``front`` gives a negative number, so
   it jumps ahead of that client's other runs; to jump ahead of other clients, raise the priority,
   or move it to the front: ``POST /api/jobs/<id>/front`` (:func:`move_to_front`).

A submitter that already runs ``NODEFARM_MAX_RUNS_PER_CLIENT`` runs is passed over (its turn keeps),
so a lower level or another client goes instead. For a single client this is exactly ComfyUI's queue.

In Redis: every pending run is in a ZSET by number (what counts, and what the legacy order was), and in
its lane (a ZSET per level and submitter); the levels and each level's turns are ZSETs too, so admission
is a handful of O(log n) steps in one Redis Function. The item (what ``/queue`` shows) and what is
never shown (sensitive extra data, nodes whose validation runs again on the worker) are stored per
run. ``status`` events tell every client the queue size after each change.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
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


SUBMITTER_KEY = "nodefarm_submitter"  # in extra_data: who submitted the run (api/auth.py stamps it)
PRIORITY_KEY = "priority"  # in extra_data: the run's priority level (an integer; higher goes sooner)
PRIORITY_LIMIT = 1_000_000  # levels lie within +- this


def priority_of(extra_data: Mapping[str, Any]) -> int:
    """The run's priority level: ``extra_data["priority"]`` when an integer within the limit, else 0."""
    value = extra_data.get(PRIORITY_KEY)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return 0
    if isinstance(value, float) and not value.is_integer():
        return 0
    return int(value) if abs(value) <= PRIORITY_LIMIT else 0


def submitter_of(extra_data: Mapping[str, Any]) -> str:
    """Whose turn a run takes: the submitter api/auth.py stamped, else the client id, else ""."""
    for key in (SUBMITTER_KEY, "client_id"):
        value = extra_data.get(key)
        if value:
            return str(value)
    return ""


@dataclass(frozen=True)
class Lane:
    """The pending runs of one submitter at one priority level, in ComfyUI's order (lower number first)."""

    level: int
    submitter: str
    turn: float  # the lowest turn of a level goes next
    pids: tuple[str, ...]


def admission_order(lanes: Iterable[Lane]) -> list[str]:
    """Pending runs in the order ``nf_admit`` starts them (no per-client cap in the way): levels from
    the highest; within a level one run of each submitter in turn order, round after round."""
    by_level: dict[int, list[Lane]] = {}
    for lane in lanes:
        by_level.setdefault(lane.level, []).append(lane)
    order: list[str] = []
    for level in sorted(by_level, reverse=True):
        turns = sorted(by_level[level], key=lambda lane: (lane.turn, lane.submitter.encode()))
        for i in range(max(len(lane.pids) for lane in turns)):
            order.extend(lane.pids[i] for lane in turns if i < len(lane.pids))
    return order


def _queue_keys() -> list[str]:
    """The keys every queue function takes (functions.lua ``Q``), and its two key prefixes."""
    return [keys.QUEUE, keys.RUNNING, keys.EVENTS, keys.QUEUE_LEVELS, keys.QUEUE_TURN, keys.QUEUE_PLACE,
            keys.RUNNING_SUBMITTERS]


PREFIXES = (keys.QUEUE_LANE_PREFIX, keys.QUEUE_TURNS_PREFIX)


def enqueue(r: redis.Redis, item: QueueItem) -> None:
    """Queue a validated run in its lane and tell every client the queue size (one atomic step: ``nf_enqueue``)."""
    pid = item.prompt_id
    private = json.dumps(item.private()) if item.sensitive or item.deferred else ""
    fkeys = [keys.run_item(pid), keys.run_private(pid), *_queue_keys()]
    r.fcall("nf_enqueue", len(fkeys), *fkeys, *PREFIXES, pid, repr(float(item.number)), json.dumps(item.wire()),
            private, str(priority_of(item.extra_data)), submitter_of(item.extra_data))


def set_priority(r: redis.Redis, pid: str, priority: int) -> bool:
    """Move a pending run to priority level ``priority`` (its item says so); False when not pending."""
    item = load_item(r, pid)
    if item is None or r.zscore(keys.QUEUE, pid) is None:
        return False
    item.extra_data = {**item.extra_data, PRIORITY_KEY: int(priority)}
    fkeys = [keys.run_item(pid), *_queue_keys()]
    return bool(r.fcall("nf_requeue", len(fkeys), *fkeys, *PREFIXES, pid, json.dumps(item.wire()),
                        str(priority_of(item.extra_data)), submitter_of(item.extra_data)))


def move_to_front(r: redis.Redis, pid: str) -> QueueItem | None:
    """Make a pending run the next one admitted (its submitter's cap allowing): raised to the highest
    pending level when below it, numbered below every other pending run (a fresh negative number, as
    ComfyUI's ``front``), its submitter first in its level's turns. Its item, changed; None when not
    pending. One atomic step (``nf_front``) that checks the queue read here still holds."""
    for _ in range(FRONT_TRIES):
        item = load_item(r, pid)
        if item is None or r.zscore(keys.QUEUE, pid) is None:
            return None
        top = r.zrange(keys.QUEUE_LEVELS, 0, 0)
        level = priority_of(item.extra_data)
        if top and int(_s(top[0])) > level:
            level = int(_s(top[0]))
            item.extra_data = {**item.extra_data, PRIORITY_KEY: level}
        others = [score for p, score in r.zrange(keys.QUEUE, 0, 1, withscores=True) if _s(p) != pid]
        if others and others[0] <= item.number:
            number = min(-next_number(r), others[0] - 1)
            item.number = int(number) if float(number).is_integer() else number
        fkeys = [keys.run_item(pid), *_queue_keys()]
        moved = int(r.fcall("nf_front", len(fkeys), *fkeys, *PREFIXES, pid, json.dumps(item.wire()), str(level),
                            submitter_of(item.extra_data), repr(float(item.number))))
        if moved >= 0:
            return item if moved else None
    raise RuntimeError(f"the queue kept changing while run {pid} was moved to the front; try again")


FRONT_TRIES = 20  # reads of the queue before move_to_front gives up (each lost only to a concurrent change)


def load_item(r: Any, pid: str) -> QueueItem | None:
    """A run's item with its private part (sensitive extra data, deferred validation)."""
    raw, private = r.mget([keys.run_item(pid), keys.run_private(pid)])
    if raw is None:
        return None
    return QueueItem.from_wire(json.loads(raw), json.loads(private) if private else None)


def lanes(r: redis.Redis) -> tuple[list[Lane], list[str]]:
    """(the lanes, pending runs in no lane by number) as one consistent snapshot."""
    for _ in range(5):
        with r.pipeline() as pipe:
            try:
                pipe.watch(keys.QUEUE, keys.QUEUE_LEVELS)
                got = _read_lanes(pipe)
                pipe.multi()
                pipe.execute()
                return got
            except redis.WatchError:  # the queue moved meanwhile: read it again
                continue
    return _read_lanes(r)


def _read_lanes(r: Any) -> tuple[list[Lane], list[str]]:
    levels = [_s(x) for x in r.zrange(keys.QUEUE_LEVELS, 0, -1)]
    turns: list[tuple[str, str, float]] = []
    for level in levels:
        turns += [(level, _s(sub), float(turn)) for sub, turn in r.zrange(keys.queue_turns(level), 0, -1, withscores=True)]
    found = [Lane(int(level), sub, turn, tuple(_s(p) for p in r.zrange(keys.queue_lane(level, sub), 0, -1)))
             for level, sub, turn in turns]
    laned = sum(len(lane.pids) for lane in found)
    rest: list[str] = []
    if int(r.zcard(keys.QUEUE)) != laned:  # runs queued before lanes existed
        inside = {p for lane in found for p in lane.pids}
        rest = [p for p in (_s(x) for x in r.zrange(keys.QUEUE, 0, -1)) if p not in inside]
    return found, rest


def pending_ids(r: redis.Redis) -> list[str]:
    """Pending runs in admission order."""
    found, rest = lanes(r)
    return admission_order(found) + rest


def queue_items(r: redis.Redis, limit: int | None = None) -> tuple[list[QueueItem], list[QueueItem]]:
    """(running, pending) items: running by number, pending in admission order (the first ``limit``:
    only their items are read)."""
    running_ids = [_s(p) for p in r.zrange(keys.RUNNING, 0, -1)]
    pending = pending_ids(r)
    if limit is not None:
        pending = pending[:limit]
    ids = running_ids + pending
    raw = r.mget([keys.run_item(p) for p in ids]) if ids else []
    items = [QueueItem.from_wire(json.loads(x)) if x else None for x in raw]
    n = len(running_ids)
    return [i for i in items[:n] if i], [i for i in items[n:] if i]


def dequeue(r: redis.Redis, pids: list[str]) -> int:
    """Take pending runs off the queue (their items dropped) in one step: how many were pending.
    Every client hears the new queue size when any was."""
    removed = 0
    for i in range(0, len(pids), DEQUEUE_CHUNK):
        chunk = pids[i:i + DEQUEUE_CHUNK]
        fkeys = _queue_keys() + [k for p in chunk for k in (keys.run_item(p), keys.run_private(p))]
        removed += int(r.fcall("nf_dequeue", len(fkeys), *fkeys, *PREFIXES, *chunk))
    return removed


DEQUEUE_CHUNK = 1000  # runs taken off per call (a cleared queue of 100,000 is 100 short steps)


def delete_pending(r: redis.Redis, pids: list[str]) -> None:
    if not dequeue(r, pids):
        emit_status(r)


def clear_pending(r: redis.Redis) -> None:
    delete_pending(r, [_s(p) for p in r.zrange(keys.QUEUE, 0, -1)])


def pop_admittable(r: redis.Redis, max_active: int, per_client: int = 0) -> str | None:
    """Move the next run (module docstring) to running if fewer than ``max_active`` runs run and its
    submitter runs fewer than ``per_client`` (0: no cap), and tell every client the queue size (one
    atomic step: ``nf_admit``). The moved run's id, or None."""
    fkeys = _queue_keys()
    pid = r.fcall("nf_admit", len(fkeys), *fkeys, *PREFIXES, str(max_active), str(per_client))
    return _s(pid) if pid else None
