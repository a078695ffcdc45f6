"""The run state machine, pure: a typed run state, stimuli in, a :class:`Step` out.

The model is dask's ``WorkerState.handle_stimulus``. A run is a :class:`RunState`; each report of a
node task is an *outcome* (:class:`Done`, :class:`Pending`, :class:`Expanded`, :class:`Failed`,
:class:`Interrupted`, :class:`LostInputs`) that :func:`apply` turns into a :class:`Step`: the events
to send, the nodes to dispatch, and whether the run ended. Every stimulus is idempotent: Celery
delivers at least once, so a node reported twice (or a stale delivery, by ``seq``) changes nothing.

In Redis (``worker/runstore.py``) the state is a handful of hashes keyed by node id, so a step writes
only what it changed; the hot stimulus, :class:`Done`, runs as a Redis Function that mirrors
:func:`node_done` exactly (``worker/functions.lua``, checked against this module by
``tests/integration/test_functions.py``).

Node states (``RunState.status``): absent = not part of the execution (yet); ``w`` waiting for
sources (``deps``) or for an identical node (same cache key) queued before it; ``q`` dispatched;
``d`` done; ``c`` cached when the run started (done without running).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from nodes.core.graph import NodeFacts, needed_nodes, sources, strong_sources, walk_links
from nodes.core.signature import is_unique

WAITING, QUEUED, DONE, CACHED = "w", "q", "d", "c"
BIG_RESULT = 1 << 18  # bytes (256 KiB): a result this big is cheaper to use where it is than to move
FINISHED = (DONE, CACHED)
ACTIVE = (WAITING, QUEUED)


@dataclass(frozen=True)
class NodeSpec:
    """One node of a run as the engine needs it; fixed once the node exists.

    ``parent``/``display``/``real`` are set on ephemeral nodes (created by an expansion): the node
    whose expansion made it, the node the UI shows for it, and the original node of the prompt.
    """

    class_type: str
    inputs: dict[str, Any]
    key: str
    lazy: frozenset[str] = frozenset()
    raw_link: frozenset[str] = frozenset()
    output: bool = False
    parent: str | None = None
    display: str | None = None
    real: str | None = None
    deferred: bool = False  # its VALIDATE_INPUTS must run again on the worker with real values

    @property
    def facts(self) -> NodeFacts:
        return NodeFacts(self.lazy, self.raw_link, self.output)

    @cached_property
    def _sources(self) -> tuple[list[str], list[str]]:
        node = self.as_node()
        return sources(node), strong_sources(node, self.facts)

    def sources(self) -> list[str]:
        """Link sources, each once, in input order."""
        return list(self._sources[0])

    def strong_sources(self) -> list[str]:
        """Sources it must wait for: links on inputs that are not lazy."""
        return list(self._sources[1])

    def as_node(self) -> dict[str, Any]:
        return {"class_type": self.class_type, "inputs": self.inputs}

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"class_type": self.class_type, "inputs": self.inputs, "key": self.key}
        if self.lazy:
            out["lazy"] = sorted(self.lazy)
        if self.raw_link:
            out["raw_link"] = sorted(self.raw_link)
        if self.output:
            out["output"] = True
        for name in ("parent", "display", "real"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.deferred:
            out["deferred"] = True
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> NodeSpec:
        return cls(
            class_type=data["class_type"],
            inputs=data.get("inputs", {}),
            key=data["key"],
            lazy=frozenset(data.get("lazy", ())),
            raw_link=frozenset(data.get("raw_link", ())),
            output=bool(data.get("output", False)),
            parent=data.get("parent"),
            display=data.get("display"),
            real=data.get("real"),
            deferred=bool(data.get("deferred", False)),
        )


@dataclass
class RunState:
    pid: str
    client_id: str | None
    outputs: list[str]
    nodes: dict[str, NodeSpec] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)
    seq: dict[str, int] = field(default_factory=dict)  # dispatches per node (a stale task carries an old one)
    deps: dict[str, list[str]] = field(default_factory=dict)  # waiting node -> what it still waits for
    waiters: dict[str, list[str]] = field(default_factory=dict)  # node -> nodes waiting for it
    keyq: dict[str, str] = field(default_factory=dict)  # cache key -> the node queued with it
    holders: dict[str, str] = field(default_factory=dict)  # node -> the worker whose memory alone holds it
    # node -> the worker admission chose for it (a model load: the worker with the most memory to
    # spare); consulted when the node is dispatched, never stored
    placed: dict[str, str] = field(default_factory=dict)
    made: dict[str, str] = field(default_factory=dict)  # node -> the worker that computed it (may still be uploading it)
    near: dict[str, str] = field(default_factory=dict)  # node -> the worker holding its big result: consumers prefer it
    ui: dict[str, Any] = field(default_factory=dict)  # output node -> its ui (cached or produced)
    resolve: dict[str, list[Any]] = field(default_factory=dict)  # expanded node -> its result links
    executed: list[str] = field(default_factory=list)  # nodes that ran, in completion order
    msgs: list[list[Any]] = field(default_factory=list)  # ComfyUI's history status messages
    end: str | None = None  # None while running, else "success" | "error" | "interrupted"

    def pending(self) -> int:
        """Nodes of the execution not finished yet (the run succeeds when this reaches 0)."""
        return sum(1 for s in self.status.values() if s in ACTIVE)

    def cached(self) -> list[str]:
        return [n for n, s in self.status.items() if s == CACHED]


@dataclass
class Step:
    events: list[tuple[str, dict]] = field(default_factory=list)
    dispatch: list[str] = field(default_factory=list)
    finish: str | None = None

    def emit(self, event: str, data: dict) -> None:
        self.events.append((event, data))


@dataclass
class ErrorInfo:
    """What a failed node reports: the variable fields of ComfyUI's ``execution_error``."""

    message: str
    type: str
    traceback: list[str] = field(default_factory=list)
    current_inputs: dict[str, list[Any]] | list[Any] = field(default_factory=dict)  # [] where ComfyUI sends a list


