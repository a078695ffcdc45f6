"""The bad-worker blocklist: a worker that fails where others succeed, or keeps dying, sits out a while.

A farm of many GPUs always has one that goes bad: a driver wedged after an Xid error, a host whose
node pack did not install, a disk full. Without a blocklist every run that lands there fails (or is
slowed by a death and a rescue) while the other workers are fine. Flamenco's rule is the model:
count a worker's failures, and after 3 keep work away from it for a while.

**What counts against a worker** (``keys.worker_failures``, the last ``blocklist_s`` seconds):

- *a node that failed on it and then succeeded on another worker with the same cache key* - the
  same class, code and inputs, so only the worker differs. This is the one test that tells a bad
  worker from a bad prompt: a class succeeding elsewhere with other inputs proves nothing (a
  sampler fed mismatched shapes fails on every GPU), so class-level success is not counted.
  To settle it at once, a failure that looks like the worker's (:func:`worker_fault`: CUDA and
  other accelerator errors, import errors, a class not installed there, OSError, MemoryError) is
  retried once on another healthy worker; any other failure fails the run as in ComfyUI, and is
  remembered for the window (``keys.FAILED``), so a resubmission that succeeds elsewhere counts too.
- *its death*: the reaper claims it (silent for 3 heartbeats), or it starts again under its name
  with nodes of its earlier process still registered as running (``worker/heartbeat.py``).

Not counted: running out of memory (a job too big for one GPU is not a broken GPU; the node is
already freed and retried elsewhere), failures that happen everywhere, and a node that kills its
pool child (the worker lives on; the node fails its run after ``max_node_attempts``).

**Blocklisted** (``keys.BLOCKLIST``: ``{since, until, reason, failures}``) at ``blocklist_failures``
within ``blocklist_s``, until ``until`` (``blocklist_s`` later) or until an operator lifts it
(``DELETE /nodefarm/blocklist/<worker>``, ``nodefarm blocklist lift``). Its count starts afresh.

**Keeping work away.** A blocklisted worker hands every node task it receives, before starting it
(no attempt counted, no event sent), to the private queue of the least busy live worker that is not
blocklisted; that covers its own private queue too (an input only it held in memory is recomputed
from its recipe, as when a worker dies). With no such worker it runs the node itself: the blocklist
never stalls a run. This was chosen over cancelling its Celery consumer: nothing to restore when
the entry expires, is lifted or the worker restarts, and "is anyone else there?" is answered per
node with live facts. Each process checks its own entry at most once per ``REFRESH_S``
(:class:`Gate`), so a healthy farm pays no Redis round trip per node for it.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import redis

from nodes.settings import Settings
from worker import functions, keys

if TYPE_CHECKING:
    from worker.farm import Farm

log = logging.getLogger("nodefarm.blocklist")

REFRESH_S = 1.0  # how stale a process's view of its own entry (and of recorded failures) may be
REASON_CHARS = 300  # a reason names the node and its error; long messages are cut
# messages of accelerator failures that are the device's or its driver's, not the prompt's
DEVICE_ERRORS = ("CUDA error", "CUDA driver", "CUBLAS_STATUS_", "CUDNN_STATUS_", "cuDNN error", "device-side assert",
                 "HIP error", "NCCL error", "ECC error", "illegal memory access")
DEVICE_ERROR_TYPES = frozenset({"AcceleratorError", "CudaError", "DeferredCudaCallError"})
NOT_INSTALLED = "is not installed on worker"  # worker/task.py's message for a class this worker lacks
OOM_TYPES = frozenset({"OutOfMemoryError", "OOM_EXCEPTION"})


@dataclass(frozen=True)
class Entry:
    """A worker's place on the blocklist."""

    since: float  # unix s
    until: float  # unix s: it expires by itself then
    reason: str
    failures: int  # failures counted in the window that put it there

    def to_json(self) -> dict[str, Any]:
        return {"since": self.since, "until": self.until, "reason": self.reason, "failures": self.failures}

    @classmethod
    def from_json(cls, raw: bytes | str | None) -> Entry | None:
        if raw is None:
            return None
        try:
            d = json.loads(raw)
            return cls(float(d["since"]), float(d["until"]), str(d["reason"]), int(d["failures"]))
        except (ValueError, KeyError, TypeError):
            return None


