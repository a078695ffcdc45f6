"""The body of the node task: run one node of one run on this worker, then advance the run.

1. ``nf_start`` checks the task is the node's live dispatch (Celery delivers at least once), counts
   the attempt (a node that keeps killing its worker fails the run instead of looping), registers
   it on this worker for rescue and sends its start events.
2. When another run computed the same cache key lately (``nf:computed``), the result store is
   asked first: a result stored meanwhile is served without running (:class:`Done`, ``ran=False``).
   Identical nodes of one run never get here: ``nf_done`` completes them with the first.
3. Inputs come from this worker's memory or the result store; the node runs ComfyUI's way
   (:mod:`worker.execute`) with progress and interrupt hooks live (:mod:`worker.hooks`).
4. Its outcome goes to :func:`worker.advance.advance`: one step, one round trip for a plain node.
"""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass
from typing import Any

import torch

from nodes import face, schema
from nodes.compat import server as compat_server
from nodes.core.graph import is_link
from nodes.core.inputs import Hidden, assemble_inputs
from nodes.core.item import QueueItem
from nodes.core.state import (
    CACHED,
    DONE,
    Done,
    ErrorInfo,
    Failed,
    Interrupted,
    LostInputs,
    NodeSpec,
    Outcome,
    Pending,
    RunState,
    display_id,
    execution_error,
)
from worker import (
    blocklist,
    context,
    events,
    expansion,
    files,
    functions,
    keys,
    lazy,
    metrics,
    prompt_queue,
    runstore,
)
from worker.advance import advance
from worker.context import NodeContext
from worker.errors import ResultLost
from worker.execute import CallResult, run_node
from worker.farm import Farm

log = logging.getLogger("nodefarm.task")

def execute_task(farm: Farm, pid: str, nid: str, seq: int, sent: float | None = None) -> None:
    """``sent``: when the task was queued (unix s), for the wait-time metric."""
    worker = farm.settings.worker_name
    if blocklist.bounce(farm, pid, nid, seq) is not None:
        return  # this worker is blocklisted: a healthy one runs the node
    started = functions.start(farm.r, pid, nid, seq, worker, farm.settings.max_node_attempts)
    if started is None:
        return  # a duplicate delivery, or a node of a run that already ended
    began = time.monotonic()
    outcome: Outcome | RetryElsewhere | None = None
    try:
        ctx = NodeContext(pid, nid, started.client_id, NodeSpec.from_json(started.spec))
        if started.computed_elsewhere and started.resolve is None:
            outcome = made_elsewhere(farm, ctx.spec.key)
        if outcome is None:
            face.live("comfy.model_management").interrupt_current_processing(False)  # not another run's
            with context.executing(ctx):
                outcome = _outcome(farm, ctx, started)
        if isinstance(outcome, RetryElsewhere):
            log.warning("node %s of %s %s on %s; trying once more on %s", nid, pid, outcome.why, worker, outcome.worker)
            pipe = farm.r.pipeline()
            functions.publish_in(pipe, pid, [(nid, seq, outcome.worker)])
            pipe.execute()
            return
        if isinstance(outcome, Done) and started.pending <= 1:
            # the run ends with this node: its results are all in the store before anyone can see
            # it finished (an identical prompt submitted right after is cached through and through)
            farm.store.flush()
        if isinstance(outcome, Done) and outcome.ran:  # a worker that failed this key before is charged
            blocklist.succeeded(farm, ctx.spec.key, started.attempts)
        advance(farm, pid, nid, seq, outcome)
    finally:
        if not isinstance(outcome, Done):  # nf_done unregisters a finished node itself
            farm.r.hdel(keys.worker_running(worker), f"{pid} {nid}")
        metrics.node_done(farm.r, worker, str(started.spec.get("class_type")), outcome, time.monotonic() - began, sent)


def made_elsewhere(farm: Farm, key: str) -> Done | None:
    """Another run stored this result since this one started: a cache hit when this worker can use it,
    from the store (any worker can read it) or from its own memory. What only another worker's memory
    holds (a model) is made here too: admission sent this node here to spread a model's work over the
    farm (worker/admission.py place_model_loads), not to send its consumers back to that worker."""
    holder, ui = farm.store.lookup(key)
    me = farm.settings.worker_name
    if holder is None:
        return None
    if not holder:
        return Done(ui=ui, ran=False, holder=None)
    if holder == me or farm.store.local(key) is not None:
        return Done(ui=ui, ran=False, holder=me)
    return None


