"""History of finished runs (ComfyUI's /history and the jobs API's finished jobs), and its indexes.

A run's entry is written by the Redis Function that ends it (``nf:hist:<pid>``, and ``nf:history``:
pid -> when it finished), so ``/history`` pages by rank in that ZSET and reads only the entries it
returns. The jobs API sorts by creation time or by duration and filters by status and workflow: for
that, every finished run is indexed once (:func:`sync`, run by whoever ends a run and by every
listing, so a run is indexed even if its worker died right after ending it) into ZSETs by creation
time and by duration, all runs and per status, and one per workflow; ``/api/jobs`` then reads a page
with ZRANGE and a count with ZCARD, however long the history. :func:`job_facts` is the one place
that says a finished run's status, creation time and duration (api/routes/jobs.py shows the same).

The history keeps ``NODEFARM_HISTORY_SIZE`` entries (ComfyUI's MAXIMUM_HISTORY_SIZE, 10000, by default),
the oldest dropped first.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

import redis

from worker import keys

MAXIMUM_HISTORY_SIZE = 10000  # ComfyUI's; the default of Settings.history_size
COMPLETED, FAILED, CANCELLED = "completed", "failed", "cancelled"
STATUSES = (COMPLETED, FAILED, CANCELLED)
ORDERS = ("created", "duration")
CHUNK = 500  # entries read per round trip while indexing


def _s(v: object) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def get(r: redis.Redis, max_items: int | None = None, offset: int | None = None) -> dict[str, dict]:
    """Entries oldest-first with ComfyUI's paging (spec 2.1)."""
    total = int(r.zcard(keys.HISTORY))
    off = -1 if offset is None else offset
    if max_items is not None and off < 0:
        off = max(0, total - max_items)
    off = max(off, 0)
    if off >= total:
        return {}
    end = total - 1 if max_items is None else min(total, off + max_items) - 1
    if end < off:
        return {}
    ids = [_s(p) for p in r.zrange(keys.HISTORY, off, end)]
    return entries(r, ids)


def entries(r: redis.Redis, ids: list[str]) -> dict[str, dict]:
    if not ids:
        return {}
    raw = r.mget([keys.history_entry(p) for p in ids])
    return {p: json.loads(x) for p, x in zip(ids, raw, strict=True) if x}


def get_one(r: redis.Redis, pid: str) -> dict[str, dict]:
    return entries(r, [pid])


def delete(r: redis.Redis, ids: list[str]) -> None:
    for i in range(0, len(ids), CHUNK):
        chunk = ids[i:i + CHUNK]
        facts = r.hmget(keys.JOBS_FACTS, chunk)
        pipe = r.pipeline()
        pipe.zrem(keys.HISTORY, *chunk)
        pipe.delete(*[keys.history_entry(p) for p in chunk])
        _unindex(pipe, chunk, facts)
        pipe.execute()


def _unindex(pipe: Any, ids: list[str], facts: list[Any]) -> None:
    pipe.hdel(keys.JOBS_FACTS, *ids)
    for order in ORDERS:
        pipe.zrem(keys.jobs_index(order), *ids)
    for pid, raw in zip(ids, facts, strict=True):
        if raw:
            status, workflow_id = json.loads(raw)
            for order in ORDERS:
                pipe.zrem(keys.jobs_index(order, status), pid)
            if workflow_id:
                pipe.zrem(keys.jobs_workflow(workflow_id), pid)
                pipe.zrem(keys.jobs_workflow(workflow_id, status), pid)


def forget(r: redis.Redis, ids: list[str]) -> None:
    """Drop runs from the jobs indexes only (their entries went another way)."""
    if ids:
        facts = r.hmget(keys.JOBS_FACTS, ids)
        pipe = r.pipeline()
        _unindex(pipe, ids, facts)
        pipe.execute()


def clear(r: redis.Redis) -> None:
    delete(r, [_s(p) for p in r.zrange(keys.HISTORY, 0, -1)])


def finish_times(r: redis.Redis, ids: list[str] | None = None) -> dict[str, float]:
    """When runs finished (unix seconds, the history order score): all of them, or just ``ids``."""
    if ids is None:
        return {_s(p): float(score) for p, score in r.zrange(keys.HISTORY, 0, -1, withscores=True)}
    if not ids:
        return {}
    scores = r.zmscore(keys.HISTORY, ids)
    return {p: float(s) for p, s in zip(ids, scores, strict=True) if s is not None}