# ---- the rules (pure) ----------------------------------------------------------------------------


def counts(at: float, now: float, window: float) -> bool:
    """Whether a failure at ``at`` still counts at ``now`` (one second of clock skew between hosts
    allowed)."""
    return now - window < at <= now + 1.0


def verdict(reasons: list[tuple[float, str]], now: float, threshold: int, window: float) -> Entry | None:
    """The entry for a worker with these ``(time, reason)`` failures, or None while under the threshold
    (``threshold`` 0: the blocklist is off)."""
    counted = sorted((at, why) for at, why in reasons if counts(at, now, window))
    if threshold <= 0 or len(counted) < threshold:
        return None
    reason = f"{len(counted)} failures in {window:g} s; the last: {counted[-1][1]}"
    return Entry(since=now, until=now + window, reason=reason, failures=len(counted))


def live_entry(entry: Entry | None, now: float) -> Entry | None:
    """``entry`` unless it expired."""
    return entry if entry is not None and entry.until > now else None


def worker_fault(exc: BaseException) -> bool:
    """Whether a node's exception looks like its worker's fault (worth retrying once elsewhere to find
    out): accelerator errors, imports, a class not installed there, the OS, host memory."""
    names = {t.__name__ for t in type(exc).__mro__}
    if names & OOM_TYPES:
        return False
    if names & DEVICE_ERROR_TYPES or isinstance(exc, (ImportError, MemoryError, OSError)):
        return True
    message = str(exc)
    return isinstance(exc, RuntimeError) and (NOT_INSTALLED in message or any(m in message for m in DEVICE_ERRORS))


def culprits(record: dict[str, Any], winner: str, now: float, window: float) -> list[str]:
    """The workers a failure record charges now that ``winner`` succeeded with the same cache key:
    every other worker that failed it within the window."""
    workers = record.get("workers") if isinstance(record, dict) else None
    if not isinstance(workers, dict):
        return []
    return sorted(w for w, at in workers.items() if w != winner and isinstance(at, (int, float)) and counts(at, now, window))


def describe(exc: BaseException) -> str:
    """``Type: message`` of a node's exception, short."""
    text = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}".rstrip(": ")
    return text[:REASON_CHARS]


# ---- Redis ---------------------------------------------------------------------------------------


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def charge(r: redis.Redis, settings: Settings, worker: str, reason: str, now: float | None = None) -> Entry | None:
    """Count one failure against ``worker``; blocklist it when that makes ``blocklist_failures`` in the
    window (and return its entry)."""
    if settings.blocklist_failures <= 0:
        return None
    now = time.time() if now is None else now
    window = settings.blocklist_s
    key = keys.worker_failures(worker)
    pipe = r.pipeline()
    pipe.zadd(key, {f"{now!r} {reason[:REASON_CHARS]}": now})
    pipe.zremrangebyscore(key, "-inf", f"({now - window!r}")
    pipe.zrange(key, 0, -1, withscores=True)
    pipe.expire(key, int(window) + 60)
    _, _, members, _ = pipe.execute()
    reasons = [(float(score), _s(m).partition(" ")[2]) for m, score in members]
    log.warning("worker %s: failure counted (%d in %g s): %s", worker, len(reasons), window, reason)
    entry = verdict(reasons, now, settings.blocklist_failures, window)
    if entry is None:
        return None
    pipe = r.pipeline()
    pipe.hset(keys.BLOCKLIST, worker, json.dumps(entry.to_json()))
    pipe.delete(key)
    pipe.execute()
    log.warning("worker %s is blocklisted for %g s: %s", worker, window, entry.reason)
    return entry


def entries(r: redis.Redis, now: float | None = None) -> dict[str, Entry]:
    """Every worker on the blocklist now (expired entries are removed)."""
    now = time.time() if now is None else now
    found: dict[str, Entry] = {}
    expired: list[str] = []
    for name, raw in r.hgetall(keys.BLOCKLIST).items():
        entry = live_entry(Entry.from_json(raw), now)
        if entry is None:
            expired.append(_s(name))
        else:
            found[_s(name)] = entry
    if expired:
        r.hdel(keys.BLOCKLIST, *expired)
    return dict(sorted(found.items()))


