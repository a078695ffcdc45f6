"""Runs against Redis: enqueue, admit, advance (one transaction per stimulus), finish, cancel.

The run advances from the workers: whichever process applies the last stimulus writes history and
admits the next queued runs, so the API can restart mid-run without stalling anything.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

import redis

from nodes import schema
from worker import events, keys, signature, state
from worker.farm import Farm
from worker.graph import NodeFacts, links

log = logging.getLogger("nodefarm.runs")

SENSITIVE_EXTRA_DATA_KEYS = ("auth_token_comfy_org", "api_key_comfy_org")
MAXIMUM_HISTORY_SIZE = 10000
NODE_TASK = "nf.node"


def now_ms() -> int:
    return int(time.time() * 1000)


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


# ---- queue ---------------------------------------------------------------------------------------


def next_number(farm: Farm) -> int:
    """ComfyUI's PromptServer.number: incremented on every POST /prompt without a number."""
    return int(farm.r.incr(keys.NUMBER)) - 1


def queue_remaining(r: redis.Redis) -> int:
    pipe = r.pipeline(transaction=False)
    pipe.zcard(keys.QUEUE)
    pipe.zcard(keys.RUNNING)
    pending, running = pipe.execute()
    return int(pending) + int(running)


def emit_status(farm: Farm) -> None:
    pipe = farm.r.pipeline(transaction=False)
    events.add(pipe, None, None, "status", events.status_data(queue_remaining(farm.r)))
    pipe.execute()


def enqueue(
    farm: Farm,
    pid: str,
    number: float,
    prompt: dict,
    extra_data: dict,
    outputs: list[str],
    deferred: dict[str, list[dict]] | None = None,
) -> None:
    """Queue a validated run. ``deferred``: nodes whose VALIDATE_INPUTS must run again on the worker."""
    item = [number, pid, prompt, extra_data, outputs]
    pipe = farm.r.pipeline()
    pipe.set(keys.run_item(pid), json.dumps(item))
    if deferred:
        pipe.set(keys.run_deferred(pid), json.dumps(deferred))
    pipe.zadd(keys.QUEUE, {pid: number})
    pipe.execute()
    emit_status(farm)
    admit_next(farm)


def load_item(r: redis.Redis, pid: str) -> list | None:
    raw = r.get(keys.run_item(pid))
    return json.loads(raw) if raw else None


def queue_items(farm: Farm) -> tuple[list[list], list[list]]:
    """(running, pending) queue items, ComfyUI's 5-element arrays."""
    pipe = farm.r.pipeline(transaction=False)
    pipe.zrange(keys.RUNNING, 0, -1)
    pipe.zrange(keys.QUEUE, 0, -1)
    running_ids, pending_ids = pipe.execute()
    ids = [_s(p) for p in running_ids] + [_s(p) for p in pending_ids]
    raw = farm.r.mget([keys.run_item(p) for p in ids]) if ids else []
    items = [json.loads(x) for x in raw if x]
    n = len(running_ids)
    return items[:n], items[n:]


def delete_pending(farm: Farm, pids: list[str]) -> None:
    for pid in pids:
        if farm.r.zrem(keys.QUEUE, pid):
            farm.r.delete(keys.run_item(pid))
    emit_status(farm)


def clear_pending(farm: Farm) -> None:
    pending = [_s(p) for p in farm.r.zrange(keys.QUEUE, 0, -1)]
    delete_pending(farm, pending)


# ---- admission ---------------------------------------------------------------------------------


def admit_next(farm: Farm) -> list[str]:
    """Move runs from the queue to running while fewer than max_active_runs run. Returns their ids."""
    admitted: list[str] = []
    while True:
        pid = _pop_admittable(farm)
        if pid is None:
            break
        admitted.append(pid)
        emit_status(farm)
        try:
            start_run(farm, pid)
        except Exception as exc:  # an admission that fails must fail its run, not the farm
            log.exception("admission of %s failed", pid)
            _fail_unstarted(farm, pid, exc)
    return admitted


