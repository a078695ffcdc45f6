"""The result store: node outputs by content hash, in this worker's memory and in the result Redis.

Every output is kept in the producing worker's in-memory LRU, so the next node on the same worker
takes the very same objects (no copy). Serializable outputs are also written to the result Redis
(``nf:res:<key>``, codec bytes) *behind* the run: a writer thread encodes and uploads them while the
run goes on, so a 64 MB image costs its consumer on this worker nothing. Outputs that cannot be
serialized leave a marker ``b"L" + worker name`` (consumers are routed to the worker that holds
them). UI dicts go to ``nf:ui:<key>`` as JSON, with their result.

A consumer on another worker that misses a result its producer is still uploading waits for it
(:meth:`ResultStore.get_many` with ``producers``) as long as that producer is alive; a result whose
producer died is lost, and the run recomputes it from its recipe.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import redis

from nodes.core.state import BIG_RESULT
from worker import codec, keys
from worker.errors import ResultLost

log = logging.getLogger("nodefarm.results")

LOCAL_MARK = b"L"
WRITE_RETRIES = 3
WAIT_POLL_S = (0.001, 0.002, 0.005, 0.01, 0.02)  # back-off of a consumer waiting for an upload
# per key, in one call (a pipeline of thousands of EXISTS costs the client far more): 0 absent, 1 stored,
# or the name of the worker whose memory alone holds it (its record is LOCAL_MARK + that name)
PRESENT_EACH = """
local out = {}
for i, k in ipairs(KEYS) do
  if redis.call('EXISTS', k) == 0 then out[i] = 0
  elseif redis.call('GETRANGE', k, 0, 0) == 'L' then out[i] = string.sub(redis.call('GET', k), 2)
  else out[i] = 1 end
