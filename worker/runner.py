"""The body of the node task: run one node of one run on this worker, then advance the run.

Skips duplicates (Celery delivers at least once), counts attempts (a node that keeps killing its
worker fails the run instead of looping), serves results already stored (another run, or an
identical node of this run, computed them), gathers inputs, calls the node with progress and
interrupt hooks live, stores its outputs and applies the outcome to the run state.
"""

from __future__ import annotations

import hashlib
import json
import logging
import traceback
from typing import Any

from nodes import schema
from nodes.compat import server as compat_server
from nodes.compat.comfy.model_management import InterruptProcessingException
from nodes.compat.comfy_execution.graph_utils import ExecutionBlocker
from worker import events, files, keys, runs, state
from worker.errors import ResultLost
from worker.execute import Hidden, Outcome, assemble_inputs, run_node
from worker.farm import Farm
from worker.graph import is_link, links

log = logging.getLogger("nodefarm.runner")


def format_value(v: Any) -> Any:
    if v is None or isinstance(v, (int, float, bool, str)):
        return v
    return str(v)


def execute_task(farm: Farm, pid: str, nid: str, seq: int) -> None:
    r = farm.r
    pipe = r.pipeline(transaction=False)
    pipe.get(keys.run_state(pid))
    pipe.exists(keys.run_cancel(pid))
    attempts_key = f"{keys.node_attempts(pid, nid)}:{seq}"
    pipe.incr(attempts_key)
    pipe.expire(attempts_key, 86400)
    running_key = keys.worker_running(farm.settings.worker_name)
    pipe.hset(running_key, f"{pid} {nid}", json.dumps([pid, nid, seq]))
    pipe.get(keys.run_deferred(pid))
    raw, cancelled, attempts, _, _, deferred = pipe.execute()
    try:
        if raw is not None:
            _execute_current(farm, runs.decode_state(farm, pid, raw), pid, nid, seq, bool(cancelled), int(attempts), deferred)
    finally:
        farm.current.clear()
        r.hdel(running_key, f"{pid} {nid}")


def _execute_current(farm: Farm, st: dict, pid: str, nid: str, seq: int, cancelled: bool, attempts: int, deferred: bytes | None) -> None:
    if st["end"] is not None or st["st"].get(nid) != "q" or st.get("disp", {}).get(nid, 1) != seq:
        return  # a duplicate delivery, or a node of a run that already ended
    if cancelled:
        runs.transact(farm, pid, lambda s: state.interrupted(s, nid, runs.now_ms()))
        return
    if attempts > farm.settings.max_node_attempts:
        info = {
            "exception_message": (
                f"Node {nid} ({st['graph'][nid].get('class_type')}) was started {attempts - 1} times and its "
                "worker died each time (killed, or out of memory?); giving up.\n"
            ),
            "exception_type": "nodefarm.WorkerLost",
            "traceback": [],
            "current_inputs": {},
        }
        runs.transact(farm, pid, lambda s: state.node_failed(s, nid, info, runs.now_ms()))
        return
    farm.current.update(pid=pid, nid=nid, st=st, deferred=json.loads(deferred) if deferred else {})
    _execute(farm, st, pid, nid, seq)


def _emit(farm: Farm, st: dict, items: list[tuple[str, Any]]) -> None:
    pipe = farm.r.pipeline(transaction=False)
    for event, data in items:
        events.add(pipe, st["pid"], st.get("client_id"), event, data)
    pipe.execute()


