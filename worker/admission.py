"""Admission: moving runs from the queue to running, and starting them.

Up to ``max_active_runs`` runs execute at once. Starting a run computes every node's cache key
(:mod:`nodes.core.signature`, with each class's ``IS_CHANGED`` called on its constant inputs), asks
the cache policy which keys count as cached, applies ``admit`` to a new run state and writes it with
its first events in one transaction; then the ready nodes are dispatched. Whoever ends a run (a
worker, or the API for an idle run it interrupts) admits the next ones, so the API can restart
mid-run without stalling the queue.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import redis

from nodes import schema
from nodes.core.graph import NodeFacts, is_link
from nodes.core.inputs import unwrap
from nodes.core.item import QueueItem
from nodes.core.signature import compute_keys
from nodes.core.state import ErrorInfo, NodeSpec, RunState, Step, admit, node_failed
from worker import blocklist, functions, history, keys, metrics, prompt_queue, runstore, watchdog
from worker.execute import map_over_list
from worker.farm import Farm

log = logging.getLogger("nodefarm.admission")

KNOWN_ITEMS = 1000  # items an API process remembers between queueing and admitting them


def now_ms() -> int:
    return int(time.time() * 1000)


def admit_next(farm: Farm, known: dict[str, QueueItem] | None = None) -> list[str]:
    """Start queued runs while fewer than max_active_runs run. Returns their ids.

    ``known``: items this process queued (taken out of it as their runs start)."""
    admitted: list[str] = []
    while True:
        pid = prompt_queue.pop_admittable(farm.r, farm.settings.max_active_runs, farm.settings.max_runs_per_client)
        if pid is None:
            break
        admitted.append(pid)
        try:
            with schema.memoized():
                start_run(farm, pid, (known or {}).pop(pid, None))
        except Exception as exc:  # an admission that fails must fail its run, not the farm
            log.exception("admission of %s failed", pid)
            _fail_unstarted(farm, pid, exc)
    return admitted


class Admitter:
    """Admission in a background thread of the API process: ``POST /prompt`` answers as soon as the
    run is queued, and :meth:`kick` wakes this thread to start it. It also looks every ``tick_s``,
    so a run queued while no process admitted (an API that died right after a submit) still starts."""

    def __init__(self, farm: Farm, stop: threading.Event, tick_s: float = 1.0) -> None:
        self.farm = farm
        self.stop = stop
        self.tick_s = tick_s
        self.wake = threading.Event()
        self.items: dict[str, QueueItem] = {}  # items this process queued: admitted without reading them back

    def kick(self, item: QueueItem | None = None) -> None:
        if item is not None:
            self.items[item.prompt_id] = item
            while len(self.items) > KNOWN_ITEMS:  # runs another process admitted: forget the oldest
                self.items.pop(next(iter(self.items)))
        self.wake.set()

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self._loop, name="nodefarm-admission", daemon=True)
        thread.start()
        return thread

    def _loop(self) -> None:
        while not self.stop.is_set():
            self.wake.wait(self.tick_s)
            self.wake.clear()
            try:
                admit_next(self.farm, self.items)
                watchdog.maybe_sweep(self.farm.r, self.farm.settings)  # runs that cannot progress
            except Exception as exc:  # Redis away for a moment: the next tick tries again
                if functions.lost(exc):
                    self._reload()
                else:
                    log.exception("admission failed")

    def _reload(self) -> None:
        try:
            functions.ensure_loaded(self.farm.r)
        except redis.RedisError as exc:
            log.warning("loading the farm's functions again failed: %s", exc)


def run_ended(farm: Farm, pid: str) -> None:
    """After a run's last step: cache bookkeeping, history cap, and the next runs."""
    farm.cache.finished(pid)
    history.trim(farm.r, farm.settings.history_size)
    admit_next(farm)


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


def is_changed(cls: type, node: Mapping[str, Any], node_id: str) -> Any:
    """The node's IS_CHANGED value list (called on the class with constant inputs), or False.

    NaN when IS_CHANGED raised: the node's key is then unique to the run (never a cache hit).
    """
    if "is_changed" in node:
        return node["is_changed"]
    fn = getattr(cls, "IS_CHANGED", None)
    if fn is None:
        return False
    data: dict[str, list[Any]] = {}
    for name, value in node.get("inputs", {}).items():
        data[name] = [None] if is_link(value) else [unwrap(value)]
    for name, kind in schema.hidden_inputs(cls).items():
        data[name] = [node_id if kind == "UNIQUE_ID" else None]
    try:
        return map_over_list(data, fn, input_is_list=schema.input_is_list(cls), node_id=node_id, prompt_id="")
    except Exception:
        return float("nan")


