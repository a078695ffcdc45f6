"""A run's state in the state Redis: one hash per field of :class:`nodes.core.state.RunState`.

Hashes are keyed by node id (``worker/keys.py`` RUN_STATE_PARTS), so a step writes only the
fields it changed. The hot step (a node done) runs as the Redis Function ``nf_done``; the other
steps (admission, lazy inputs, expansion, failure, interrupt, lost inputs) load the state here,
apply the pure state machine and write the difference back in one optimistic transaction
(:func:`transact`) together with the step's events and, when the run ends, ``nf_finish``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import redis

from nodes.core.graph import walk_links
from nodes.core.state import NodeSpec, RunState, Step
from worker import dispatch, events, functions, keys

# how each hash stores its values: raw strings, integers, or JSON (meta: field by field)
_RAW = ("key", "status", "keyq", "holders", "made", "near")
_INT = ("seq", "attempts")
_META = {"client": "raw", "end": "raw", "pending": "int", "ver": "int", "outputs": "json"}
_JSON = json.JSONEncoder(separators=(",", ":"))


def _kind(part: str, field: str) -> str:
    if part == "meta":
        return _META[field]
    return "raw" if part in _RAW else "int" if part in _INT else "json"


def _encode(part: str, field: str, value: Any) -> str:
    kind = _kind(part, field)
    return _JSON.encode(value) if kind == "json" else str(value)


def _decode(part: str, field: str, raw: bytes) -> Any:
    kind, text = _kind(part, field), raw.decode()
    return json.loads(text) if kind == "json" else int(text) if kind == "int" else text


def _parts(state: RunState, only: Collection[str] | None = None) -> dict[str, dict[str, Any]]:
    """The state as the values of its hashes (meta included); ``only``: just these hashes."""
    nodes = state.nodes
    build: dict[str, Callable[[], dict[str, Any]]] = {
        "meta": lambda: {"client": state.client_id or "", "end": state.end or "", "pending": state.pending(),
                         "outputs": state.outputs},
        "spec": lambda: {nid: spec.to_json() for nid, spec in nodes.items()},
        "key": lambda: {nid: spec.key for nid, spec in nodes.items()},
        "srcs": lambda: {nid: srcs for nid, spec in nodes.items() if (srcs := spec.sources())},
        "disp": lambda: {nid: [spec.display or nid, spec.parent, spec.real or nid] for nid, spec in nodes.items() if spec.parent},
        "status": lambda: dict(state.status),
        "seq": lambda: dict(state.seq),
        "deps": lambda: {nid: list(d) for nid, d in state.deps.items() if d},
        "waiters": lambda: {nid: list(w) for nid, w in state.waiters.items() if w},
        "keyq": lambda: dict(state.keyq),
        "holders": lambda: dict(state.holders),
        "made": lambda: dict(state.made),
        "near": lambda: dict(state.near),
        "ui": lambda: {nid: ui for nid, ui in state.ui.items() if ui},
        "resolve": lambda: {nid: {"result": r, "sources": list(dict.fromkeys(link[0] for link in walk_links(r)))}
                            for nid, r in state.resolve.items()},
    }
    return {part: make() for part, make in build.items() if only is None or part in only}


HASHES = ("spec", "key", "srcs", "disp", "status", "seq", "deps", "waiters", "keyq", "holders", "made", "near", "ui", "resolve")


@dataclass
class Loaded:
    """A state as read, with what it was read from (to write back only the difference)."""

    state: RunState
    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    executed: int = 0
    msgs: int = 0


def load(r: redis.Redis, pid: str) -> Loaded | None:
    """Read a whole run state (one round trip). None when the run has no state."""
    parts = ("meta", *HASHES)
    pipe = r.pipeline(transaction=False)
    for part in parts:
        pipe.hgetall(keys.run_part(pid, part))
    pipe.lrange(keys.run_part(pid, "executed"), 0, -1)
    pipe.lrange(keys.run_part(pid, "msgs"), 0, -1)
    *hashes, executed_raw, msgs_raw = pipe.execute()
    values = {part: {f.decode(): _decode(part, f.decode(), v) for f, v in raw.items()}
              for part, raw in zip(parts, hashes, strict=True)}
    meta = values["meta"]
    if not meta:
        return None
    meta.pop("ver", None)  # bumped by every step, never diffed
    executed = [x.decode() for x in executed_raw]
    msgs = [json.loads(x) for x in msgs_raw]
    st = RunState(
        pid=pid,
        client_id=meta.get("client") or None,
        outputs=meta.get("outputs", []),
        nodes={nid: NodeSpec.from_json(spec) for nid, spec in values["spec"].items()},
        status=dict(values["status"]),
        seq=dict(values["seq"]),
        deps={nid: list(d) for nid, d in values["deps"].items()},
        waiters={nid: list(w) for nid, w in values["waiters"].items()},
        keyq=dict(values["keyq"]),
        holders=dict(values["holders"]),
        made=dict(values["made"]),
        near=dict(values["near"]),
        ui=dict(values["ui"]),
        resolve={nid: r["result"] for nid, r in values["resolve"].items()},
        executed=executed,
        msgs=msgs,
        end=meta.get("end") or None,
    )
    return Loaded(st, values, len(executed), len(msgs))


def write(pipe: Any, loaded: Loaded | None, state: RunState, only: Collection[str] | None = None) -> None:
    """Queue the writes that turn the stored state (``loaded``; None: nothing stored) into ``state``
    (``only``: just these hashes)."""
    pid = state.pid
    before = loaded.values if loaded is not None else {}
    for part, now in _parts(state, only).items():
        old = before.get(part, {})
        changed = {k: v for k, v in now.items() if k not in old or old[k] != v}
        gone = [k for k in old if k not in now]
        key = keys.run_part(pid, part)
        if changed:
            pipe.hset(key, mapping={k: _encode(part, k, v) for k, v in changed.items()})
        if gone:
            pipe.hdel(key, *gone)
    pipe.hincrby(keys.run_part(pid, "meta"), "ver", 1)
    executed = state.executed[loaded.executed:] if loaded is not None else state.executed
    if executed:
        pipe.rpush(keys.run_part(pid, "executed"), *executed)
    msgs = state.msgs[loaded.msgs:] if loaded is not None else state.msgs
    if msgs:
        pipe.rpush(keys.run_part(pid, "msgs"), *[_JSON.encode(m) for m in msgs])


def write_step(pipe: Any, state: RunState, step: Step, now_ms: int) -> None:
    """Queue a step's events, in order, its node tasks, and the end of the run when the step ended it."""
    for event, data in step.events:
        events.add(pipe, state.pid, state.client_id, event, data)
    dispatch.publish_in(pipe, state, step)
    if step.finish:
        functions.finish_in(pipe, state.pid, step.finish, now_ms)