def _pop_admittable(farm: Farm) -> str | None:
    with farm.r.pipeline() as pipe:
        while True:
            try:
                pipe.watch(keys.QUEUE, keys.RUNNING)
                if int(pipe.zcard(keys.RUNNING)) >= farm.settings.max_active_runs:
                    return None
                head = pipe.zrange(keys.QUEUE, 0, 0, withscores=True)
                if not head:
                    return None
                pid, number = _s(head[0][0]), head[0][1]
                pipe.multi()
                pipe.zrem(keys.QUEUE, pid)
                pipe.zadd(keys.RUNNING, {pid: number})
                pipe.execute()
                return pid
            except redis.WatchError:
                continue


def node_facts(cls: type | None) -> NodeFacts:
    if cls is None:
        return NodeFacts()
    lazy: set[str] = set()
    raw: set[str] = set()
    types = schema.input_types(cls)
    for section in ("required", "optional"):
        for name, spec in types.get(section, {}).items():
            opts = spec[1] if isinstance(spec, (list, tuple)) and len(spec) > 1 and isinstance(spec[1], dict) else {}
            if opts.get("lazy"):
                lazy.add(name)
            if opts.get("rawLink"):
                raw.add(name)
    return NodeFacts(frozenset(lazy), frozenset(raw), schema.is_output_node(cls))


def graph_keys(farm: Farm, pid: str, graph: dict[str, dict], extra_data: dict, known: dict[str, str] | None = None) -> dict[str, str]:
    classes = {n["class_type"]: farm.registry.classes[n["class_type"]] for n in graph.values() if n.get("class_type") in farm.registry.classes}
    changed = {
        nid: signature.is_changed(classes[n["class_type"]], n, nid, extra_data)
        for nid, n in graph.items()
        if n.get("class_type") in classes
    }
    return signature.compute_keys(graph, classes, changed, farm.cache.salt(pid), pid, known)


def start_run(farm: Farm, pid: str) -> None:
    item = load_item(farm.r, pid)
    if item is None:
        farm.r.zrem(keys.RUNNING, pid)
        return
    _number, _pid, prompt, extra_data, outputs = item
    graph = {
        nid: {"class_type": n.get("class_type"), "inputs": n.get("inputs", {}), **({"is_changed": n["is_changed"]} if "is_changed" in n else {})}
        for nid, n in prompt.items()
    }
    facts = {nid: node_facts(farm.registry.get(n["class_type"])) for nid, n in graph.items()}
    run_keys = graph_keys(farm, pid, graph, extra_data)
    active = _active_keys(farm, exclude=pid)
    cached_keys = farm.cache.admit(list(run_keys.values()), active)
    cached_nodes = [nid for nid, k in run_keys.items() if k in cached_keys]
    ui_by_key = farm.store.get_ui([run_keys[n] for n in cached_nodes])
    cached_ui = {n: ui_by_key.get(run_keys[n]) for n in cached_nodes}
    st = state.new_state(pid, extra_data.get("client_id"), graph, facts, run_keys, outputs)
    step = state.admit(st, cached_keys, cached_ui, now_ms())
    pipe = farm.r.pipeline()
    save_state(pipe, pid, st, None)
    _write_step(farm, pipe, st, step, item)
    pipe.execute()
    _after_step(farm, st, step)


def _active_keys(farm: Farm, exclude: str) -> set[str]:
    if farm.cache.mode != "classic":
        return set()
    out: set[str] = set()
    for p in farm.r.zrange(keys.RUNNING, 0, -1):
        pid = _s(p)
        if pid == exclude:
            continue
        st = load_state(farm, pid)
        if st:
            out.update(st["keys"].values())
    return out