end
return out
"""
# delete a result record only while it still names this worker as the holder
RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
FLUSH_TIMEOUT_S = 60.0  # the longest a worker waits for its queued uploads (a node ending a run, a child exiting)
UPLOAD_BATCH_S = 0.005  # the writer gathers results this long, then uploads them in one round trip
# a big result's upload (nodes.core.state.BIG_RESULT) waits this long, so that the next node on this
# worker (its likely consumer, see the locality rule) starts before the upload competes for the cores
BIG_UPLOAD_DELAY_S = 0.03


class Stored(NamedTuple):
    local_only: bool  # only this worker can hold it (not serializable)
    nbytes: int  # its size in memory


class ResultStore:
    def __init__(self, r: redis.Redis, worker_name: str, max_bytes: int, upload_wait_s: float = 60.0,
                 uploader: redis.Redis | None = None) -> None:
        self.r = r
        self.uploader = uploader or r
        self.worker_name = worker_name
        self.max_bytes = max_bytes
        self.upload_wait_s = upload_wait_s
        self._local: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self._local_bytes = 0
        self._lock = threading.Condition()
        self._pending: OrderedDict[str, tuple[Any, Any, bool]] = OrderedDict()  # key -> (outputs, ui, local only)
        self._big_since: float | None = None  # when the oldest big result still waiting was put
        self._writer: threading.Thread | None = None
        self._present_script = r.register_script(PRESENT_EACH)
        self._release_script = r.register_script(RELEASE)

    # -- local memory ---------------------------------------------------------------------------
    def _remember(self, key: str, outputs: Any, size: int | None = None) -> None:
        size = codec.nbytes(outputs) if size is None else size
        if key in self._local:
            self._local_bytes -= self._local.pop(key)[1]
        self._local[key] = (outputs, size)
        self._local_bytes += size
        evicted: list[str] = []
        while self._local_bytes > self.max_bytes and len(self._local) > 1:
            old, (gone, s) = self._local.popitem(last=False)
            self._local_bytes -= s
            if not codec.serializable(gone):
                evicted.append(old)
        if evicted:
            self._release(evicted)

    def _release(self, cache_keys: list[str]) -> None:
        """Models evicted from this worker's memory budget: their records no longer name this worker
        (their consumers will load them again, wherever), and ComfyUI frees what it loaded for them."""
        for key in cache_keys:
            self._release_script(keys=[keys.result(key)], args=[LOCAL_MARK + self.worker_name.encode()])
        self.r.hdel(keys.worker_models(self.worker_name), *cache_keys)
        mm = sys.modules.get("comfy.model_management")
        if mm is not None and hasattr(mm, "cleanup_models_gc"):
            mm.cleanup_models_gc()
            mm.soft_empty_cache()
        log.warning("evicted %d resident models over the %d MiB budget", len(cache_keys), self.max_bytes >> 20)

    def local(self, key: str) -> Any | None:
        hit = self._local.get(key)
        if hit is None:
            with self._lock:
                pending = self._pending.get(key)
            return pending[0] if pending is not None else None
        self._local.move_to_end(key)
        return hit[0]

    # -- writing, behind the run ----------------------------------------------------------------
    def put(self, key: str, outputs: list[list[Any]], ui: Any) -> Stored:
        """Keep outputs here and queue their upload (with ui)."""
        size = codec.nbytes(outputs)
        self._remember(key, outputs, size)
        local_only = not codec.serializable(outputs)
        if local_only:  # a resident model: listed in this worker's heartbeat and /system_stats
            objects = [type(v).__name__ for out in outputs for v in out]
            self.r.hset(keys.worker_models(self.worker_name), key, json.dumps({"objects": objects, "bytes": size}))
        with self._lock:
            self._pending[key] = (outputs, ui, local_only)
            if size >= BIG_RESULT and self._big_since is None:
                self._big_since = time.monotonic()
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(target=self._write_loop, name="nodefarm-results", daemon=True)
                self._writer.start()
            self._lock.notify_all()
        return Stored(local_only, size)

    def flush(self, timeout: float | None = FLUSH_TIMEOUT_S) -> bool:
        """Wait until every queued upload is written (None: for ever). False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while self._pending:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._lock.wait(left)
        return True

    def _write_loop(self) -> None:
        while True:
            with self._lock:
                while not self._pending:
                    self._lock.wait()
                self._lock.wait(UPLOAD_BATCH_S)  # let a few more results join this round trip
                if self._big_since is not None:
                    self._lock.wait(max(0.0, self._big_since + BIG_UPLOAD_DELAY_S - time.monotonic()))
                    self._big_since = None
                batch = list(self._pending.items())
            self._upload(batch)
            with self._lock:
                for key, entry in batch:
                    if self._pending.get(key) is entry:
                        del self._pending[key]
                self._lock.notify_all()
            del batch  # drop the last references to the results now, not while the next node starts

    def _upload(self, batch: list[tuple[str, tuple[Any, Any, bool]]]) -> None:
        """One round trip for a batch; its encoded buffers are freed when this returns."""
        pipe = self.uploader.pipeline(transaction=False)
        for key, (outputs, ui, local_only) in batch:
            # ui first: whoever sees the result sees its ui
            if ui is not None:
                pipe.set(keys.result_ui(key), json.dumps(ui))
            pipe.set(keys.result(key), LOCAL_MARK + self.worker_name.encode() if local_only else codec.encode_buffer(outputs))
        for attempt in range(WRITE_RETRIES):
            try:
                pipe.execute()
                return
            except redis.RedisError as exc:
                log.warning("result upload failed (%s), attempt %d", exc, attempt + 1)
                time.sleep(0.2 * (attempt + 1))

    # -- reading --------------------------------------------------------------------------------
    def lookup(self, key: str) -> tuple[str | None, Any]:
        """Whether a result is stored under ``key`` (None: not; else its holder as in
        :meth:`present`), and its ui."""
        holder = self.present([key]).get(key)
        ui = self.r.get(keys.result_ui(key)) if holder is not None else None
        return holder, (json.loads(ui) if ui is not None else None)

    def exists(self, cache_keys: list[str]) -> set[str]:
        """Which of ``cache_keys`` have a stored result (one command, whatever their number)."""
        return set(self.present(cache_keys))

    def present(self, cache_keys: list[str]) -> dict[str, str]:
        """The stored ones of ``cache_keys``, each with the worker whose memory alone holds it (a
        MODEL, a CLIP: what cannot be serialized), or "" when any worker can read it."""
        if not cache_keys:
            return {}
        found = self._present_script(keys=[keys.result(k) for k in cache_keys])
        return {k: (v.decode() if isinstance(v, bytes) else "") for k, v in zip(cache_keys, found, strict=True) if v}

    def get_many(
        self,
        wanted: Mapping[str, str],
        producers: Mapping[str, str] | None = None,
        alive: Callable[[str], bool] | None = None,
    ) -> dict[str, list[list[Any]]]:
        """node_id -> cache key in; node_id -> outputs out. Raises ResultLost naming missing nodes.

        ``producers``: node -> the worker that computed it this run; a result missing from Redis
        while that worker is ``alive`` is an upload in flight, waited for.
        """
        found: dict[str, list[list[Any]]] = {}
        missing: dict[str, str] = {}
        for nid, key in wanted.items():
            hit = self.local(key)
            if hit is not None:
                found[nid] = hit
            else:
                missing[nid] = key
        deadline = time.monotonic() + self.upload_wait_s
        polls = iter(WAIT_POLL_S)
        while missing:
            blobs = self.r.mget([keys.result(k) for k in missing.values()])
            lost: list[str] = []
            for (nid, key), blob in zip(list(missing.items()), blobs, strict=True):
                if blob is None or blob[:1] == LOCAL_MARK:
                    if blob is None and self._uploading(nid, producers, alive) and time.monotonic() < deadline:
                        continue
                    lost.append(nid)
                    del missing[nid]
                    continue
                outputs = codec.decode(blob)
                self._remember(key, outputs)
                found[nid] = outputs
                del missing[nid]
            if lost:
                raise ResultLost(lost)
            if missing:
                time.sleep(next(polls, WAIT_POLL_S[-1]))
        return found

    def _uploading(self, nid: str, producers: Mapping[str, str] | None, alive: Callable[[str], bool] | None) -> bool:
        producer = (producers or {}).get(nid)
        return bool(producer) and producer != self.worker_name and (alive is None or alive(producer))  # type: ignore[arg-type]

    def get_ui(self, cache_keys: list[str]) -> dict[str, Any]:
        if not cache_keys:
            return {}
        raw = self.r.mget([keys.result_ui(k) for k in cache_keys])
        return {k: json.loads(v) for k, v in zip(cache_keys, raw, strict=True) if v is not None}

    def forget(self, cache_keys: list[str]) -> None:
        self.flush()
        for k in cache_keys:
            hit = self._local.pop(k, None)
            if hit:
                self._local_bytes -= hit[1]
        if cache_keys:
            self.r.unlink(*[keys.result(k) for k in cache_keys], *[keys.result_ui(k) for k in cache_keys])