def _execute(farm: Farm, st: dict, pid: str, nid: str, seq: int) -> None:
    node = st["graph"][nid]
    key = st["keys"][nid]
    class_type = node["class_type"]
    display = state.display_id(st, nid)
    resolving = nid in st.get("resolve", {})

    # The shared record decides (cache modes evict it); local memory only speeds up reading values.
    if not resolving and farm.store.exists([key]):
        ui = farm.store.get_ui([key]).get(key)
        runs.transact(farm, pid, lambda s: state.node_done(s, nid, ui=ui, ran=False, now_ms=runs.now_ms()))
        return

    cls = farm.registry.get(class_type)
    data: dict[str, list[Any]] = {}
    try:
        if cls is None:
            raise RuntimeError(f"node class {class_type} is not installed on worker {farm.settings.worker_name}")
        if resolving:  # an expanded node's second visit reads its expansion's results, not its inputs
            wanted = [v[0] for socket in st["resolve"][nid] for v in socket if is_link(v)]
        else:
            wanted = [src for _, src, _ in links(node)]
        sources = {src: st["keys"][src] for src in wanted if st["st"].get(src) == "d" or src in st["cached"]}
        try:
            link_values = farm.store.get_many(sources)
        except ResultLost as exc:
            gone = exc.node_ids
            runs.transact(farm, pid, lambda s: state.lost_inputs(s, nid, gone))
            return
        if resolving:
            outcome = _resolve_expansion(st, nid, link_values)
        else:
            _emit(
                farm,
                st,
                [
                    ("progress_state", state.progress_state(st, {nid: (0.0, 1.0)}, only=[])),
                    ("executing", {"node": nid, "display_node": display, "prompt_id": pid}),
                ],
            )
            ctx = NodeRun(farm, st, pid)
            data = ctx.inputs(cls, nid, node, link_values)
            if not ctx.validate_deferred(cls, nid, data):
                return
            _announce_blockers(farm, st, nid, data)
            unevaluated = {n for n, v in node.get("inputs", {}).items() if is_link(v) and v[0] not in link_values}
            obj = ctx.instance(cls, nid, class_type)
            if unevaluated and not callable(getattr(obj, "check_lazy_status", None)):
                ctx.lazy_callables(cls, node, data, unevaluated)
                unevaluated = set()
            outcome = run_node(cls, obj, data, node_id=nid, prompt_id=pid, unevaluated=unevaluated,
                               class_type=class_type)
        if outcome.need:
            need = [node["inputs"][name][0] for name in outcome.need]
            runs.transact(farm, pid, lambda s: state.node_pending(s, nid, need, runs.now_ms()))
            return
        if outcome.expand:
            _expand(farm, st, pid, nid, outcome)
            return
        _finish_node(farm, st, pid, nid, key, outcome)
    except InterruptProcessingException:
        runs.transact(farm, pid, lambda s: state.interrupted(s, nid, runs.now_ms()))
    except Exception as exc:
        log.exception("node %s (%s) of %s failed", nid, class_type, pid)
        info = error_info(exc, data)
        runs.transact(farm, pid, lambda s: state.node_failed(s, nid, info, runs.now_ms()))


def _finish_node(farm: Farm, st: dict, pid: str, nid: str, key: str, outcome: Outcome) -> None:
    holder = farm.store.put(key, outcome.outputs, outcome.ui)
    farm.cache.stored(key)
    if outcome.ui:
        files.ship_ui_files(farm, outcome.ui)
    ui = outcome.ui
    who = farm.settings.worker_name if holder else None
    runs.transact(farm, pid, lambda s: state.node_done(s, nid, ui=ui, now_ms=runs.now_ms(), holder=who))


def _announce_blockers(farm: Farm, st: dict, nid: str, data: dict[str, list[Any]]) -> None:
    """A verbose ExecutionBlocker reaching its first consumer: execution_error, then a silent blocker."""
    for name, values in data.items():
        for i, v in enumerate(values):
            if isinstance(v, ExecutionBlocker) and v.message is not None:
                info = {
                    "prompt_id": st["pid"],
                    "node_id": nid,
                    "node_type": st["graph"][nid]["class_type"],
                    "executed": list(st["executed"]),
                    "exception_message": f"Execution Blocked: {v.message}",
                    "exception_type": "ExecutionBlocked",
                    "traceback": [],
                    "current_inputs": [],
                    "current_outputs": [],
                }
                _emit(farm, st, [("execution_error", info)])
                values[i] = ExecutionBlocker(None)
        data[name] = values


LITERAL_CLASS = "nodefarm.Literal"


def _json_safe(value: Any) -> bool:
    """Whether a constant survives the run state's JSON as itself (tuples would turn into lists)."""
    if isinstance(value, tuple):
        return False
    try:
        json.dumps(value, allow_nan=True)
    except (TypeError, ValueError):
        return False
    return True


