"""The run state machine, pure: stimuli in, a :class:`Step` (events, dispatches, finish) out.

The model is dask's ``WorkerState.handle_stimulus``. A run's state is one JSON-able dict kept in
Redis; :mod:`worker.runs` loads it, applies one stimulus here and writes the state and the events
of the step in one Redis transaction, then sends the dispatches. Every stimulus is idempotent:
Celery delivers at least once, so a node reported done twice changes nothing the second time.

State keys:
  pid, client_id     the run and the websocket client that submitted it
  graph              node_id -> {"class_type", "inputs"} (original nodes and ephemeral ones)
  eph                ephemeral node_id -> [parent_id, display_id]
  facts              node_id -> [lazy input names, rawLink input names, is_output]
  keys               node_id -> cache key (content hash)
  outputs            outputs_to_execute
  cached             node ids whose result was cached at start
  st                 node_id -> "w" (waiting on deps) | "q" (dispatched) | "d" (done), the execution set
  deps               node_id -> source ids it still waits for
  executed           ids that ran this run, in completion order
  ui                 node_id -> ui dict of output nodes (cached or produced)
  prog               node_id -> [value, max] of finished nodes (for progress_state)
  msgs               ComfyUI's history status messages
  end                None | "success" | "error" | "interrupted"
  resolve            node_id -> its expansion result (links into the expanded graph), once expanded
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from worker.graph import NodeFacts, needed_nodes

UNIQUE_KEY = "u:"  # cache keys with this prefix are unique to one run: never shared, never deduplicated


@dataclass
class Step:
    events: list[tuple[str, dict]] = field(default_factory=list)
    dispatch: list[str] = field(default_factory=list)
    finish: str | None = None

    def emit(self, event: str, data: dict) -> None:
        self.events.append((event, data))


def new_state(
    pid: str,
    client_id: str | None,
    graph: dict[str, dict],
    facts: dict[str, NodeFacts],
    keys: dict[str, str],
    outputs: list[str],
) -> dict[str, Any]:
    return {
        "pid": pid,
        "client_id": client_id,
        "graph": graph,
        "eph": {},
        "facts": {nid: [sorted(f.lazy), sorted(f.raw_link), f.output] for nid, f in facts.items()},
        "keys": keys,
        "outputs": outputs,
        "cached": [],
        "st": {},
        "deps": {},
        "executed": [],
        "ui": {},
        "prog": {},
        "msgs": [],
        "end": None,
        "resolve": {},
    }


def facts_of(state: dict, nid: str) -> NodeFacts:
    lazy, raw, out = state["facts"].get(nid, [[], [], False])
    return NodeFacts(frozenset(lazy), frozenset(raw), bool(out))


def display_id(state: dict, nid: str) -> str:
    while nid in state["eph"]:
        parent, display = state["eph"][nid]
        if display == nid:
            break
        nid = display
    return nid


def parent_id(state: dict, nid: str) -> str | None:
    eph = state["eph"].get(nid)
    return eph[0] if eph else None


def real_id(state: dict, nid: str) -> str:
    while nid in state["eph"]:
        nid = state["eph"][nid][0]
    return nid


def progress_entry(state: dict, nid: str, value: float, max_: float, running: bool) -> dict:
    return {
        "value": value,
        "max": max_,
        "state": "running" if running else "finished",
        "node_id": nid,
        "prompt_id": state["pid"],
        "display_node_id": display_id(state, nid),
        "parent_node_id": parent_id(state, nid),
        "real_node_id": real_id(state, nid),
    }


def progress_state(state: dict, running: dict[str, tuple[float, float]] | None = None, only: list[str] | None = None) -> dict:
    """A ``progress_state`` event as stored: the entries that changed (``only`` finished nodes,
    plus ``running``), never the whole registry.

    ComfyUI sends every non-pending node of the prompt in each frame, which grows with the run;
    storing that per node would make a long chain quadratic. The relay in front of each client
    (:class:`worker.events.ProgressRegistry`) accumulates these deltas and sends the full
    ComfyUI payload: finished nodes, plus nodes that started and have not finished yet (a lazy
    node waiting for inputs, an expanded node), which keep their last "running" entry.
    """
    ids = state["prog"] if only is None else only
    nodes = {
        nid: progress_entry(state, nid, state["prog"][nid][0], state["prog"][nid][1], False)
        for nid in ids
        if nid in state["prog"]
    }
    for nid, (v, m) in (running or {}).items():
        nodes[nid] = progress_entry(state, nid, v, m, True)
    return {"prompt_id": state["pid"], "nodes": nodes}


# ---- stimuli -----------------------------------------------------------------------------------


def admit(state: dict, cached_keys: set[str], cached_ui: dict[str, Any], now_ms: int) -> Step:
    """Start the run: execution_start, execution_cached, and the first ready nodes."""
    step = Step()
    pid = state["pid"]
    start = {"prompt_id": pid, "timestamp": now_ms}
    cached = [nid for nid in state["graph"] if state["keys"].get(nid) in cached_keys]
    state["cached"] = cached
    done = set(cached)
    cached_msg = {"nodes": cached, "prompt_id": pid, "timestamp": now_ms}
    state["msgs"] += [["execution_start", start], ["execution_cached", cached_msg]]
    step.emit("execution_start", start)
    step.emit("execution_cached", cached_msg)
    for nid in cached:
        if nid in cached_ui and cached_ui[nid] is not None:
            state["ui"][nid] = cached_ui[nid]
    for nid in state["outputs"]:
        if nid in done:
            # a cached output node: its ui is re-sent and it shows as finished, no `executing`
            step.emit("executed", {"node": nid, "display_node": nid, "output": state["ui"].get(nid), "prompt_id": pid})
            state["prog"][nid] = [1, 1]
            step.emit("progress_state", progress_state(state, only=[nid]))
    _schedule(state, state["outputs"], step)
    _maybe_finish(state, step, now_ms)
    return step


def node_done(
    state: dict,
    nid: str,
    *,
    ui: Any = None,
    ran: bool = True,
    progress: tuple[float, float] = (1, 1),
    now_ms: int = 0,
    holder: str | None = None,
) -> Step:
    """A node finished (ran, or found its result already stored). Unblocks its dependants.

    ``holder``: the worker whose memory alone holds the result (not serializable), if any.
    """
    step = Step()
    if state["end"] is not None or state["st"].get(nid) != "q":
        return step  # duplicate delivery, or the run already ended
    state["st"][nid] = "d"
    if holder:
        state.setdefault("loc", {})[nid] = holder
    if ran:
        state["executed"].append(nid)
    if ui is not None:
        state["ui"][nid] = ui
    if ui:  # ComfyUI: `executed` with the node's ui (fresh or cached), then its progress finishes
        node = {"node": nid, "display_node": display_id(state, nid), "output": ui, "prompt_id": state["pid"]}
        step.emit("executed", node)
    state["prog"][nid] = list(progress)
    step.emit("progress_state", progress_state(state, only=[nid]))
    for other, deps in state["deps"].items():
        if nid in deps:
            deps.remove(nid)
            if not deps and state["st"].get(other) == "w":
                _dispatch(state, other, step)
    _maybe_finish(state, step, now_ms)
    return step


def node_pending(state: dict, nid: str, need: list[str], now_ms: int = 0) -> Step:
    """A node asked for more inputs (lazy check_lazy_status): schedule them and wait again.

    Requests that make nodes wait on each other in a circle (lazy inputs of an expansion asking
    for each other) fail the run with a dependency cycle, as ComfyUI does, instead of hanging.
    """
    step = Step()
    if state["end"] is not None or state["st"].get(nid) != "q":
        return step
    state["st"][nid] = "w"
    _schedule(state, need, step, waiter=nid)
    if _has_cycle(state):
        return _cycle_failure(state, nid, now_ms)
    _maybe_dispatch_waiter(state, nid, step)
    return step


def node_expanded(
    state: dict,
    nid: str,
    new_graph: dict[str, dict],
    new_facts: dict[str, NodeFacts],
    new_keys: dict[str, str],
    result: list[Any],
    display: dict[str, str],
    now_ms: int = 0,
    done: dict[str, str | None] | None = None,
) -> Step:
    """A node returned an expansion: add the ephemeral nodes, wait on the links of its result.

    ``done``: new nodes whose result is stored already (literal values of the expansion), with the
    worker holding it when only that worker's memory does. An expansion that closes a dependency
    cycle fails the run on the expanding node, as ComfyUI does.
    """
    step = Step()
    if state["end"] is not None or state["st"].get(nid) != "q":
        return step
    # copy-on-write: the static part of a state (graph, keys, facts, eph) may be shared with a cache
    for part in ("graph", "eph", "facts", "keys"):
        state[part] = dict(state[part])
    for new_id, node in new_graph.items():
        state["graph"][new_id] = node
        state["eph"][new_id] = [nid, display.get(new_id, nid)]
        f = new_facts.get(new_id, NodeFacts())
        state["facts"][new_id] = [sorted(f.lazy), sorted(f.raw_link), f.output]
        state["keys"][new_id] = new_keys[new_id]
    for new_id, holder in (done or {}).items():
        state["st"][new_id] = "d"
        if holder:
            state.setdefault("loc", {})[new_id] = holder
    state["resolve"][nid] = result
    state["st"][nid] = "w"
    roots = [v[0] for v in _walk_links(result)]
    roots += [n for n in new_graph if new_facts.get(n, NodeFacts()).output]
    _schedule(state, roots, step, waiter=nid)
    if _has_cycle(state):
        return _cycle_failure(state, nid, now_ms)
    _maybe_dispatch_waiter(state, nid, step)
    return step


def _cycle_failure(state: dict, nid: str, now_ms: int) -> Step:
    """ComfyUI's dependency-cycle execution_error, blamed on the real (expanding) node of ``nid``.

    Nodes dispatched by the step that closed the cycle are dropped: the run ends here.
    """
    info = {"exception_message": "Dependency cycle detected", "exception_type": "graph.DependencyCycleError",
            "traceback": [], "current_inputs": []}
    return node_failed(state, nid, info, now_ms)


def _has_cycle(state: dict) -> bool:
    """Whether waiting nodes wait on each other in a circle (they would never run)."""
    deps = {n: d for n, d in state["deps"].items() if state["st"].get(n) in ("w", "q")}
    color: dict[str, int] = {}
    for root in deps:
        if color.get(root):
            continue
        stack = [(root, iter(deps.get(root, [])))]
        color[root] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                color[node] = 2
                stack.pop()
            elif color.get(nxt) == 1:
                return True
            elif not color.get(nxt) and nxt in deps:
                color[nxt] = 1
                stack.append((nxt, iter(deps.get(nxt, []))))
    return False


def node_failed(state: dict, nid: str, info: dict, now_ms: int) -> Step:
    """A node raised: execution_error, and the run ends (nodes still queued are skipped)."""
    step = Step()
    if state["end"] is not None:
        return step
    state["end"] = "error"
    data = {
        "prompt_id": state["pid"],
        "node_id": real_id(state, nid) if info.get("use_real_id", True) else nid,
        "node_type": state["graph"].get(real_id(state, nid), {}).get("class_type", ""),
        "executed": list(state["executed"]),
        "exception_message": info.get("exception_message", ""),
        "exception_type": info.get("exception_type", ""),
        "traceback": info.get("traceback", []),
        "current_inputs": info.get("current_inputs", {}),
        "current_outputs": list(state["cached"]) + [n for n in state["executed"] if n not in state["cached"]],
        "timestamp": now_ms,
    }
    state["msgs"].append(["execution_error", data])
    step.emit("execution_error", data)
    step.finish = "error"
    return step


def interrupted(state: dict, nid: str | None, now_ms: int) -> Step:
    step = Step()
    if state["end"] is not None:
        return step
    state["end"] = "interrupted"
    node = real_id(state, nid) if nid else None
    data = {
        "prompt_id": state["pid"],
        "node_id": node,
        "node_type": state["graph"].get(node, {}).get("class_type") if node else None,
        "executed": list(state["executed"]),
        "timestamp": now_ms,
    }
    state["msgs"].append(["execution_interrupted", data])
    step.emit("execution_interrupted", data)
    step.finish = "interrupted"
    return step


def lost_inputs(state: dict, nid: str, lost: list[str]) -> Step:
    """Inputs of ``nid`` vanished (evicted, or their worker died): recompute them from their recipe."""
    step = Step()
    if state["end"] is not None or state["st"].get(nid) != "q":
        return step
    state["st"][nid] = "w"
    for src in lost:
        state["st"].pop(src, None)
        if src in state["cached"]:
            state["cached"].remove(src)
    _schedule(state, lost, step, waiter=nid, force=set(lost))
    _maybe_dispatch_waiter(state, nid, step)
    return step


# ---- internals ---------------------------------------------------------------------------------


def _walk_links(value: Any) -> list[list]:
    from worker.graph import is_link

    if is_link(value):
        return [value]
    if isinstance(value, (list, tuple)):
        return [link for v in value for link in _walk_links(v)]
    return []


def _schedule(state: dict, roots: list[str], step: Step, waiter: str | None = None, force: set[str] | None = None) -> None:
    """Add ``roots`` and their strong, uncached, not yet scheduled sources; dispatch the ready ones."""
    cached = set(state["cached"]) - (force or set())
    scheduled = set(state["st"])
    facts = {nid: facts_of(state, nid) for nid in state["graph"]}
    needed = needed_nodes(roots, state["graph"], facts, skip=cached | scheduled)
    for nid in needed.nodes:
        state["st"][nid] = "w"
        state["deps"][nid] = [d for d in needed.deps[nid] if state["st"].get(d, "w") != "d" and d not in cached]
    if waiter is not None:
        deps = state["deps"].setdefault(waiter, [])
        for r in roots:
            if r not in deps and state["st"].get(r) in ("w", "q") and r != waiter:
                deps.append(r)
    for nid in needed.nodes:
        if not state["deps"][nid] and state["st"][nid] == "w":
            _dispatch(state, nid, step)


def _maybe_dispatch_waiter(state: dict, nid: str, step: Step) -> None:
    if not state["deps"].get(nid) and state["st"].get(nid) == "w":
        _dispatch(state, nid, step)


def _dispatch(state: dict, nid: str, step: Step) -> None:
    # An identical node (same cache key) already queued in this run: wait for it, then find its
    # result stored (ComfyUI computes identical nodes of one prompt once; the second is a cache hit).
    key = state["keys"].get(nid)
    for other, st in state["st"].items():
        if st == "q" and other != nid and state["keys"].get(other) == key and not key.startswith(UNIQUE_KEY):
            state["deps"][nid] = [other]
            return
    state["st"][nid] = "q"
    state["deps"][nid] = []
    disp = state.setdefault("disp", {})
    disp[nid] = disp.get(nid, 0) + 1
    step.dispatch.append(nid)


def _maybe_finish(state: dict, step: Step, now_ms: int) -> None:
    if state["end"] is not None:
        return
    if all(st == "d" for st in state["st"].values()):
        state["end"] = "success"
        data = {"prompt_id": state["pid"], "timestamp": now_ms}
        state["msgs"].append(["execution_success", data])
        step.finish = "success"
        step.emit("execution_success", data)