def node_keys(farm: Farm, pid: str, graph: Mapping[str, Mapping[str, Any]], known: Mapping[str, str] | None = None) -> dict[str, str]:
    """Cache keys of ``graph``'s nodes; ``known``: keys of sources outside it (an expansion's parents)."""
    classes = {n["class_type"]: farm.registry.classes[n["class_type"]] for n in graph.values()
               if n.get("class_type") in farm.registry.classes}
    changed = {nid: is_changed(classes[n["class_type"]], n, nid) for nid, n in graph.items() if n.get("class_type") in classes}
    return compute_keys(graph, classes, changed, farm.cache.salt(pid), pid, known)


def prompt_graph(prompt: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    return {nid: {"class_type": n.get("class_type"), "inputs": n.get("inputs", {}),
                  **({"is_changed": n["is_changed"]} if "is_changed" in n else {})} for nid, n in prompt.items()}


def node_specs(farm: Farm, graph: Mapping[str, Mapping[str, Any]], run_keys: Mapping[str, str], deferred: list[str],
               only: Iterable[str] | None = None) -> dict[str, NodeSpec]:
    """The specs of a run's nodes (``only``: of these nodes alone)."""
    specs: dict[str, NodeSpec] = {}
    facts_of: dict[str, NodeFacts] = {}
    for nid in graph if only is None else only:
        node = graph[nid]
        if node["class_type"] not in facts_of:
            facts_of[node["class_type"]] = node_facts(farm.registry.get(node["class_type"]))
        facts = facts_of[node["class_type"]]
        specs[nid] = NodeSpec(str(node["class_type"]), dict(node["inputs"]), run_keys[nid], facts.lazy, facts.raw_link,
                              facts.output, deferred=nid in deferred)
    return specs


# what model loaders make: objects that stay in the memory of the worker that loaded them
MODEL_TYPES = frozenset({"MODEL", "CLIP", "VAE", "CONTROL_NET", "CLIP_VISION", "STYLE_MODEL", "UPSCALE_MODEL",
                         "GLIGEN", "PHOTOMAKER", "HOOKS", "AUDIO_ENCODER", "MODEL_PATCH"})


def loads_model(cls: type | None) -> bool:
    """A class that makes a model from nothing but constants (CheckpointLoaderSimple, VAELoader, ...),
    not one that patches a model it is given (LoraLoader goes where its model is)."""
    if cls is None or not {str(t) for t in schema.return_types(cls)} & MODEL_TYPES:
        return False
    types = schema.input_types(cls)
    for name in schema.declared_inputs(cls, types):
        info = schema.input_info(cls, name, types)
        if info is not None and str(info[0]) in MODEL_TYPES:
            return False
    return True


@dataclass(frozen=True)
class Candidate:
    """A live worker as admission weighs it for a model load."""

    name: str
    room: int  # its device's free memory less the models it holds (its last heartbeat)
    free: int  # its device's free memory (its last heartbeat)
    kind: str  # its device's type: cuda, cpu, ...
    load: int  # node tasks it runs now, and those queued for it alone


def candidates(farm: Farm) -> list[Candidate]:
    """The live workers that are not blocklisted, with their room, device kind and load."""
    now = time.time()
    alive_after = now - 3 * farm.settings.heartbeat_s
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in farm.r.zrangebyscore(keys.WORKERS, alive_after, "+inf")]
    if not names:
        return []
    pipe = farm.r.pipeline(transaction=False)
    pipe.mget([keys.worker_info(n) for n in names])
    for n in names:
        pipe.hlen(keys.worker_running(n))
        pipe.llen(keys.worker_queue(n))
        pipe.hget(keys.BLOCKLIST, n)
    got = pipe.execute()
    infos, rest = got[0], got[1:]
    found = []
    for i, (name, raw) in enumerate(zip(names, infos, strict=True)):
        running, queued, blocked = rest[3 * i: 3 * i + 3]
        if not raw or blocklist.live_entry(blocklist.Entry.from_json(blocked), now) is not None:
            continue
        info = json.loads(raw)
        devices = info.get("devices") or [{}]
        free = max((int(d.get("vram_free") or 0) for d in devices), default=0)
        room = free - sum(int(m.get("bytes") or 0) for m in info.get("models", []))
        found.append(Candidate(name, room, free, str(devices[0].get("type") or ""), int(running) + int(queued)))
    return found


