"""What a worker holds from the broker: nodes taken but not started, and messages of running nodes.

Why. With late acks, kombu's Redis transport keeps every message a worker took in its ``unacked``
hash and puts it back on its queue only once it is older than the visibility timeout (2 h by
default), and it does not record which worker took it. A worker SIGKILLed with a node prefetched
(Celery reserves one task beyond the one it runs) left that node waiting for hours. Restoring "the
dead worker's" messages from kombu's hash cannot work without knowing the consumer (restoring every
old one would re-deliver the long nodes of live workers), so each worker records what it took:

* Celery's ``task_received`` signal, in the worker's main process before the task reaches the pool,
  writes the node to ``nf:worker:<name>:reserved`` (:func:`worker.keys.worker_reserved`);
  ``nf_start`` removes it when the node begins, in the same step that registers it as running.
  The reaper (and a worker restarted under its name) re-sends a dead worker's reserved nodes as it
  does its running ones, with the same seq: a later redelivery of the original message finds the
  node done and is a no-op.
* The same delivery tags let a live worker keep its messages from being re-delivered while they
  wait or run: every heartbeat it re-scores them in kombu's ``unacked_index``, so a node running
  longer than the visibility timeout runs once. A dead worker's messages age and come back as before.
* A running entry of this worker whose message it no longer holds (its pool child was killed on a
  broker connection loss, or the state Redis restarted) is dropped, so the watchdog
  (:mod:`worker.watchdog`) can see the node is nowhere and send it again.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import redis

from nodes.settings import Settings
from worker import functions, keys

log = logging.getLogger("nodefarm.rescue")


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class Holdings:
    """The delivery tags this worker process took from the broker, and their nodes."""

    def __init__(self, settings: Settings, r: redis.Redis) -> None:
        self.settings = settings
        self.r = r
        self.lock = threading.Lock()
        self.tags: dict[str, tuple[str, str, int]] = {}  # delivery tag -> (pid, node, seq)
        self.stale: set[str] = set()  # running entries without a held message at the last look

    def received(self, sender: Any = None, request: Any = None, **_: Any) -> None:
        """Celery's ``task_received``: record the node before the pool can start it."""
        if request is None or getattr(request, "name", None) != keys.NODE_TASK:
            return
        try:
            pid, nid, seq = str(request.args[0]), str(request.args[1]), int(request.args[2])
            tag = str(request.message.delivery_tag)
        except (AttributeError, IndexError, TypeError, ValueError):
            return
        with self.lock:
            self.tags[tag] = (pid, nid, seq)
        try:
            self.r.hset(keys.worker_reserved(self.settings.worker_name), f"{pid} {nid} {seq}",
                        json.dumps([pid, nid, seq, tag]))
        except redis.RedisError as exc:  # the broker delivered it, so Redis is back soon; the watchdog covers the gap
            log.warning("cannot record reserved node %s of %s: %s", nid, pid, exc)

    def refresh(self) -> None:
        """Push back the visibility deadline of every message this worker holds; forget those acked
        or restored; drop running entries whose message this worker no longer holds."""
        name = self.settings.worker_name
        running = self.r.hgetall(keys.worker_running(name))  # read before the tags: see below
        with self.lock:
            tags = list(self.tags)
        now = time.time()
        gone: list[str] = []
        if tags:
            pipe = self.r.pipeline(transaction=False)
            for tag in tags:
                pipe.zadd(keys.KOMBU_UNACKED_INDEX, {tag: now}, xx=True)
            pipe.zmscore(keys.KOMBU_UNACKED_INDEX, tags)
            scores = pipe.execute()[-1]
            gone = [tag for tag, score in zip(tags, scores, strict=True) if score is None]
        with self.lock:
            dropped = [self.tags.pop(tag) for tag in gone if tag in self.tags]
            held = set(self.tags.values())
        if dropped:
            self._forget_reserved(dropped)
        # A node's message is held from before nf_start until after its running entry is removed, and
        # the running hash was read first: an entry without a held message two looks in a row is stale.
        stale = {f"{field!r}{payload!r}" for field, payload in running.items()
                 if tuple(json.loads(payload)[:3]) not in held}
        repeat = stale & self.stale
        self.stale = stale - repeat
        for field, payload in running.items():
            if f"{field!r}{payload!r}" in repeat:
                log.warning("worker %s no longer holds the message of running node %s; dropping it", name, _s(field))
                self._drop_if_same(keys.worker_running(name), field, payload)

    def _forget_reserved(self, nodes: list[tuple[str, str, int]]) -> None:
        key = keys.worker_reserved(self.settings.worker_name)
        fields = [f"{pid} {nid} {seq}" for pid, nid, seq in nodes]
        with self.lock:
            still = {f"{pid} {nid} {seq}" for pid, nid, seq in self.tags.values()}
        gone = [f for f in fields if f not in still]  # the same node delivered again is still reserved
        if gone:
            self.r.hdel(key, *gone)

    def _drop_if_same(self, key: str, field: bytes, payload: bytes) -> None:
        with self.r.pipeline() as pipe:
            try:
                pipe.watch(key)
                if pipe.hget(key, field) != payload:
                    pipe.unwatch()
                    return
                pipe.multi()
                pipe.hdel(key, field)
                pipe.execute()
            except redis.WatchError:
                pass


def resend_reserved(r: redis.Redis, name: str, why: str) -> list[str]:
    """Re-send the nodes worker ``name`` had taken but not started (its reserved hash), to any worker."""
    reserved = r.hgetall(keys.worker_reserved(name))
    r.delete(keys.worker_reserved(name))
    rescued: list[str] = []
    for payload in reserved.values():
        pid, nid, seq = json.loads(payload)[:3]
        log.warning("worker %s %s holding node %s of %s (not started); re-sending it", name, why, nid, pid)
        pipe = r.pipeline()
        functions.publish_in(pipe, pid, [(nid, int(seq), "")])
        pipe.execute()
        rescued.append(f"{pid}/{nid}")
    return rescued


def start(settings: Settings, holdings: Holdings, stop: threading.Event) -> threading.Thread:
    """The worker's rescue loop, every heartbeat: refresh what it holds, and let the watchdog look
    (one process of the farm at a time does)."""
    from worker import watchdog

    def loop() -> None:
        while not stop.wait(settings.heartbeat_s):
            try:
                holdings.refresh()
                watchdog.maybe_sweep(holdings.r, settings)
            except redis.RedisError as exc:
                log.warning("rescue loop: %s", exc)
            except Exception:  # never let the loop die: it is what keeps long nodes from redelivery
                log.exception("rescue loop failed")

    thread = threading.Thread(target=loop, name="nodefarm-rescue", daemon=True)
    thread.start()
    return thread