def _fail_unstarted(farm: Farm, pid: str, exc: Exception) -> None:
    item = load_item(farm.r, pid)
    if item is None:
        farm.r.zrem(keys.RUNNING, pid)
        return
    st = state.new_state(pid, item[3].get("client_id"), {}, {}, {}, item[4])
    step = state.node_failed(
        st,
        "",
        {
            "exception_message": f"{exc}\n",
            "exception_type": type(exc).__name__,
            "traceback": [],
            "current_inputs": {},
        },
        now_ms(),
    )
    pipe = farm.r.pipeline()
    save_state(pipe, pid, st, None)
    _write_step(farm, pipe, st, step, item)
    pipe.execute()
    _after_step(farm, st, step)


# ---- advancing -----------------------------------------------------------------------------------


STATIC_PARTS = ("graph", "keys", "facts", "eph")
STATIC_CACHE_SIZE = 32


def _static_version(st: dict) -> str:
    # static parts only ever grow (expansion adds nodes), so their sizes version them
    return f"{len(st['graph'])}.{len(st['keys'])}.{len(st['eph'])}.{len(st['facts'])}"


def encode_state(st: dict, known_version: str | None) -> tuple[str, str | None]:
    """The state as (dynamic JSON, static JSON or None when the stored static part is current).

    A node's step rewrites only the small dynamic part; graph, keys and facts are written once at
    admission and again only when an expansion adds nodes.
    """
    version = _static_version(st)
    dynamic = {k: v for k, v in st.items() if k not in STATIC_PARTS}
    dynamic["sv"] = version
    static = json.dumps({k: st[k] for k in STATIC_PARTS}) if version != known_version else None
    return json.dumps(dynamic), static


def decode_state(farm: Farm, pid: str, raw: bytes | str) -> dict:
    st = json.loads(raw)
    version = st.get("sv", "")
    static = farm.static_cache.get((pid, version))
    if static is None:
        blob = farm.r.get(keys.run_static(pid))
        static = json.loads(blob) if blob else {k: {} for k in STATIC_PARTS}
        if len(farm.static_cache) >= STATIC_CACHE_SIZE:
            farm.static_cache.pop(next(iter(farm.static_cache)))
        farm.static_cache[(pid, version)] = static
    st.update(static)
    return st


def save_state(pipe: Any, pid: str, st: dict, known_version: str | None) -> None:
    dynamic, static = encode_state(st, known_version)
    pipe.set(keys.run_state(pid), dynamic)
    if static is not None:
        pipe.set(keys.run_static(pid), static)


def load_state(farm: Farm, pid: str) -> dict | None:
    raw = farm.r.get(keys.run_state(pid))
    return decode_state(farm, pid, raw) if raw else None


def transact(farm: Farm, pid: str, stimulus: Callable[[dict], state.Step]) -> state.Step | None:
    """Apply one stimulus to the run's state atomically (optimistic WATCH/MULTI), then act on it."""
    key = keys.run_state(pid)
    with farm.r.pipeline() as pipe:
        while True:
            try:
                pipe.watch(key)
                raw = pipe.get(key)
                if raw is None:
                    return None
                st = decode_state(farm, pid, raw)
                version = st.get("sv")
                step = stimulus(st)
                item = load_item(pipe, pid) if step.finish else None  # type: ignore[arg-type]
                pipe.multi()
                save_state(pipe, pid, st, version)
                _write_step(farm, pipe, st, step, item)
                pipe.execute()
                break
            except redis.WatchError:
                continue
    _after_step(farm, st, step)
    return step


def _write_step(farm: Farm, pipe: Any, st: dict, step: state.Step, item: list | None) -> None:
    """Queue the step's events (and, when the run ends, its history) on the transaction."""
    pid, client = st["pid"], st.get("client_id")
    for event, data in step.events:
        events.add(pipe, pid, client, event, data)
    if step.finish and item is not None:
        entry = history_entry(st, item, step.finish)
        pipe.set(keys.history_entry(pid), json.dumps(entry))
        pipe.zadd(keys.HISTORY, {pid: time.time()})
        pipe.zrem(keys.RUNNING, pid)
        pipe.delete(keys.run_cancel(pid))
        pipe.expire(keys.run_state(pid), 3600)
        pipe.expire(keys.run_static(pid), 3600)
        remaining = max(0, queue_remaining(farm.r) - 1)
        events.add(pipe, pid, client, "status", events.status_data(remaining))
        events.add(pipe, pid, client, "executing", {"node": None, "prompt_id": pid})