def _expand(farm: Farm, st: dict, pid: str, nid: str, outcome: Outcome) -> None:
    """A node returned ``expand`` graphs: register the ephemeral nodes and wait for its result links.

    Constants that JSON cannot carry (tensors, objects: upstream nodes routinely put their input
    values into the graphs they build) become *literal* nodes: the value is stored like a node
    result under a run-unique key, and the input links to it. Literal nodes are done from the start.
    """
    new_graph: dict[str, dict] = {}
    display: dict[str, str] = {}
    literals: dict[str, Any] = {}
    for graph in outcome.expand:
        for new_id, spec in graph.items():
            if new_id in st["graph"] or new_id in new_graph:
                raise RuntimeError(f"Node expansion created a duplicate node id: {new_id}")
            inputs = dict(spec.get("inputs", {}))
            for name, value in inputs.items():
                if not is_link(value) and not _json_safe(value):
                    literals[f"{new_id}#{name}"] = value
                    inputs[name] = [f"{new_id}#{name}", 0]
            new_graph[new_id] = {"class_type": spec["class_type"], "inputs": inputs}
            if spec.get("override_display_id"):
                display[new_id] = spec["override_display_id"]
    result = [list(socket) for socket in outcome.outputs]
    for i, socket in enumerate(result):
        for j, value in enumerate(socket):
            if not is_link(value) and not _json_safe(value):
                literals[f"{nid}#result{i}.{j}"] = value
                socket[j] = [f"{nid}#result{i}.{j}", 0]
    missing = sorted({n["class_type"] for n in new_graph.values() if n["class_type"] not in farm.registry.classes})
    if missing:
        raise RuntimeError(f"Node expansion uses unknown node types: {', '.join(missing)}")
    facts = {n: runs.node_facts(farm.registry.get(spec["class_type"])) for n, spec in new_graph.items()}
    literal_keys = {lit: state.UNIQUE_KEY + hashlib.sha256(f"{pid}/{lit}".encode()).hexdigest() for lit in literals}
    holders: dict[str, str | None] = {}
    for lit, value in literals.items():
        local_only = farm.store.put(literal_keys[lit], [[value]], None)
        farm.cache.stored(literal_keys[lit])
        holders[lit] = farm.settings.worker_name if local_only else None
    item = runs.load_item(farm.r, pid) or [0, pid, {}, {}, []]
    new_keys = runs.graph_keys(farm, pid, new_graph, item[3], known={**st["keys"], **literal_keys})
    new_keys.update(literal_keys)
    for lit in literals:
        new_graph[lit] = {"class_type": LITERAL_CLASS, "inputs": {}}
    runs.transact(
        farm,
        pid,
        lambda s: state.node_expanded(
            s, nid, new_graph, facts, new_keys, result, display, runs.now_ms(), done=holders
        ),
    )