# a result store that restarts (or fails over) is waited for, about this long, command by command:
# every result it held can be computed again from its recipe, so an outage must not fail a run
OUTAGE_RETRIES = 12  # backoff 0.05 s doubling to 4 s: about 30 s in all


def outage_retry() -> dict[str, Any]:
    """redis-py client options that retry a command across a connection loss (with reconnect)."""
    from redis.backoff import ExponentialBackoff
    from redis.retry import Retry

    return {"retry": Retry(ExponentialBackoff(cap=4.0, base=0.05), OUTAGE_RETRIES),
            "retry_on_error": [redis.ConnectionError, redis.TimeoutError]}


def connect(url: str, worker_name: str, max_bytes: int) -> ResultStore:
    """The result store on the result Redis at ``url``, as every farm process builds it."""
    return ResultStore(redis.Redis.from_url(url, **outage_retry()), worker_name, max_bytes, uploader=uploader(url))


def uploader(url: str) -> redis.Redis:
    """A client for uploads that sends big values as they are: redis-py's default (hiredis) command
    packer copies every argument into one buffer, 64 MB more per 64 MB result."""
    from redis.connection import Encoder, PythonRespSerializer

    encode = Encoder("utf-8", "strict", False).encode
    return redis.Redis.from_url(url, command_packer=PythonRespSerializer(6000, encode), **outage_retry())
