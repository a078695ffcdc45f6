"""History of finished runs (ComfyUI's /history), capped at 10000 entries, oldest dropped."""

from __future__ import annotations

import json

import redis

from worker import keys


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
    if ids:
        pipe = r.pipeline()
        pipe.zrem(keys.HISTORY, *ids)
        pipe.delete(*[keys.history_entry(p) for p in ids])
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


MAXIMUM_HISTORY_SIZE = 10000


def trim(r: redis.Redis) -> None:
    """Drop the oldest entries beyond ComfyUI's MAXIMUM_HISTORY_SIZE."""
    excess = int(r.zcard(keys.HISTORY)) - MAXIMUM_HISTORY_SIZE
    if excess > 0:
        delete(r, [_s(p) for p in r.zrange(keys.HISTORY, 0, excess - 1)])