# ---- outcomes of one node task -------------------------------------------------------------------


@dataclass
class Done:
    """The node ran (or found its result stored): its ui, the worker that ran it, and the worker that
    alone holds the result (it cannot be serialized), if any."""

    ui: Any = None
    ran: bool = True
    holder: str | None = None
    worker: str | None = None
    nbytes: int = 0  # size of the result; a big one draws its consumers to the worker that holds it


@dataclass
class Pending:
    """``check_lazy_status`` asked for these source nodes first."""

    need: list[str]


@dataclass
class Expanded:
    """The node returned a subgraph: its new nodes, its result (links into them), nodes born done."""

    nodes: dict[str, NodeSpec]
    result: list[Any]
    done: dict[str, str | None] = field(default_factory=dict)


@dataclass
class Failed:
    error: ErrorInfo


@dataclass
class Interrupted:
    pass


@dataclass
class LostInputs:
    """Results of these sources are gone (evicted, or their worker died): recompute them."""

    lost: list[str]


Outcome = Done | Pending | Expanded | Failed | Interrupted | LostInputs


def apply(state: RunState, nid: str, outcome: Outcome, now_ms: int, seq: int | None = None) -> Step:
    """Apply one node's outcome to the run (``seq``: the dispatch it answers, None to skip the check)."""
    if isinstance(outcome, Failed):
        return node_failed(state, nid, outcome.error, now_ms)
    if isinstance(outcome, Interrupted):
        return interrupted(state, nid, now_ms)
    if not _current(state, nid, seq):
        return Step()
    if isinstance(outcome, Done):
        return node_done(state, nid, ui=outcome.ui, ran=outcome.ran, holder=outcome.holder, worker=outcome.worker,
                         nbytes=outcome.nbytes, now_ms=now_ms)
    if isinstance(outcome, Pending):
        return node_pending(state, nid, outcome.need, now_ms)
    if isinstance(outcome, Expanded):
        return node_expanded(state, nid, outcome.nodes, outcome.result, outcome.done, now_ms)
    return lost_inputs(state, nid, outcome.lost)


def _current(state: RunState, nid: str, seq: int | None) -> bool:
    """Whether a report about ``nid`` is about its live dispatch (not a duplicate or a stale one)."""
    if state.end is not None or state.status.get(nid) != QUEUED:
        return False
    return seq is None or state.seq.get(nid, 0) == seq


# ---- ids and event payloads ----------------------------------------------------------------------


def display_id(state: RunState, nid: str) -> str:
    spec = state.nodes.get(nid)
    return spec.display if spec is not None and spec.display is not None else nid


def parent_id(state: RunState, nid: str) -> str | None:
    spec = state.nodes.get(nid)
    return spec.parent if spec is not None else None


def real_id(state: RunState, nid: str) -> str:
    spec = state.nodes.get(nid)
    return spec.real if spec is not None and spec.real is not None else nid


