"""The result store: node outputs by content hash, in this worker's memory and in the result Redis.

Every output is kept in the producing worker's in-memory LRU. Serializable outputs are also written
to the result Redis (``nf:res:<key>``, codec bytes); others leave a marker ``b"L" + worker name`` so
consumers are routed to the worker that holds them. UI dicts go to ``nf:ui:<key>`` as JSON.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

import redis

from worker import codec, keys
from worker.errors import NotSerializable, ResultLost

LOCAL_MARK = b"L"


class ResultStore:
    def __init__(self, r: redis.Redis, worker_name: str, max_bytes: int) -> None:
        self.r = r
        self.worker_name = worker_name
        self.max_bytes = max_bytes
        self._local: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self._local_bytes = 0

    # -- local memory ---------------------------------------------------------------------------
    def _remember(self, key: str, outputs: Any) -> None:
        size = codec.nbytes(outputs)
        if key in self._local:
            self._local_bytes -= self._local.pop(key)[1]
        self._local[key] = (outputs, size)
        self._local_bytes += size
        while self._local_bytes > self.max_bytes and len(self._local) > 1:
            _, (_, s) = self._local.popitem(last=False)
            self._local_bytes -= s

    def local(self, key: str) -> Any | None:
        hit = self._local.get(key)
        if hit is None:
            return None
        self._local.move_to_end(key)
        return hit[0]

    # -- shared ---------------------------------------------------------------------------------
    def put(self, key: str, outputs: list[list[Any]], ui: Any) -> bool:
        """Store outputs (and ui). Returns True when only this worker's memory holds them."""
        self._remember(key, outputs)
        local_only = False
        try:
            blob = codec.encode(outputs)
        except NotSerializable:
            blob = LOCAL_MARK + self.worker_name.encode()
            local_only = True
        pipe = self.r.pipeline(transaction=False)
        pipe.set(keys.result(key), blob)
        if ui is not None:
            pipe.set(keys.result_ui(key), json.dumps(ui))
        pipe.execute()
        return local_only

    def lookup(self, key: str) -> tuple[bool, Any]:
        """Whether a result is stored under ``key``, and its ui (one round trip)."""
        pipe = self.r.pipeline(transaction=False)
        pipe.exists(keys.result(key))
        pipe.get(keys.result_ui(key))
        found, ui = pipe.execute()
        return bool(found), (json.loads(ui) if ui is not None else None)

    def exists(self, cache_keys: list[str]) -> set[str]:
        if not cache_keys:
            return set()
        pipe = self.r.pipeline(transaction=False)
        for k in cache_keys:
            pipe.exists(keys.result(k))
        return {k for k, n in zip(cache_keys, pipe.execute(), strict=True) if n}

    def get_many(self, wanted: dict[str, str]) -> dict[str, list[list[Any]]]:
        """node_id -> cache key in; node_id -> outputs out. Raises ResultLost naming missing nodes."""
        found: dict[str, list[list[Any]]] = {}
        missing: dict[str, str] = {}
        for nid, key in wanted.items():
            hit = self.local(key)
            if hit is not None:
                found[nid] = hit
            else:
                missing[nid] = key
        if missing:
            blobs = self.r.mget([keys.result(k) for k in missing.values()])
            lost: list[str] = []
            for (nid, key), blob in zip(missing.items(), blobs, strict=True):
                if blob is None or blob[:1] == LOCAL_MARK:
                    lost.append(nid)
                    continue
                outputs = codec.decode(blob)
                self._remember(key, outputs)
                found[nid] = outputs
            if lost:
                raise ResultLost(lost)
        return found

    def get_ui(self, cache_keys: list[str]) -> dict[str, Any]:
        if not cache_keys:
            return {}
        raw = self.r.mget([keys.result_ui(k) for k in cache_keys])
        return {k: json.loads(v) for k, v in zip(cache_keys, raw, strict=True) if v is not None}

    def forget(self, cache_keys: list[str]) -> None:
        for k in cache_keys:
            hit = self._local.pop(k, None)
            if hit:
                self._local_bytes -= hit[1]
        if cache_keys:
            self.r.unlink(*[keys.result(k) for k in cache_keys], *[keys.result_ui(k) for k in cache_keys])