def transact(r: redis.Redis, pid: str, stimulus: Callable[[RunState], Step], now_ms: int) -> tuple[RunState, Step] | None:
    """Apply one stimulus atomically: optimistic on the run's ``meta`` hash, which every step
    (this one and the Redis Functions) changes. None when the run has no state."""
    meta = keys.run_part(pid, "meta")
    with r.pipeline() as pipe:
        while True:
            try:
                pipe.watch(meta)
                loaded = load(r, pid)
                if loaded is None:
                    pipe.unwatch()
                    return None
                step = stimulus(loaded.state)
                pipe.multi()
                write(pipe, loaded, loaded.state)
                write_step(pipe, loaded.state, step, now_ms)
                pipe.execute()
                return loaded.state, step
            except redis.WatchError:
                continue


ENDED_AT_ADMISSION = ("meta", "ui")  # with the messages: what nf_finish reads


def create(pipe: Any, state: RunState, step: Step, now_ms: int) -> None:
    """Queue the writes of a newly admitted run: its whole state and its first step (a run that
    ended at admission, everything cached, stores only what its end needs)."""
    write(pipe, None, state, ENDED_AT_ADMISSION if step.finish else None)
    write_step(pipe, state, step, now_ms)


def messages(r: redis.Redis, pid: str, first: int | None = None) -> list[list[Any]]:
    """A run's history status messages so far (``first``: only that many)."""
    raw = r.lrange(keys.run_part(pid, "msgs"), 0, -1 if first is None else first - 1)
    return [json.loads(x) for x in raw]