LOAD_COST = 0.5  # a model load, in runs: what a worker without the model adds to its queue


def place_model_loads(farm: Farm, st: RunState, cached: list[str]) -> list[str]:
    """Where a run's model work happens, so that runs of one model use every worker (N runs of one
    checkpoint sample on N GPUs at once, not one after another on the GPU that loaded it first).

    Each worker's queue is the number of running runs admission gave it model work for
    (:func:`keys.worker_runs`); a worker that neither holds the model nor is loading it adds
    :data:`LOAD_COST`. A model load goes to the worker with the shortest queue: for a model a worker
    holds (a cached node), a worker of the same kind of device whose free memory takes a second copy (the
    holder first on a tie); for a new
    load, any worker; on a tie, where the run's other models go, then the worker with the fewest node tasks
    running or queued, then the one with the most memory to spare. A model made again elsewhere takes
    what the holder made from it (a LoRA applied to it) along (worker/task.py made_elsewhere loads it
    there even when another run stored it meanwhile). With NODEFARM_SPREAD_MODELS=0 a held model stays
    with its holder and new loads go to the worker with the most memory to spare.

    Returns the run's cached nodes, less those made again."""
    loaders = sorted(nid for nid, spec in st.nodes.items() if loads_model(farm.registry.get(spec.class_type)))
    if not loaders:
        return cached
    found = candidates(farm)
    if len(found) < 2:
        return cached
    spread = farm.settings.spread_models
    queues = _queues(farm, found) if spread else {}
    by_name = {c.name: c for c in found}
    redo: set[str] = set()
    for nid in loaders:
        key = st.nodes[nid].key
        holder = st.holders.get(nid, "") if nid in cached else ""
        if nid in cached and (not holder or not spread or holder not in by_name):
            continue  # in the store (any worker reads it), spreading is off, or its holder is out of reach

        def has(c: Candidate, key: str = key, holder: str = holder) -> bool:
            return c.name == holder or key in queues.get(c.name, (set(), set()))[1]

        pool = found
        if holder:  # a second copy: a device of the holder's kind, with the memory for it
            size = _model_bytes(farm, holder, key)
            pool = [c for c in found if c.kind == by_name[holder].kind and (has(c) or c.free >= size)]

        def cost(c: Candidate, holder: str = holder) -> tuple[float, int, int, int]:
            runs = queues.get(c.name, (set(), set()))[0]
            ours = c.name == holder or st.pid in runs  # this run's other models are there: keep them together
            return (len(runs - {st.pid}) + (0.0 if has(c) else LOAD_COST), 0 if ours else 1, c.load, -c.room)

        target = min(pool, key=cost).name if spread else max(pool, key=lambda c: c.room).name
        if spread:
            farm.r.zadd(keys.worker_runs(target), {f"{st.pid} {key}": time.time()})
            runs, holding = queues.setdefault(target, (set(), set()))
            runs.add(st.pid)
            holding.add(key)
        if target == holder:
            continue
        st.placed[nid] = target
        if holder:
            redo |= _made_from(st, nid, holder, set(cached))
    for nid in redo:
        st.holders.pop(nid, None)
    return [nid for nid in cached if nid not in redo]


def _model_bytes(farm: Farm, holder: str, key: str) -> int:
    """The size of a model a worker holds, as it reports it (0 when it does not say)."""
    raw = farm.r.hget(keys.worker_models(holder), key)
    try:
        return int(json.loads(raw).get("bytes") or 0) if raw else 0
    except (ValueError, AttributeError, TypeError):
        return 0