def trim(r: redis.Redis, size: int = MAXIMUM_HISTORY_SIZE) -> None:
    """After a run ended: index what finished, and drop the oldest entries beyond ``size``."""
    sync(r)
    excess = int(r.zcard(keys.HISTORY)) - size
    if excess > 0:
        delete(r, [_s(p) for p in r.zrange(keys.HISTORY, 0, excess - 1)])


# ---- the jobs indexes --------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobFacts:
    """What the jobs API sorts and filters a finished run by (upstream's comfy_execution/jobs.py rules)."""

    status: str
    create_time: int  # ms: extra_data's create_time, else when it started, ended or was written
    start: int | float | None
    end: int | float | None
    error: dict[str, Any] | None
    workflow_id: str | None

    @property
    def duration(self) -> float:
        return float(self.end - self.start) if self.start and self.end else 0.0


def message_times(messages: Any) -> tuple[Any, Any, dict | None, bool]:
    """(start, end, execution_error data, interrupted) of a run from its status messages."""
    start = end = None
    error = None
    interrupted = False
    for item in messages if isinstance(messages, list) else []:
        if not (isinstance(item, (list, tuple)) and len(item) >= 2 and isinstance(item[1], dict)):
            continue
        name, data = item[0], item[1]
        if name == "execution_start":
            start = data.get("timestamp")
        elif name in ("execution_success", "execution_error", "execution_interrupted"):
            end = data.get("timestamp")
            if name == "execution_error":
                error = data
            elif name == "execution_interrupted":
                interrupted = True
    return start, end, error, interrupted


def job_facts(entry: Mapping[str, Any], finished_at: float | None = None) -> JobFacts:
    number, _pid, _prompt, extra_data, _outputs = (list(entry.get("prompt") or []) + [None] * 5)[:5]
    extra = extra_data if isinstance(extra_data, dict) else {}
    created = extra.get("create_time")
    pnginfo = extra.get("extra_pnginfo")
    workflow = pnginfo.get("workflow") if isinstance(pnginfo, dict) else None
    workflow_id = workflow.get("id") if isinstance(workflow, dict) else None
    status_info = entry.get("status") or {}
    messages = status_info.get("messages") if isinstance(status_info, dict) else None
    start, end, error, interrupted = message_times(messages)
    start = start if _finite(start) else None
    end = end if _finite(end) else None
    failed = isinstance(status_info, dict) and status_info.get("status_str") == "error"
    status = (CANCELLED if interrupted else FAILED) if failed else COMPLETED
    fallback: float = start or end or (finished_at * 1000 if finished_at else 0)
    create_time = int(created) if _finite(created) else int(fallback)
    return JobFacts(status, create_time, start, end, error, str(workflow_id) if workflow_id else None)


def _finite(v: Any) -> TypeGuard[int | float]:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v and abs(v) < 1e300


def index(r: redis.Redis, ids: Iterable[str], finished: Mapping[str, float] | None = None) -> int:
    """Index finished runs for the jobs API (idempotent). How many entries were found."""
    ids = list(ids)
    done = 0
    for i in range(0, len(ids), CHUNK):
        chunk = ids[i:i + CHUNK]
        times = finished if finished is not None else finish_times(r, chunk)
        pipe = r.pipeline(transaction=False)
        for pid, raw in zip(chunk, r.mget([keys.history_entry(p) for p in chunk]), strict=True):
            if not raw:
                continue
            facts = job_facts(json.loads(raw), times.get(pid))
            for order, score in (("created", facts.create_time), ("duration", facts.duration)):
                pipe.zadd(keys.jobs_index(order), {pid: score})
                pipe.zadd(keys.jobs_index(order, facts.status), {pid: score})
            if facts.workflow_id:
                pipe.zadd(keys.jobs_workflow(facts.workflow_id), {pid: facts.create_time})
                pipe.zadd(keys.jobs_workflow(facts.workflow_id, facts.status), {pid: facts.create_time})
            pipe.hset(keys.JOBS_FACTS, pid, json.dumps([facts.status, facts.workflow_id]))
            done += 1
        pipe.execute()
    return done


def sync(r: redis.Redis) -> int:
    """Index the finished runs not indexed yet (the newest, nearly always): how many. O(1) when none."""
    pipe = r.pipeline(transaction=False)
    pipe.zcard(keys.HISTORY)
    pipe.hlen(keys.JOBS_FACTS)
    total, indexed = (int(x) for x in pipe.execute())
    missing = total - indexed
    found = start = 0
    while found < missing:
        window = r.zrevrange(keys.HISTORY, start, start + CHUNK - 1, withscores=True)
        if not window:
            break
        ids = [_s(p) for p, _ in window]
        known = r.hmget(keys.JOBS_FACTS, ids)
        new = [p for p, k in zip(ids, known, strict=True) if k is None]
        found += index(r, new, {_s(p): float(t) for p, t in window})
        start += CHUNK
    return found