def entry_of(r: redis.Redis, worker: str, now: float | None = None) -> Entry | None:
    return live_entry(Entry.from_json(r.hget(keys.BLOCKLIST, worker)), time.time() if now is None else now)


def lift(r: redis.Redis, worker: str) -> bool:
    """Take ``worker`` off the blocklist (its count starts afresh); False when it was not on it."""
    pipe = r.pipeline()
    pipe.hget(keys.BLOCKLIST, worker)
    pipe.hdel(keys.BLOCKLIST, worker)
    pipe.delete(keys.worker_failures(worker))
    raw, _, _ = pipe.execute()
    lifted = live_entry(Entry.from_json(raw), time.time()) is not None
    if lifted:
        log.warning("worker %s: blocklist lifted", worker)
    return lifted


def failure_counts(r: redis.Redis, workers: list[str], window: float, now: float | None = None) -> dict[str, int]:
    """How many failures count against each of ``workers`` now."""
    now = time.time() if now is None else now
    pipe = r.pipeline(transaction=False)
    for w in workers:
        pipe.zcount(keys.worker_failures(w), f"({now - window!r}", "+inf")
    return {w: int(n) for w, n in zip(workers, pipe.execute(), strict=True)}


def record_failure(r: redis.Redis, settings: Settings, cache_key: str, class_type: str, worker: str, error: str,
                   now: float | None = None) -> None:
    """Remember that the node with ``cache_key`` failed on ``worker`` (for the window): if the same key
    then succeeds on another worker, this worker is charged (:func:`succeeded`)."""
    now = time.time() if now is None else now
    window = settings.blocklist_s

    def update(pipe: Any) -> None:
        raw = pipe.hget(keys.FAILED, cache_key)
        stale = pipe.zrangebyscore(keys.FAILED_AT, "-inf", f"({now - window!r}")
        record = json.loads(raw) if raw else {}
        workers: dict[str, float] = {}
        if isinstance(record, dict) and isinstance(record.get("workers"), dict):
            workers = record["workers"]
        workers[worker] = now
        pipe.multi()
        if stale:
            pipe.hdel(keys.FAILED, *stale)
            pipe.zrem(keys.FAILED_AT, *stale)
        pipe.hset(keys.FAILED, cache_key, json.dumps({"class": class_type, "error": error, "workers": workers}))
        pipe.zadd(keys.FAILED_AT, {cache_key: now})
        for k in (keys.FAILED, keys.FAILED_AT):  # nothing failed for a window: all of it is stale
            pipe.expire(k, int(window) + 60)

    r.transaction(update, keys.FAILED, keys.FAILED_AT)


def failed(farm: Farm, cache_key: str, class_type: str, exc: BaseException, attempts: int) -> str | None:
    """A node failed here with ``exc``: remember it (unless out of memory), and return the healthy
    worker to retry it on when the failure looks like this worker's and it is the node's first try."""
    if farm.settings.blocklist_failures <= 0 or {t.__name__ for t in type(exc).__mro__} & OOM_TYPES:
        return None
    try:
        record_failure(farm.r, farm.settings, cache_key, class_type, farm.settings.worker_name, describe(exc))
        farm.gate.noted_failure()
        if attempts > 1 or not worker_fault(exc):
            return None
        others = healthy_others(farm.r, farm.settings)
    except redis.RedisError as exc_redis:  # the node's own error is what the run must report
        log.warning("cannot record the failure of a %s node: %s", class_type, exc_redis)
        return None
    return others[0] if others else None