def ephemeral_spec(
    state: RunState, parent: str, batch: Mapping[str, NodeSpec], override_display: str | None, **fields: Any
) -> NodeSpec:
    """The spec of a node created by ``parent``'s expansion (``batch``: its siblings made so far).

    Its display node is the resolved display of ``override_display_id`` (or of the parent), its real
    node the original node of the parent's line, as ComfyUI's DynamicPrompt resolves them.
    """
    shown = override_display or parent
    known = batch.get(shown) or state.nodes.get(shown)
    display = known.display if known is not None and known.display is not None else shown
    return NodeSpec(parent=parent, display=display, real=real_id(state, parent), **fields)


def node_ids(state: RunState, nid: str) -> dict[str, Any]:
    """How ComfyUI names a node in progress entries and preview metadata."""
    return {
        "node_id": nid,
        "prompt_id": state.pid,
        "display_node_id": display_id(state, nid),
        "parent_node_id": parent_id(state, nid),
        "real_node_id": real_id(state, nid),
    }


def progress_entry(state: RunState, nid: str, value: float, max_: float, running: bool) -> dict[str, Any]:
    return {"value": value, "max": max_, "state": "running" if running else "finished", **node_ids(state, nid)}


def progress_delta(state: RunState, nid: str, value: float, max_: float, running: bool) -> dict[str, Any]:
    """A ``progress_state`` event as stored: the one entry that changed, never the whole registry.

    ComfyUI sends every non-pending node of the prompt in each frame, which grows with the run;
    storing that would make a long chain quadratic. Relays rebuild ComfyUI's full frames
    (:class:`worker.events.ProgressRegistry`) for the clients that want them.
    """
    return {"prompt_id": state.pid, "nodes": {nid: progress_entry(state, nid, value, max_, running)}}


def executing(state: RunState, nid: str) -> dict[str, Any]:
    return {"node": nid, "display_node": display_id(state, nid), "prompt_id": state.pid}


def start_events(state: RunState, nid: str) -> list[tuple[str, dict]]:
    """What a node sends when it starts executing: its registry entry (running), then ``executing``."""
    return [("progress_state", progress_delta(state, nid, 0.0, 1.0, True)), ("executing", executing(state, nid))]


def done_events(state: RunState, nid: str, ui: Any) -> list[tuple[str, dict]]:
    """What a finished node sends: ``executed`` with its ui (when it has one), then its entry (finished)."""
    out: list[tuple[str, dict]] = []
    if ui:
        out.append(("executed", {"node": nid, "display_node": display_id(state, nid), "output": ui, "prompt_id": state.pid}))
    out.append(("progress_state", progress_delta(state, nid, 1, 1, False)))
    return out


def execution_error(
    state: RunState, nid: str, error: ErrorInfo, now_ms: int | None, *, blocked: bool = False
) -> dict[str, Any]:
    """ComfyUI's ``execution_error`` payload (spec 4.3), the one builder of it.

    A node failure names the real (original) node, lists the outputs cached at start plus those
    computed since, and carries a timestamp. ``blocked``: the ExecutionBlocked flavour a verbose
    blocker sends to its first consumer (the run goes on; no outputs, no timestamp).
    """
    data: dict[str, Any] = {
        "prompt_id": state.pid,
        "node_id": nid if blocked else real_id(state, nid),
        "node_type": _class_of(state, nid if blocked else real_id(state, nid)),
        "executed": list(state.executed),
        "exception_message": error.message,
        "exception_type": error.type,
        "traceback": list(error.traceback),
        "current_inputs": error.current_inputs if not blocked else [],
        "current_outputs": [] if blocked else state.cached() + [n for n in state.executed if state.status.get(n) != CACHED],
    }
    if not blocked:
        data["timestamp"] = now_ms
    return data


def _class_of(state: RunState, nid: str) -> str:
    spec = state.nodes.get(nid)
    return spec.class_type if spec is not None else ""


# ---- stimuli -------------------------------------------------------------------------------------


def admit(state: RunState, cached: Iterable[str], cached_ui: Mapping[str, Any], now_ms: int) -> Step:
    """Start the run: execution_start, execution_cached (``cached``, in prompt order), and the first
    ready nodes. A run whose outputs are all cached ends here, and needs specs of its outputs only."""
    step = Step()
    pid = state.pid
    for nid in cached:
        state.status[nid] = CACHED
    start = {"prompt_id": pid, "timestamp": now_ms}
    cached_msg = {"nodes": state.cached(), "prompt_id": pid, "timestamp": now_ms}
    state.msgs += [["execution_start", start], ["execution_cached", cached_msg]]
    step.emit("execution_start", start)
    step.emit("execution_cached", cached_msg)
    for nid in state.cached():
        if cached_ui.get(nid):
            state.ui[nid] = cached_ui[nid]
    for nid in state.outputs:
        if state.status.get(nid) == CACHED:
            # a cached output node: its ui is re-sent and it shows as finished, no `executing`
            step.emit("executed", {"node": nid, "display_node": nid, "output": state.ui.get(nid), "prompt_id": pid})
            step.emit("progress_state", progress_delta(state, nid, 1, 1, False))
    _schedule(state, state.outputs, step)
    _maybe_finish(state, step, now_ms)
    return step