def statuses_key(order: str, statuses: Iterable[str], workflow_id: str | None = None) -> list[str]:
    """The index keys whose union holds the finished runs of ``statuses`` (one key when possible), of
    one workflow when given (by creation time only)."""
    wanted = [s for s in STATUSES if s in set(statuses)]
    if workflow_id:
        return [keys.jobs_workflow(workflow_id)] if len(wanted) == len(STATUSES) else \
            [keys.jobs_workflow(workflow_id, s) for s in wanted]
    if len(wanted) == len(STATUSES):
        return [keys.jobs_index(order)]
    return [keys.jobs_index(order, s) for s in wanted]


def count(r: redis.Redis, index_keys: list[str]) -> int:
    pipe = r.pipeline(transaction=False)
    for key in index_keys:
        pipe.zcard(key)
    return sum(int(n) for n in pipe.execute())


def window(r: redis.Redis, index_keys: list[str], start: int, size: int, desc: bool) -> list[str]:
    """Ranks [start, start + size) of the union of ``index_keys`` (disjoint) in score order, ties by
    id (descending ids when ``desc``), as ZRANGE orders one key."""
    if size <= 0 or not index_keys:
        return []
    if len(index_keys) == 1:
        got = (r.zrevrange if desc else r.zrange)(index_keys[0], start, start + size - 1)
        return [_s(p) for p in got]
    pipe = r.pipeline(transaction=False)
    for key in index_keys:
        (pipe.zrevrange if desc else pipe.zrange)(key, 0, start + size - 1, withscores=True)
    merged = [(float(score), _s(p)) for rows in pipe.execute() for p, score in rows]
    merged.sort(reverse=desc)
    return [p for _score, p in merged[start:start + size]]


def count_before(r: redis.Redis, index_keys: list[str], scores: list[float], desc: bool) -> list[int]:
    """For each score: how many indexed runs order strictly before it (a higher score when ``desc``)."""
    if not scores or not index_keys:
        return [0] * len(scores)
    pipe = r.pipeline(transaction=False)
    for score in scores:
        for key in index_keys:
            if desc:
                pipe.zcount(key, f"({score!r}", "+inf")
            else:
                pipe.zcount(key, "-inf", f"({score!r}")
    counts = [int(n) for n in pipe.execute()]
    k = len(index_keys)
    return [sum(counts[i * k:(i + 1) * k]) for i in range(len(scores))]


class Indexed:
    """Finished runs in the order of the union of ``index_keys`` (disjoint ZSETs), for paging."""

    def __init__(self, r: redis.Redis, index_keys: list[str], desc: bool) -> None:
        self.r, self.keys, self.desc = r, index_keys, desc

    def count(self) -> int:
        return count(self.r, self.keys)

    def window(self, start: int, size: int) -> list[str]:
        return window(self.r, self.keys, start, size, self.desc)

    def count_before(self, scores: list[float]) -> list[int]:
        return count_before(self.r, self.keys, scores, self.desc)


class Ranked(Indexed):
    """One workflow's finished runs of some statuses, ranked here by duration from the indexes (a
    workflow has its own indexes by creation time; its durations are read for its runs alone)."""

    def __init__(self, r: redis.Redis, workflow_id: str, statuses: Iterable[str], order: str, desc: bool) -> None:
        super().__init__(r, [], desc)
        ids = [_s(p) for p in r.zrange(keys.jobs_workflow(workflow_id), 0, -1)]
        wanted = set(statuses)
        facts = r.hmget(keys.JOBS_FACTS, ids) if ids else []
        ids = [p for p, raw in zip(ids, facts, strict=True) if raw and json.loads(raw)[0] in wanted]
        scores = r.zmscore(keys.jobs_index(order), ids) if ids else []
        self.rows = sorted(((float(sc), p) for p, sc in zip(ids, scores, strict=True) if sc is not None), reverse=desc)

    def count(self) -> int:
        return len(self.rows)

    def window(self, start: int, size: int) -> list[str]:
        return [p for _score, p in self.rows[start:start + max(size, 0)]] if size > 0 else []

    def count_before(self, scores: list[float]) -> list[int]:
        ordered = [score for score, _p in self.rows]
        if self.desc:  # higher scores come first
            return [sum(1 for x in ordered if x > score) for score in scores]
        return [bisect.bisect_left(ordered, score) for score in scores]
