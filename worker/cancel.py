"""Cancelling runs (``POST /interrupt``, the jobs API): the cancel flag and idle runs.

The flag reaches the worker executing a node of the run: its ProgressBar and
``throw_exception_if_processing_interrupted`` raise there (``worker/hooks.py`` polls the flag), and
a node task that starts after it reports :class:`Interrupted`. A run with no node executing right
now ends at once, so its queued nodes never start.
"""

from __future__ import annotations

import redis

from nodes.core.state import interrupted
from worker import advance, keys
from worker.farm import Farm

CANCEL_TTL_S = 3600


def _s(v: object) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def interrupt(farm: Farm, pid: str | None) -> list[str]:
    """Interrupt running runs (one, or all when ``pid`` is None; a pid not running is a no-op)."""
    running = [_s(p) for p in farm.r.zrange(keys.RUNNING, 0, -1)]
    targets = running if pid is None else [p for p in running if p == pid]
    busy = executing_runs(farm.r)
    for p in targets:
        farm.r.set(keys.run_cancel(p), "1", ex=CANCEL_TTL_S)
        if p not in busy:
            advance.transact(farm, p, lambda s: interrupted(s, None, advance.now_ms()))
    return targets


def executing_runs(r: redis.Redis) -> set[str]:
    """Runs that some live worker is executing a node of right now."""
    out: set[str] = set()
    for name in r.zrange(keys.WORKERS, 0, -1):
        for field in r.hkeys(keys.worker_running(_s(name))):
            out.add(_s(field).split(" ", 1)[0])
    return out