def _after_step(farm: Farm, st: dict, step: state.Step) -> None:
    if step.dispatch:
        dispatch(farm, st, step.dispatch)
    if step.finish:
        farm.cache.finished(list(st["keys"].values()))
        _trim_history(farm)
        admit_next(farm)


def queue_for(farm: Farm, st: dict, nid: str) -> str:
    """Route a node: to the worker holding an input only in memory, else to the shared queue."""
    loc = st.get("loc") or {}
    for _name, src, _socket in links(st["graph"][nid]):
        if src in loc:
            return keys.worker_queue(loc[src])
    return keys.SHARED_QUEUE


def dispatch(farm: Farm, st: dict, nids: list[str]) -> None:
    for nid in nids:
        seq = st.get("disp", {}).get(nid, 1)
        farm.celery.send_task(NODE_TASK, args=[st["pid"], nid, seq], queue=queue_for(farm, st, nid))


def history_entry(st: dict, item: list, finish: str) -> dict:
    number, pid, prompt, extra_data, outputs = item
    extra = {k: v for k, v in extra_data.items() if k not in SENSITIVE_EXTRA_DATA_KEYS}
    ui = {nid: u for nid, u in st["ui"].items() if u}
    meta = {
        nid: {
            "node_id": nid,
            "display_node": state.display_id(st, nid),
            "parent_node": state.parent_id(st, nid),
            "real_node_id": state.real_id(st, nid),
        }
        for nid in ui
    }
    ok = finish == "success"
    return {
        "prompt": [number, pid, prompt, extra, outputs],
        "outputs": ui,
        "status": {"status_str": "success" if ok else "error", "completed": ok, "messages": st["msgs"]},
        "meta": meta,
    }


def _trim_history(farm: Farm) -> None:
    excess = int(farm.r.zcard(keys.HISTORY)) - MAXIMUM_HISTORY_SIZE
    if excess > 0:
        old = [_s(p) for p in farm.r.zrange(keys.HISTORY, 0, excess - 1)]
        pipe = farm.r.pipeline()
        pipe.zrem(keys.HISTORY, *old)
        pipe.delete(*[keys.history_entry(p) for p in old])
        pipe.execute()


# ---- interrupt -----------------------------------------------------------------------------------


def interrupt(farm: Farm, pid: str | None) -> list[str]:
    """Interrupt running runs (one, or all when ``pid`` is None; a pid not running is a no-op).

    The flag reaches the worker executing a node of the run (its ProgressBar and
    throw_exception_if_processing_interrupted raise there); a run with no node executing right now
    ends at once, so its queued nodes never start.
    """
    running = [_s(p) for p in farm.r.zrange(keys.RUNNING, 0, -1)]
    targets = running if pid is None else [p for p in running if p == pid]
    busy = executing_runs(farm.r)
    for p in targets:
        farm.r.set(keys.run_cancel(p), "1", ex=3600)
        if p not in busy:
            transact(farm, p, lambda s: state.interrupted(s, None, now_ms()))
    return targets


def executing_runs(r: redis.Redis) -> set[str]:
    """Runs that some live worker is executing a node of right now."""
    out: set[str] = set()
    for name in r.zrange(keys.WORKERS, 0, -1):
        for field in r.hkeys(keys.worker_running(_s(name))):
            out.add(_s(field).split(" ", 1)[0])
    return out


def is_cancelled(r: redis.Redis, pid: str) -> bool:
    return bool(r.exists(keys.run_cancel(pid)))
