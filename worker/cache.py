"""Cache modes: which stored results count as cached when a run is admitted.

``farm`` (default): every result in the result Redis is shared by every run on the farm.
``classic``: ComfyUI's default; at each admission only results the new prompt can reuse survive.
``lru``: ComfyUI's ``--cache-lru N``; the N most recently used results survive.
``none``: ComfyUI's ``--cache-none``; nothing survives a run (keys are salted with the run id).
"""

from __future__ import annotations

from collections.abc import Callable

import redis

from worker import keys
from worker.results import ResultStore


class CachePolicy:
    def __init__(self, mode: str, lru_size: int, r: redis.Redis, store: ResultStore) -> None:
        self.mode = mode
        self.lru_size = lru_size
        self.r = r
        self.store = store

    def salt(self, pid: str) -> str:
        """Mixed into every cache key of a run: the run id with --cache-none, else nothing."""
        return pid if self.mode == "none" else ""

    def admit(self, run_keys: list[str], active_keys: set[str], alive: Callable[[str], bool]) -> dict[str, str]:
        """Apply the mode's eviction for a newly admitted run; return its keys that are cached, each
        with the live worker whose memory alone holds it ("" for the result store). A result held
        by a dead worker is gone with it: not cached, so it is computed again from its recipe."""
        holders = self.store.present(run_keys)
        live = {w: alive(w) for w in set(holders.values()) if w}
        cached = {k: w for k, w in holders.items() if not w or live[w]}
        return {k: cached[k] for k in self._kept(run_keys, active_keys, set(cached))}

    def _kept(self, run_keys: list[str], active_keys: set[str], present: set[str]) -> set[str]:
        if self.mode in ("farm", "none"):
            return present
        if self.mode == "classic":
            indexed = {k.decode() if isinstance(k, bytes) else k for k in self.r.smembers(keys.CACHE_INDEX)}
            keep = set(run_keys) | active_keys
            drop = indexed - keep
            if drop:
                self.r.srem(keys.CACHE_INDEX, *drop)
                self.store.forget(sorted(drop))
            return present & indexed
        # lru
        gen = int(self.r.incr(keys.CACHE_GEN))
        scores = self.r.zmscore(keys.CACHE_INDEX, run_keys) if run_keys else []
        hits = {k for k, s in zip(run_keys, scores, strict=True) if s is not None} & present
        if hits:
            self.r.zadd(keys.CACHE_INDEX, {k: gen for k in hits})
        return hits

    def stored(self, key: str) -> None:
        """A node result was stored under ``key``."""
        if self.mode == "classic":
            self.r.sadd(keys.CACHE_INDEX, key)
        elif self.mode == "lru":
            gen = int(self.r.get(keys.CACHE_GEN) or 0)
            self.r.zadd(keys.CACHE_INDEX, {key: gen})
            excess = int(self.r.zcard(keys.CACHE_INDEX)) - self.lru_size
            if excess > 0:
                evicted = [k.decode() if isinstance(k, bytes) else k for k, _ in self.r.zpopmin(keys.CACHE_INDEX, excess)]
                self.store.forget(evicted)

    def finished(self, pid: str) -> None:
        """A run ended: with --cache-none its results go."""
        if self.mode == "none":
            self.store.forget([k.decode() for k in self.r.hvals(keys.run_part(pid, "key"))])
