"""nodefarm's Redis Functions (``functions.lua``): loading them, and calling them from Python.

The library is loaded (``FUNCTION LOAD REPLACE``) by every process at boot; the key layout and the
limits it uses are written into its source from :mod:`worker.keys` and :mod:`worker.events`, so
Python and Lua cannot disagree on them.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from importlib import resources
from typing import Any

import redis

from nodes.core.state import BIG_RESULT
from worker import events, keys

log = logging.getLogger("nodefarm.functions")

MARKER = "--@KEYS@"  # the line of functions.lua that the key layout and limits replace
STATE_TTL_S = 3600  # a finished run's state lingers this long (late duplicate tasks find it ended)
EVENTS_TTL_S = 86400  # a finished run's event stream stays replayable this long
COMPUTED_TTL_S = 3600  # how long nf:computed remembers that a key was computed (admission checks the store itself)


def library() -> tuple[str, str]:
    """The library's Lua source with the key layout and limits filled in, and its version."""
    template = resources.files("worker").joinpath("functions.lua").read_text(encoding="utf-8")
    names = list(keys.RUN_STATE_PARTS) + list(keys.FUNCTION_EXTRA_KEYS)
    table = ", ".join(f"{name} = {i}" for i, name in enumerate(names, start=1))
    header = "\n".join([
        f"local K = {{{table}}}",
        f"local STATE_PARTS = {len(keys.RUN_STATE_PARTS)}",
        f"local GLOBAL_MAXLEN = {events.GLOBAL_MAXLEN}",
        f"local RUN_MAXLEN = {events.RUN_MAXLEN}",
        f"local STATE_TTL = {STATE_TTL_S}",
        f"local EVENTS_TTL = {EVENTS_TTL_S}",
        f"local COMPUTED_TTL = {COMPUTED_TTL_S}",
        f"local MESSAGE_SEQ = '{keys.MESSAGE_SEQ}'",
        f"local METRICS = '{keys.METRICS}'",
        f"local BIG_RESULT = {BIG_RESULT}",
        f"local NODE_TASK = '{keys.NODE_TASK}'",
        f"local SHARED_QUEUE = '{keys.SHARED_QUEUE}'",
        f"local WORKER_QUEUE_PREFIX = '{keys.WORKER_QUEUE_PREFIX}'",
    ])
    version = hashlib.sha256(template.replace(MARKER, header).encode()).hexdigest()[:16]
    return template.replace(MARKER, f"local VERSION = '{version}'\n{header}"), version


def load(r: redis.Redis) -> None:
    """Load (or replace) the library on this Redis, unless the same version is there already."""
    code, version = library()
    try:
        if _s(r.fcall_ro("nf_version", 0)) == version:
            return
    except redis.ResponseError:
        pass
    r.function_load(code, replace=True)


def lost(exc: BaseException) -> bool:
    """Whether a Redis error says the library is not there (a Redis restarted empty, or flushed)."""
    return isinstance(exc, redis.ResponseError) and str(exc).startswith("Function not found")


def ensure_loaded(r: redis.Redis) -> bool:
    """Load the library again if this Redis lost it (never replacing another version: a rolling
    upgrade's processes would take turns). Whether it had to."""
    try:
        r.fcall_ro("nf_version", 0)
        return False
    except redis.ResponseError as exc:
        if not lost(exc):
            return False  # not this function's business
    r.function_load(library()[0], replace=True)
    log.warning("the farm's Redis had lost nodefarm's functions (restarted empty?): loaded them again")
    return True


def _run(client: Any, name: str, pid: str, worker: str, *args: Any) -> Any:
    """Call (or queue, on a pipeline) run function ``name`` with the run's keys."""
    run_keys = keys.function_keys(pid, worker)
    return client.fcall(name, len(run_keys), *run_keys, *args)


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


@dataclass
class Started:
    """What ``nf_start`` tells the worker about the node it is about to run."""

    spec: dict[str, Any]
    resolve: dict[str, Any] | None
    client_id: str | None
    attempts: int
    cancelled: bool
    sources: dict[str, tuple[str, str, str]]  # source node -> (cache key, status, worker that computed it or "")
    computed_elsewhere: bool  # a node (of another run) computed this key lately: look in the store first
    pending: int  # nodes of the run not finished yet (1: this is its last)


def start(r: Any, pid: str, nid: str, seq: int, worker: str, max_attempts: int) -> Started | None:
    """Begin executing a node's live dispatch; None when the task is a duplicate or stale."""
    payload = json.dumps([pid, nid, seq])
    got = _run(r, "nf_start", pid, worker, pid, nid, str(seq), payload, str(max_attempts))
    if not got or int(got[0]) != 1:
        return None
    _, spec, resolve, client, attempts, cancelled, flat, computed, pending = got
    sources = {_s(flat[i]): (_s(flat[i + 1]), _s(flat[i + 2]), _s(flat[i + 3])) for i in range(0, len(flat), 4)}
    return Started(
        spec=json.loads(spec),
        resolve=json.loads(resolve) if resolve else None,
        client_id=_s(client) or None,
        attempts=int(attempts),
        cancelled=bool(int(cancelled)),
        sources=sources,
        computed_elsewhere=bool(int(computed)),
        pending=int(pending),
    )


@dataclass
class DoneResult:
    applied: bool
    finished: bool
    dispatch: list[tuple[str, int, str]]  # (node, seq, holder worker or "")


def done(
    r: Any,
    pid: str,
    nid: str,
    seq: int,
    worker: str,
    now_ms: int,
    *,
    ran: bool,
    holder: str | None,
    ui: Any,
    nbytes: int = 0,
    alive_after: float = 0.0,
) -> DoneResult:
    """Apply ``Done`` to the run in one call (the mirror of ``nodes.core.state.node_done``).

    ``alive_after``: a worker whose last heartbeat (unix s) is older counts as dead for routing."""
    args = [pid, nid, str(seq), str(now_ms), "1" if ran else "0", holder or "", events.encode_data(ui) if ui else "", worker,
            str(nbytes), repr(float(alive_after))]
    got = _run(r, "nf_done", pid, worker, *args)
    if not got or int(got[0]) != 1:
        return DoneResult(False, False, [])
    return DoneResult(True, bool(int(got[1])), [(_s(n), int(s), _s(h)) for n, s, h in got[2]])


def publish_in(pipe: Any, pid: str, ready: list[tuple[str, int, str]]) -> None:
    """Queue ``nf_publish`` on a transaction: the node tasks ``(node, seq, holder worker or "")``."""
    if not ready:
        return
    flat = [str(x) for item in ready for x in item]
    _run(pipe, "nf_publish", pid, "", pid, str(len(ready)), *flat)


def finish_in(pipe: Any, pid: str, outcome: str, now_ms: int) -> None:
    """Queue ``nf_finish`` on a transaction: history entry, closing events, queue bookkeeping."""
    _run(pipe, "nf_finish", pid, "", pid, outcome, str(now_ms))
