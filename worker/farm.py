"""The Farm: one process's handles on the farm (settings, registry, Redis, result store, cache policy).

Built once at boot by the API and by every worker process, then passed around; nothing else in
our code keeps connections in globals.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import redis

from nodes.registry import NodeRegistry
from nodes.settings import Settings
from worker import keys, results
from worker.blocklist import Gate
from worker.cache import CachePolicy
from worker.results import ResultStore


@dataclass
class Farm:
    settings: Settings
    registry: NodeRegistry
    r: redis.Redis
    store: ResultStore
    cache: CachePolicy
    # one node instance per (node id, class) in this process, reused across runs (spec 5.8)
    objects: dict[tuple[str, str], Any] = field(default_factory=dict)
    # this process's cached view of the blocklist (worker/blocklist.py): no round trip per node
    gate: Gate = field(default_factory=Gate)

    def alive(self, name: str) -> bool:
        """Whether a worker's heartbeat is recent (3 periods)."""
        score = self.r.zscore(keys.WORKERS, name)
        return score is not None and time.time() - float(score) < 3 * self.settings.heartbeat_s

    @classmethod
    def connect(cls, settings: Settings, registry: NodeRegistry) -> Farm:
        r = redis.Redis.from_url(settings.redis_url)
        store = results.connect(settings.result_redis_url or settings.redis_url, settings.worker_name,
                                settings.worker_cache_mb * 1024 * 1024)
        return cls(
            settings=settings,
            registry=registry,
            r=r,
            store=store,
            cache=CachePolicy(settings.cache_mode, settings.cache_lru_size, r, store),
        )
