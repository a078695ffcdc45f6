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
* A live worker keeps the messages it holds (the requests its Celery consumer holds, prefetched or
  running) from being re-delivered: every heartbeat it re-scores their delivery tags in kombu's
  ``unacked_index``, so a node running longer than the visibility timeout runs once. A dead
  worker's messages age and come back as before.
* A running or reserved entry of a node this worker no longer holds (cancelled on a broker
  connection loss, e.g. the state Redis restarted) is dropped, and its message is no longer
  re-scored, so the watchdog (:mod:`worker.watchdog`) sees the node is nowhere and sends it again.
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
    """What this worker process took from the broker: the requests Celery's consumer holds
    (``celery.worker.state.reserved_requests``: prefetched and running, emptied of what a broker
    connection loss cancelled), mirrored in Redis for the reaper."""

    def __init__(self, settings: Settings, r: redis.Redis) -> None:
        self.settings = settings
        self.r = r
        self.stale: set[tuple[str, bytes, bytes]] = set()  # entries not held at the last look

    def received(self, sender: Any = None, request: Any = None, **_: Any) -> None:
        """Celery's ``task_received``: record the node before the pool can start it."""
        got = _node(request)
        if got is None:
            return
        tag, (pid, nid, seq) = got
        try:
            self.r.hset(keys.worker_reserved(self.settings.worker_name), f"{pid} {nid} {seq}",
                        json.dumps([pid, nid, seq, tag]))
        except redis.RedisError as exc:  # the broker delivered it, so Redis is back soon; the watchdog covers the gap
            log.warning("cannot record reserved node %s of %s: %s", nid, pid, exc)

    def held(self) -> dict[str, tuple[str, str, int]]:
        """Delivery tag -> node of the requests the consumer holds now."""
        from celery.worker import state

        requests: list[Any] = []
        for _ in range(5):  # the consumer thread changes the set while we copy it
            try:
                requests = list(state.reserved_requests)
                break
            except RuntimeError:
                continue
        return dict(got for req in requests if (got := _node(req)) is not None)

    def refresh(self) -> None:
        """Push back the visibility deadline of every message this worker holds, and drop the running
        and reserved entries of nodes it no longer holds (seen so twice in a row: an entry is written
        just before its request is registered, and removed just before the request is let go)."""
        name = self.settings.worker_name
        pipe = self.r.pipeline(transaction=False)
        pipe.hgetall(keys.worker_running(name))
        pipe.hgetall(keys.worker_reserved(name))
        running, reserved = pipe.execute()
        held = self.held()
        if held:
            now = time.time()
            pipe = self.r.pipeline(transaction=False)
            for tag in held:
                pipe.zadd(keys.KOMBU_UNACKED_INDEX, {tag: now}, xx=True)
            pipe.execute()
        nodes = set(held.values())
        stale = {(key, field, payload) for key, entries in ((keys.worker_running(name), running),
                                                            (keys.worker_reserved(name), reserved))
                 for field, payload in entries.items() if _triple(payload) not in nodes}
        repeat = stale & self.stale
        self.stale = stale - repeat
        for key, field, payload in repeat:
            if key == keys.worker_running(name):
                log.warning("worker %s no longer holds running node %s (cancelled on a broker connection loss?); "
                            "dropping it", name, _s(field))
            self._drop_if_same(key, field, payload)

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


def _node(request: Any) -> tuple[str, tuple[str, str, int]] | None:
    """(delivery tag, (pid, node, seq)) of a Celery request for a node task, or None."""
    if request is None or getattr(request, "type", None) != keys.NODE_TASK:  # its name may be a shadow (nf.node:<class>)
        return None
    try:
        return str(request.message.delivery_tag), (str(request.args[0]), str(request.args[1]), int(request.args[2]))
    except (AttributeError, IndexError, TypeError, ValueError):
        return None


def _triple(payload: bytes) -> tuple[str, str, int] | None:
    try:
        pid, nid, seq = json.loads(payload)[:3]
        return str(pid), str(nid), int(seq)
    except (ValueError, TypeError):
        return None


def resend_held(r: redis.Redis, key: str, name: str, why: str, doing: str) -> list[str]:
    """Re-send, to any worker, the nodes listed in worker ``name``'s hash ``key`` (what it was running,
    or had taken and not started), and forget them."""
    held = r.hgetall(key)
    r.delete(key)
    rescued: list[str] = []
    for payload in held.values():
        pid, nid, seq = json.loads(payload)[:3]
        log.warning("worker %s %s %s node %s of %s; re-sending it", name, why, doing, nid, pid)
        pipe = r.pipeline()
        functions.publish_in(pipe, pid, [(nid, int(seq), "")])
        pipe.execute()
        rescued.append(f"{pid}/{nid}")
    return rescued


def resend_reserved(r: redis.Redis, name: str, why: str) -> list[str]:
    """Re-send the nodes worker ``name`` had taken but not started (its reserved hash), to any worker."""
    return resend_held(r, keys.worker_reserved(name), name, why, "holding")  # taken from the broker, not started


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