def node_done(
    state: RunState,
    nid: str,
    *,
    ui: Any = None,
    ran: bool = True,
    holder: str | None = None,
    worker: str | None = None,
    nbytes: int = 0,
    now_ms: int = 0,
) -> Step:
    """A node finished (ran, or found its result stored): dispatch what it unblocked.

    Identical nodes (same cache key) that waited for it are done with it, without running: ComfyUI
    computes identical nodes of one prompt once, the others are cache hits.
    """
    step = Step()
    if not _current(state, nid, None):
        return step
    made = worker if ran else None
    _complete(state, step, nid, ui=ui, ran=ran, holder=holder, worker=made, near=made if nbytes >= BIG_RESULT else None)
    _maybe_finish(state, step, now_ms)
    return step


def _complete(
    state: RunState, step: Step, nid: str, *, ui: Any, ran: bool, holder: str | None, worker: str | None, near: str | None
) -> None:
    key = state.nodes[nid].key
    _set_status(state, nid, DONE)
    if holder:
        state.holders[nid] = holder
    if worker:
        state.made[nid] = worker
    if near:
        state.near[nid] = near
    if ran:
        state.executed.append(nid)
    if ui:
        state.ui[nid] = ui
    step.events += done_events(state, nid, ui)
    for waiter in state.waiters.pop(nid, []):
        deps = state.deps.get(waiter)
        if deps and nid in deps:
            deps.remove(nid)
            if not deps:
                del state.deps[waiter]
                if state.status.get(waiter) == WAITING:
                    if state.nodes[waiter].key == key and not is_unique(key):  # an identical node
                        _complete(state, step, waiter, ui=ui, ran=False, holder=holder, worker=worker, near=near)
                    else:
                        _dispatch(state, waiter, step)


def node_pending(state: RunState, nid: str, need: list[str], now_ms: int = 0) -> Step:
    """A node asked for more inputs (lazy check_lazy_status): schedule them and wait again.

    Requests that make nodes wait on each other in a circle (lazy inputs of an expansion asking
    for each other) fail the run with a dependency cycle, as ComfyUI does, instead of hanging.
    """
    step = Step()
    if not _current(state, nid, None):
        return step
    _set_status(state, nid, WAITING)
    _schedule(state, need, step, waiter=nid)
    if _has_cycle(state):
        return _cycle_failure(state, nid, now_ms)
    _maybe_dispatch_waiter(state, nid, step)
    return step


def node_expanded(
    state: RunState,
    nid: str,
    new_nodes: Mapping[str, NodeSpec],
    result: list[Any],
    done: Mapping[str, str | None] | None = None,
    now_ms: int = 0,
) -> Step:
    """A node returned an expansion: add the ephemeral nodes, wait on the links of its result.

    ``done``: new nodes whose result is stored already (literal values of the expansion), with the
    worker holding it when only that worker's memory does. An expansion that closes a dependency
    cycle fails the run on the expanding node, as ComfyUI does.
    """
    step = Step()
    if not _current(state, nid, None):
        return step
    state.nodes.update(new_nodes)
    for new_id, holder in (done or {}).items():
        state.status[new_id] = DONE
        if holder:
            state.holders[new_id] = holder
    state.resolve[nid] = result
    _set_status(state, nid, WAITING)
    roots = [v[0] for v in walk_links(result)] + [n for n, spec in new_nodes.items() if spec.output]
    _schedule(state, roots, step, waiter=nid)
    if _has_cycle(state):
        return _cycle_failure(state, nid, now_ms)
    _maybe_dispatch_waiter(state, nid, step)
    return step


def node_failed(state: RunState, nid: str, error: ErrorInfo, now_ms: int) -> Step:
    """A node raised: execution_error, and the run ends (nodes still queued are skipped)."""
    step = Step()
    if state.end is not None:
        return step
    state.end = "error"
    data = execution_error(state, nid, error, now_ms)
    state.msgs.append(["execution_error", data])
    step.emit("execution_error", data)
    step.finish = "error"
    return step