def _queues(farm: Farm, found: list[Candidate]) -> dict[str, tuple[set[str], set[str]]]:
    """Per worker: the running runs admission gave it model work for, and the models it holds or is
    loading for them (entries of runs that ended are dropped here)."""
    pipe = farm.r.pipeline(transaction=False)
    for c in found:
        pipe.zrange(keys.worker_runs(c.name), 0, -1)
        pipe.hkeys(keys.worker_models(c.name))
    got = pipe.execute()
    members = {c.name: [m.decode() if isinstance(m, bytes) else str(m) for m in got[2 * i]] for i, c in enumerate(found)}
    pids = sorted({m.split(" ", 1)[0] for ms in members.values() for m in ms})
    live = set()
    if pids:
        live = {pid for pid, score in zip(pids, farm.r.zmscore(keys.RUNNING, pids), strict=True) if score is not None}
    out: dict[str, tuple[set[str], set[str]]] = {}
    drop = farm.r.pipeline(transaction=False)
    for i, c in enumerate(found):
        runs: set[str] = set()
        holding = {k.decode() if isinstance(k, bytes) else str(k) for k in got[2 * i + 1]}
        for m in members[c.name]:
            pid, _, key = m.partition(" ")
            if pid in live:
                runs.add(pid)
                holding.add(key)
            else:
                drop.zrem(keys.worker_runs(c.name), m)
        out[c.name] = (runs, holding)
    drop.execute()
    return out


def _made_from(st: RunState, loader: str, holder: str, cached: set[str]) -> set[str]:
    """The loader and the cached nodes ``holder`` alone holds that were made from it (a LoRA applied
    to its model, ...): what is made again with it."""
    made = {loader}
    grew = True
    while grew:
        grew = False
        for nid in cached - made:
            if st.holders.get(nid) == holder and nid in st.nodes and set(st.nodes[nid].sources()) & made:
                made.add(nid)
                grew = True
    return made


def start_run(farm: Farm, pid: str, item: QueueItem | None = None) -> None:
    item = item or prompt_queue.load_item(farm.r, pid)
    if item is None:
        farm.r.zrem(keys.RUNNING, pid)
        return
    graph = prompt_graph(item.prompt)
    run_keys = node_keys(farm, pid, graph)
    cached_keys = farm.cache.admit(list(run_keys.values()), _active_keys(farm, exclude=pid), farm.alive)
    cached = [nid for nid, k in run_keys.items() if k in cached_keys]
    # every output cached: the run ends at admission, and only its outputs are ever looked at
    ends_now = all(run_keys.get(nid) in cached_keys for nid in item.outputs)
    specs = node_specs(farm, graph, run_keys, item.deferred, only=item.outputs if ends_now else None)
    ui_by_key = farm.store.get_ui([run_keys[n] for n in cached])
    st = RunState(pid, item.client_id, list(item.outputs), nodes=specs)
    now = now_ms()
    st.holders.update({n: cached_keys[run_keys[n]] for n in cached if cached_keys[run_keys[n]]})
    if not ends_now:
        cached = place_model_loads(farm, st, cached)
    step = admit(st, cached, {n: ui_by_key.get(run_keys[n]) for n in cached}, now)
    _create(farm, st, step, now)
    metrics.cached_at_admission(farm.r, len(cached))


def _create(farm: Farm, st: RunState, step: Step, now: int) -> None:
    pipe = farm.r.pipeline()
    runstore.create(pipe, st, step, now)
    pipe.execute()
    if step.finish:
        run_ended(farm, st.pid)


def _active_keys(farm: Farm, exclude: str) -> set[str]:
    """Keys of the other running runs (ComfyUI's classic cache keeps what they need)."""
    if farm.cache.mode != "classic":
        return set()
    running = [p.decode() if isinstance(p, bytes) else str(p) for p in farm.r.zrange(keys.RUNNING, 0, -1)]
    pipe = farm.r.pipeline(transaction=False)
    for pid in running:
        if pid != exclude:
            pipe.hvals(keys.run_part(pid, "key"))
    return {k.decode() for values in pipe.execute() for k in values}


def _fail_unstarted(farm: Farm, pid: str, exc: Exception) -> None:
    item: QueueItem | None = prompt_queue.load_item(farm.r, pid)
    if item is None:
        farm.r.zrem(keys.RUNNING, pid)
        return
    st = RunState(pid, item.client_id, list(item.outputs))
    now = now_ms()
    step = node_failed(st, "", ErrorInfo(f"{exc}\n", type(exc).__name__), now)
    _create(farm, st, step, now)
