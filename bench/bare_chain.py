"""The baseline of bench/chain.py: a bare Celery chain of self-enqueuing tasks.

A Celery app configured like ``worker/celery_app.py`` (JSON, late acks, prefetch 1, no results, the
same Redis transport options) on the broker named by ``BENCH_BROKER_URL``, consuming
``BENCH_QUEUE``. ``step(i, n, tag)`` does trivial work and enqueues ``step(i + 1, n, tag)`` until
``i == n``, when it pushes onto ``bench:done:<tag>`` so the driver (blocked on BLPOP) knows.

Run its worker exactly like the farm's:
``celery -A bench.bare_chain worker -P prefork -c 1 --without-gossip --without-mingle -Q <queue>``.
"""

from __future__ import annotations

import os
import time

import redis
from celery import Celery

from worker.celery_app import reliable_conf

BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/0")
QUEUE = os.environ.get("BENCH_QUEUE", "bench.bare")
app = Celery("bare_chain", broker=BROKER_URL, set_as_current=False)
# the farm's own Celery settings, so the baseline differs only by what the farm does per node
app.conf.update(reliable_conf(3600), task_default_queue=QUEUE)

_client: list[redis.Redis] = []


def client() -> redis.Redis:
    """One Redis connection per process (built lazily, so after the prefork fork)."""
    if not _client:
        _client.append(redis.Redis.from_url(BROKER_URL))
    return _client[0]


def done_key(tag: str) -> str:
    return f"bench:done:{tag}"


@app.task(name="bench.step", ignore_result=True, acks_late=True)
def step(i: int, n: int, tag: str) -> None:
    value = float(i) + 1.0  # the trivial work, like MathOperation "add"
    if i < n:
        step.apply_async((i + 1, n, tag), queue=QUEUE)
    else:
        client().rpush(done_key(tag), f"{value} {time.time()}")