def interrupted(state: RunState, nid: str | None, now_ms: int) -> Step:
    step = Step()
    if state.end is not None:
        return step
    state.end = "interrupted"
    node = real_id(state, nid) if nid else None
    data = {
        "prompt_id": state.pid,
        "node_id": node,
        "node_type": _class_of(state, node) if node else None,
        "executed": list(state.executed),
        "timestamp": now_ms,
    }
    state.msgs.append(["execution_interrupted", data])
    step.emit("execution_interrupted", data)
    step.finish = "interrupted"
    return step


def lost_inputs(state: RunState, nid: str, lost: list[str]) -> Step:
    """Inputs of ``nid`` vanished (evicted, or their worker died): recompute them from their recipe."""
    step = Step()
    if not _current(state, nid, None):
        return step
    _set_status(state, nid, WAITING)
    for src in lost:
        state.status.pop(src, None)
        state.holders.pop(src, None)
        state.made.pop(src, None)
        state.near.pop(src, None)
    _schedule(state, lost, step, waiter=nid)
    _maybe_dispatch_waiter(state, nid, step)
    return step


def route(state: RunState, nid: str) -> str | None:
    """The worker a node must run on (it holds an input only in memory), or None for any worker.

    (``nf_dispatch`` in Redis adds a preference this pure function cannot know about: a node whose
    input is big goes to the live worker that holds it when that worker has nothing queued.)"""
    for src in state.nodes[nid].sources():
        if src in state.holders:
            return state.holders[src]
    return state.placed.get(nid)


# ---- internals -----------------------------------------------------------------------------------


def _set_status(state: RunState, nid: str, status: str) -> None:
    if state.status.get(nid) == QUEUED and state.keyq.get(state.nodes[nid].key) == nid:
        del state.keyq[state.nodes[nid].key]
    state.status[nid] = status


def _wait(state: RunState, waiter: str, src: str) -> None:
    deps = state.deps.setdefault(waiter, [])
    if src not in deps:
        deps.append(src)
    waiting = state.waiters.setdefault(src, [])
    if waiter not in waiting:
        waiting.append(waiter)


def _cycle_failure(state: RunState, nid: str, now_ms: int) -> Step:
    """ComfyUI's dependency-cycle execution_error, blamed on the real (expanding) node of ``nid``.

    Nodes dispatched by the step that closed the cycle are dropped: the run ends here.
    """
    error = ErrorInfo("Dependency cycle detected", "graph.DependencyCycleError", [], [])
    return node_failed(state, nid, error, now_ms)


def _has_cycle(state: RunState) -> bool:
    """Whether waiting nodes wait on each other in a circle (they would never run)."""
    deps = {n: d for n, d in state.deps.items() if state.status.get(n) in ACTIVE}
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


def _schedule(state: RunState, roots: list[str], step: Step, waiter: str | None = None) -> None:
    """Add ``roots`` and their strong sources not yet part of the run; dispatch the ready ones."""
    needed = needed_nodes(roots, lambda nid: state.nodes[nid].strong_sources(), skip=state.status)
    for nid in needed.nodes:
        state.status[nid] = WAITING
    for nid in needed.nodes:
        for src in needed.deps[nid]:
            if state.status.get(src) not in FINISHED:
                _wait(state, nid, src)
    if waiter is not None:
        for r in roots:
            if r != waiter and state.status.get(r) in ACTIVE:
                _wait(state, waiter, r)
    for nid in needed.nodes:
        if not state.deps.get(nid) and state.status[nid] == WAITING:
            _dispatch(state, nid, step)


def _maybe_dispatch_waiter(state: RunState, nid: str, step: Step) -> None:
    if not state.deps.get(nid) and state.status.get(nid) == WAITING:
        _dispatch(state, nid, step)


def _dispatch(state: RunState, nid: str, step: Step) -> None:
    # An identical node (same cache key) already queued in this run: wait for it, then find its
    # result stored (ComfyUI computes identical nodes of one prompt once; the second is a cache hit).
    key = state.nodes[nid].key
    if not is_unique(key):
        other = state.keyq.get(key)
        if other is not None and other != nid and state.status.get(other) == QUEUED:
            _wait(state, nid, other)
            return
        state.keyq[key] = nid
    state.status[nid] = QUEUED
    state.deps.pop(nid, None)
    state.seq[nid] = state.seq.get(nid, 0) + 1
    step.dispatch.append(nid)


def _maybe_finish(state: RunState, step: Step, now_ms: int) -> None:
    if state.end is not None or any(s in ACTIVE for s in state.status.values()):
        return
    state.end = "success"
    data = {"prompt_id": state.pid, "timestamp": now_ms}
    state.msgs.append(["execution_success", data])
    step.finish = "success"
    step.emit("execution_success", data)