@dataclass(frozen=True)
class RetryElsewhere:
    """The node ran out of memory here, or failed in a way that looks like this worker's fault
    (:func:`worker.blocklist.worker_fault`): run it once more, on ``worker``."""

    worker: str
    why: str = "ran out of memory (freed it)"


def _outcome(farm: Farm, ctx: NodeContext, started: functions.Started) -> Outcome | RetryElsewhere:
    spec, nid = ctx.spec, ctx.nid
    if started.cancelled:
        return Interrupted()
    if started.attempts > farm.settings.max_node_attempts:
        return Failed(ErrorInfo(
            f"Node {nid} ({spec.class_type}) was started {started.attempts - 1} times and its worker died each "
            "time (killed, or out of memory?); giving up.\n",
            "nodefarm.WorkerLost",
        ))
    run = NodeRun(farm, ctx)
    data: dict[str, list[Any]] = {}
    try:
        cls = farm.registry.get(spec.class_type)
        if cls is None:
            raise RuntimeError(f"node class {spec.class_type} is not installed on worker {farm.settings.worker_name}")
        ready = {src: info for src, info in started.sources.items() if info[1] in (DONE, CACHED)}
        try:
            link_values = farm.store.get_many({src: info[0] for src, info in ready.items()},
                                              producers={src: info[2] for src, info in ready.items()}, alive=farm.alive)
        except ResultLost as exc:
            return LostInputs(exc.node_ids)
        if started.resolve is not None:  # an expanded node's second visit: its expansion's results
            return _store(farm, spec.key, CallResult(outputs=expansion.resolve(started.resolve["result"], link_values)))
        data = run.inputs(cls, nid, spec, link_values)
        if spec.deferred and (failure := _validate_deferred(cls, data)) is not None:
            return failure
        _announce_blockers(run, nid, data)
        unevaluated = {n for n, v in spec.inputs.items() if is_link(v) and v[0] not in link_values}
        obj = run.instance(cls, nid, spec.class_type)
        if unevaluated and not callable(getattr(obj, "check_lazy_status", None)):
            lazy.attach_callables(run, cls, spec, data, unevaluated)
            unevaluated = set()
        with torch.inference_mode():  # as ComfyUI runs every node (SaveImage numpy()s its tensors)
            result = run_node(cls, obj, data, node_id=nid, prompt_id=ctx.pid, unevaluated=unevaluated,
                              class_type=spec.class_type)
        if result.need:
            return Pending([spec.inputs[name][0] for name in result.need])
        if result.expand:
            return expansion.expanded(farm, run.state(), nid, result)
        return _store(farm, spec.key, result)
    except face.both("comfy.model_management", "InterruptProcessingException"):
        return Interrupted()
    except Exception as exc:
        if isinstance(exc, face.both("comfy.model_management", "OOM_EXCEPTION")):
            free_memory()
            other = None if started.attempts > 1 else another_worker(farm)
            if other is not None:
                return RetryElsewhere(other)
        log.exception("node %s (%s) of %s failed", nid, spec.class_type, ctx.pid)
        if (other := blocklist.failed(farm, spec.key, spec.class_type, exc, started.attempts)) is not None:
            return RetryElsewhere(other, f"failed ({blocklist.describe(exc)})")
        return Failed(error_info(exc, data))


def _store(farm: Farm, key: str, result: CallResult) -> Done:
    stored = farm.store.put(key, result.outputs, result.ui)
    farm.cache.stored(key)
    if result.ui:
        files.ship_ui_files(farm, result.ui)
    return Done(ui=result.ui, holder=farm.settings.worker_name if stored.local_only else None,
                worker=farm.settings.worker_name, nbytes=stored.nbytes)


def _validate_deferred(cls: type, data: dict[str, list[Any]]) -> Failed | None:
    """Re-run a VALIDATE_INPUTS that rejected a linked input's None at submit time, with real values."""
    from nodes.core.validation import run_custom_validation

    errors = run_custom_validation(cls, data)
    if not errors:
        return None
    return Failed(ErrorInfo(
        "\n".join(f"{e['message']}: {e['details']}" for e in errors) + "\n",
        "custom_validation_failed",
        [],
        {k: [format_value(x) for x in v] for k, v in data.items()},
    ))


def _announce_blockers(run: NodeRun, nid: str, data: dict[str, list[Any]]) -> None:
    """A verbose ExecutionBlocker reaching its first consumer: execution_error, then a silent blocker."""
    blockers = face.both("comfy_execution.graph_utils", "ExecutionBlocker")
    for values in data.values():
        for i, v in enumerate(values):
            if isinstance(v, blockers) and v.message is not None:
                error = ErrorInfo(f"Execution Blocked: {v.message}", "ExecutionBlocked")
                run.emit([("execution_error", execution_error(run.state(), nid, error, None, blocked=True))])
                values[i] = type(v)(None)


