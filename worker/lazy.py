"""Lazy inputs that arrive as callables (the seed's extension, docs/architecture.md deviations).

A lazy input of a node without ``check_lazy_status`` arrives as a zero-argument callable. Calling
it computes the source right here, in this task (and what that source needs, recursively), storing
every result under its cache key like any node result; a callable never called computes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nodes.core.graph import is_link, links
from nodes.core.state import NodeSpec, display_id
from worker import admission, expansion, files
from worker.execute import CallResult, run_node

if TYPE_CHECKING:
    from worker.task import NodeRun

MAX_DEPTH = 200


def attach_callables(run: NodeRun, cls: type, spec: NodeSpec, data: dict[str, list[Any]], unevaluated: set[str]) -> None:
    """Give each unevaluated lazy input a thunk that evaluates its source on demand."""
    for name in unevaluated & admission.node_facts(cls).lazy:
        src, socket = spec.inputs[name][0], int(spec.inputs[name][1])
        data[name] = [_thunk(run, src, socket)]


def _thunk(run: NodeRun, src: str, socket: int) -> Callable[[], Any]:
    def thunk() -> Any:
        values = evaluate(run, src)[socket]
        return values[0] if len(values) == 1 else values

    return thunk


def evaluate(run: NodeRun, nid: str, depth: int = 0) -> list[list[Any]]:
    """Compute a node (and what it needs) right here, storing results under their keys."""
    if depth > MAX_DEPTH:
        raise RuntimeError("lazy evaluation nested too deeply (a cycle?)")
    farm, st = run.farm, run.state()
    spec = st.nodes[nid]
    if farm.store.local(spec.key) is not None or farm.store.exists([spec.key]):
        return farm.store.get_many({nid: spec.key})[nid]
    cls = farm.registry.get(spec.class_type)
    if cls is None:
        raise RuntimeError(f"node class {spec.class_type} is not installed")
    lazy = admission.node_facts(cls).lazy
    values = {src: evaluate(run, src, depth + 1) for name, src, _ in links(spec.as_node()) if name not in lazy}
    run.emit([("executing", {"node": nid, "display_node": display_id(st, nid), "prompt_id": st.pid})])
    data = run.inputs(cls, nid, spec, values)
    obj = run.instance(cls, nid, spec.class_type)
    unevaluated = {n for n, v in spec.inputs.items() if is_link(v) and v[0] not in values}
    attach_callables(run, cls, spec, data, unevaluated)
    result = run_node(cls, obj, data, node_id=nid, prompt_id=st.pid, unevaluated=set(), class_type=spec.class_type)
    if result.expand:
        result = _evaluate_expansion(run, nid, result, depth)
    farm.store.put(spec.key, result.outputs, result.ui)
    farm.cache.stored(spec.key)
    if result.ui:
        files.ship_ui_files(farm, result.ui)
        run.emit([("executed", {"node": nid, "display_node": display_id(st, nid), "output": result.ui, "prompt_id": st.pid})])
    return result.outputs


def _evaluate_expansion(run: NodeRun, nid: str, result: CallResult, depth: int) -> CallResult:
    """A node evaluated on demand expanded: evaluate its subgraph here too (in this task's copy of
    the run state, never written back) and substitute the results into its outputs."""
    st = run.state()
    outcome = expansion.expanded(run.farm, st, nid, result)
    st.nodes.update(outcome.nodes)
    values = {v[0]: evaluate(run, v[0], depth + 1) for socket in outcome.result for v in socket if is_link(v)}
    return CallResult(outputs=expansion.resolve(outcome.result, values))