def succeeded(farm: Farm, cache_key: str, attempts: int) -> list[str]:
    """The node with ``cache_key`` just ran successfully on this worker: charge every other worker
    that failed it within the window (returns them). A round trip only when the node was tried before
    (``attempts`` > 1) or failures were recorded lately (checked at most once per ``REFRESH_S``)."""
    if farm.settings.blocklist_failures <= 0:
        return []
    if attempts <= 1 and (cache_key.startswith("u:") or not farm.gate.failures_recorded(farm.r)):
        return []  # an uncached node's key is its run's own: only its own retry can match it
    me, now = farm.settings.worker_name, time.time()
    try:
        pipe = farm.r.pipeline()
        pipe.hget(keys.FAILED, cache_key)
        pipe.hdel(keys.FAILED, cache_key)  # settled: whoever deletes it charges (one charge per failure)
        pipe.zrem(keys.FAILED_AT, cache_key)
        raw, _, _ = pipe.execute()
        if not raw:
            return []
        record = json.loads(raw)
        charged = culprits(record, me, now, farm.settings.blocklist_s)
        for worker in charged:
            charge(farm.r, farm.settings, worker,
                   f"{record.get('class', '?')} failed there ({record.get('error', '?')}) and succeeded on {me}", now)
    except (redis.RedisError, ValueError) as exc:  # bookkeeping: the node's result is in already
        log.warning("cannot settle the failures of %s: %s", cache_key, exc)
        return []
    return charged


def healthy_others(r: redis.Redis, settings: Settings, now: float | None = None) -> list[str]:
    """Live workers other than this one that are not blocklisted, the least busy (shortest private
    queue) first."""
    now = time.time() if now is None else now
    alive_after = now - 3 * settings.heartbeat_s
    names = [_s(n) for n in r.zrangebyscore(keys.WORKERS, alive_after, "+inf")]
    names = [n for n in names if n != settings.worker_name]
    if not names:
        return []
    blocked = entries(r, now)
    names = [n for n in names if n not in blocked]
    if not names:
        return []
    pipe = r.pipeline(transaction=False)
    for n in names:
        pipe.llen(keys.worker_queue(n))
    return [n for _, n in sorted(zip(pipe.execute(), names, strict=True))]


def bounce(farm: Farm, pid: str, nid: str, seq: int) -> str | None:
    """When this worker is blocklisted: hand the node task to a healthy worker's private queue before
    starting it, and return that worker; None (run it here) when not blocklisted or nobody else can."""
    if farm.gate.mine(farm.r, farm.settings.worker_name) is None:
        return None
    others = healthy_others(farm.r, farm.settings)
    if not others:
        return None  # every live worker is blocklisted (or none other is alive): work still runs
    pipe = farm.r.pipeline()
    functions.publish_in(pipe, pid, [(nid, seq, others[0])])
    pipe.hdel(keys.worker_reserved(farm.settings.worker_name), f"{pid} {nid} {seq}")  # not ours to rescue now
    pipe.execute()
    log.info("blocklisted: node %s of %s handed to %s", nid, pid, others[0])
    return others[0]


def holder_usable(farm: Farm, holder: str) -> bool:
    """Whether a result only ``holder``'s memory has can serve a node: it is this worker, or a live
    one that is not blocklisted (a blocklisted worker hands on the consumers routed to it, so what only
    it holds is made again from its recipe, instead of being offered as a cache hit for ever)."""
    if holder == farm.settings.worker_name:
        return True
    return bool(farm.alive(holder)) and entry_of(farm.r, holder) is None


class Gate:
    """One process's view of its own blocklist entry and of whether any failure is recorded, each
    refreshed at most once per ``REFRESH_S`` (kept on the :class:`~worker.farm.Farm`)."""

    def __init__(self) -> None:
        self._mine: Entry | None = None
        self._mine_at = -REFRESH_S
        self._failed = False
        self._failed_at = -REFRESH_S

    def mine(self, r: redis.Redis, worker: str) -> Entry | None:
        now = time.monotonic()
        if now - self._mine_at >= REFRESH_S:
            self._mine = entry_of(r, worker)
            self._mine_at = now
        return live_entry(self._mine, time.time())

    def failures_recorded(self, r: redis.Redis) -> bool:
        now = time.monotonic()
        if now - self._failed_at >= REFRESH_S:
            self._failed = bool(r.exists(keys.FAILED))
            self._failed_at = now
        return self._failed

    def noted_failure(self) -> None:
        """This process recorded a failure: it exists now."""
        self._failed, self._failed_at = True, time.monotonic()