class NodeRun:
    """What executing one node of one run may need beyond its inputs, fetched only when needed:
    the whole run state (lazy evaluation, expansion, DYNPROMPT) and the queue item (hidden inputs)."""

    def __init__(self, farm: Farm, ctx: NodeContext) -> None:
        self.farm = farm
        self.ctx = ctx
        self._state: RunState | None = None
        self._item: QueueItem | None = None

    def state(self) -> RunState:
        if self._state is None:
            loaded = runstore.load(self.farm.r, self.ctx.pid)
            self._state = loaded.state if loaded is not None else self.ctx.view()
        return self._state

    def item(self) -> QueueItem:
        if self._item is None:
            self._item = prompt_queue.load_item(self.farm.r, self.ctx.pid) or QueueItem(0, self.ctx.pid, {}, {}, [])
        return self._item

    def emit(self, items: list[tuple[str, Any]]) -> None:
        pipe = self.farm.r.pipeline(transaction=False)
        for event, data in items:
            events.add(pipe, self.ctx.pid, self.ctx.client_id, event, data)
        pipe.execute()

    def hidden(self, nid: str, kinds: set[str]) -> Hidden:
        if not kinds:
            return Hidden(prompt={}, extra_data={}, unique_id=nid)
        item = self.item()
        dyn = None
        if "DYNPROMPT" in kinds:
            from nodes.compat.comfy_execution.graph import DynamicPrompt

            st = self.state()
            dyn = DynamicPrompt(dict(item.prompt))
            for eid, spec in st.nodes.items():
                if spec.parent is not None:
                    dyn.add_ephemeral_node(eid, spec.as_node(), spec.parent, spec.display or eid)
        return Hidden(prompt=dict(item.prompt), extra_data=item.full_extra_data, unique_id=nid, dynprompt=dyn)

    def inputs(self, cls: type, nid: str, spec: NodeSpec, link_values: dict[str, list[list[Any]]]) -> dict[str, list[Any]]:
        server = compat_server.PromptServer.instance
        server.client_id = self.ctx.client_id
        server.last_node_id = display_id(self.ctx.view(), nid) if nid == self.ctx.nid else nid
        server.last_prompt_id = self.ctx.pid
        types = schema.input_types(cls)  # once per node: INPUT_TYPES() may list files or models
        kinds = set(schema.hidden_inputs(cls, types).values())
        return assemble_inputs(cls, spec.as_node(), link_values, self.hidden(nid, kinds), types)

    def instance(self, cls: type, nid: str, class_type: str) -> Any:
        obj = self.farm.objects.get((nid, class_type))
        if obj is None:
            obj = cls()
            self.farm.objects[(nid, class_type)] = obj
        return obj


def free_memory() -> None:
    """After an out-of-memory error: unload this worker's models and give the memory back, as
    ComfyUI does (its model management; our stand-in when the farm runs without --comfyui)."""
    mm = face.live("comfy.model_management")
    for name in ("unload_all_models", "soft_empty_cache"):
        fn = getattr(mm, name, None)
        if callable(fn):
            fn()
    import gc

    gc.collect()


def another_worker(farm: Farm) -> str | None:
    """A live worker other than this one: the least busy that is not blocklisted, else the most recent
    heartbeat first."""
    healthy = blocklist.healthy_others(farm.r, farm.settings)
    if healthy:
        return healthy[0]
    for raw in farm.r.zrevrange(keys.WORKERS, 0, -1):
        name = raw.decode() if isinstance(raw, bytes) else str(raw)
        if name != farm.settings.worker_name and farm.alive(name):
            return name
    return None


def format_value(v: Any) -> Any:
    if v is None or isinstance(v, (int, float, bool, str)):
        return v
    return str(v)


def error_info(exc: BaseException, data: dict[str, list[Any]]) -> ErrorInfo:
    typ = type(exc)
    module = typ.__module__
    name = typ.__qualname__ if module in ("builtins", "__main__") else f"{module}.{typ.__qualname__}"
    message = str(exc)
    if isinstance(exc, face.both("comfy.model_management", "OOM_EXCEPTION")):
        message += "\nThis error means you ran out of memory on your GPU."
    return ErrorInfo(f"{message}\n", name, traceback.format_tb(exc.__traceback__),
                     {k: [format_value(x) for x in v] for k, v in data.items()})