class NodeRun:
    """Helpers for executing one node of one run on this worker."""

    def __init__(self, farm: Farm, st: dict, pid: str) -> None:
        self.farm = farm
        self.st = st
        self.pid = pid
        self._item: list | None = None

    def _queue_item(self) -> list:
        # the submitted prompt and extra data, read only by nodes that need them (hidden inputs)
        if self._item is None:
            self._item = runs.load_item(self.farm.r, self.pid) or [0, self.pid, {}, {}, []]
        return self._item

    @property
    def prompt(self) -> dict:
        return dict(self._queue_item()[2])

    @property
    def extra(self) -> dict:
        return dict(self._queue_item()[3])

    def hidden(self, nid: str, kinds: set[str]) -> Hidden:
        if not kinds:
            return Hidden(prompt={}, extra_data={}, unique_id=nid)
        dyn = None
        if "DYNPROMPT" in kinds:
            from nodes.compat.comfy_execution.graph import DynamicPrompt

            dyn = DynamicPrompt(self.prompt)
            for eid, (parent, disp) in self.st["eph"].items():
                dyn.add_ephemeral_node(eid, self.st["graph"][eid], parent, disp)
        return Hidden(prompt=self.prompt, extra_data=self.extra, unique_id=nid, dynprompt=dyn)

    def inputs(self, cls: type, nid: str, node: dict, link_values: dict[str, list[list[Any]]]) -> dict[str, list[Any]]:
        compat_server.PromptServer.instance.client_id = self.st.get("client_id")
        compat_server.PromptServer.instance.last_node_id = state.display_id(self.st, nid)
        compat_server.PromptServer.instance.last_prompt_id = self.pid
        kinds = set(schema.hidden_inputs(cls).values())
        return assemble_inputs(cls, node, link_values, self.hidden(nid, kinds))

    def instance(self, cls: type, nid: str, class_type: str) -> Any:
        obj = self.farm.objects.get((nid, class_type))
        if obj is None:
            obj = cls()
            self.farm.objects[(nid, class_type)] = obj
        return obj

    def validate_deferred(self, cls: type, nid: str, data: dict[str, list[Any]]) -> bool:
        """Re-run a VALIDATE_INPUTS that rejected a linked input's None at submit time, with real values."""
        if nid not in self.farm.current.get("deferred", {}):
            return True
        from nodes.validation import run_custom_validation

        errors = run_custom_validation(cls, data)
        if not errors:
            return True
        info = {
            "exception_message": "\n".join(f"{e['message']}: {e['details']}" for e in errors) + "\n",
            "exception_type": "custom_validation_failed",
            "traceback": [],
            "current_inputs": {k: [format_value(x) for x in v] for k, v in data.items()},
        }
        runs.transact(self.farm, self.pid, lambda s: state.node_failed(s, nid, info, runs.now_ms()))
        return False

    def lazy_callables(self, cls: type, node: dict, data: dict[str, list[Any]], unevaluated: set[str]) -> None:
        """The seed's extension: an unevaluated lazy input of a node without check_lazy_status arrives
        as a zero-argument callable that computes it on demand (never called, never computed)."""
        lazy = runs.node_facts(cls).lazy
        for name in unevaluated & lazy:
            src, socket = node["inputs"][name][0], int(node["inputs"][name][1])

            def thunk(src: str = src, socket: int = socket) -> Any:
                values = self.evaluate(src)[socket]
                return values[0] if len(values) == 1 else values

            data[name] = [thunk]

    def evaluate(self, nid: str, depth: int = 0) -> list[list[Any]]:
        """Compute a node (and what it needs) right here, storing results under their keys."""
        if depth > 200:
            raise RuntimeError("lazy evaluation nested too deeply (a cycle?)")
        key = self.st["keys"][nid]
        if self.farm.store.exists([key]):
            return self.farm.store.get_many({nid: key})[nid]
        node = self.st["graph"][nid]
        cls = self.farm.registry.get(node["class_type"])
        if cls is None:
            raise RuntimeError(f"node class {node['class_type']} is not installed")
        facts = runs.node_facts(cls)
        values = {src: self.evaluate(src, depth + 1) for name, src, _ in links(node) if name not in facts.lazy}
        _emit(self.farm, self.st, [("executing", {"node": nid, "display_node": state.display_id(self.st, nid), "prompt_id": self.pid})])
        data = self.inputs(cls, nid, node, values)
        obj = self.instance(cls, nid, node["class_type"])
        unevaluated = {n for n, v in node.get("inputs", {}).items() if is_link(v) and v[0] not in values}
        self.lazy_callables(cls, node, data, unevaluated)
        outcome = run_node(cls, obj, data, node_id=nid, prompt_id=self.pid, unevaluated=set(),
                           class_type=node["class_type"])
        if outcome.expand:
            outcome = self.evaluate_expansion(nid, outcome, depth)
        self.farm.store.put(key, outcome.outputs, outcome.ui)
        self.farm.cache.stored(key)
        if outcome.ui:
            files.ship_ui_files(self.farm, outcome.ui)
            _emit(self.farm, self.st, [("executed", {"node": nid, "display_node": state.display_id(self.st, nid),
                                                     "output": outcome.ui, "prompt_id": self.pid})])
        return outcome.outputs

    def evaluate_expansion(self, nid: str, outcome: Outcome, depth: int) -> Outcome:
        """A node evaluated on demand expanded: evaluate its subgraph here too (in this task's copy
        of the run state) and substitute the results into its outputs."""
        new_graph: dict[str, dict] = {}
        for graph in outcome.expand:
            for new_id, spec in graph.items():
                new_graph[new_id] = {"class_type": spec["class_type"], "inputs": spec.get("inputs", {})}
                self.st["eph"][new_id] = [nid, spec.get("override_display_id") or nid]
        self.st["graph"].update(new_graph)
        self.st["keys"].update(runs.graph_keys(self.farm, self.pid, new_graph, self.extra, known=self.st["keys"]))
        values = {v[0]: self.evaluate(v[0], depth + 1) for socket in outcome.outputs for v in socket if is_link(v)}
        return _resolve_expansion({"resolve": {nid: outcome.outputs}}, nid, values)


def _resolve_expansion(st: dict, nid: str, link_values: dict[str, list[list[Any]]]) -> Outcome:
    """Second visit of an expanded node: substitute the expanded graph's results into its outputs."""
    result = st["resolve"][nid]
    outputs: list[list[Any]] = []
    for socket_values in result:
        values: list[Any] = []
        for v in socket_values:
            if is_link(v):
                values.extend(link_values[v[0]][int(v[1])])
            else:
                values.append(v)
        outputs.append(values)
    return Outcome(outputs=outputs)


def error_info(exc: BaseException, data: dict[str, list[Any]]) -> dict:
    typ = type(exc)
    module = typ.__module__
    name = typ.__qualname__ if module in ("builtins", "__main__") else f"{module}.{typ.__qualname__}"
    message = str(exc)
    try:
        from nodes.compat.comfy.model_management import OOM_EXCEPTION

        if isinstance(exc, OOM_EXCEPTION):
            message += "\nThis error means you ran out of memory on your GPU."
    except ImportError:
        pass
    return {
        "exception_message": f"{message}\n",
        "exception_type": name,
        "traceback": traceback.format_tb(exc.__traceback__),
        "current_inputs": {k: [format_value(x) for x in v] for k, v in data.items()},
    }
