"""Node expansion (spec/comfyui.md 5.7): a node that returns ``expand`` graphs instead of values.

The first visit registers the ephemeral nodes (:func:`expanded` builds the :class:`Expanded`
outcome); once the links of the node's result are computed, a second visit substitutes their
values (:func:`resolve`). Constants that JSON cannot carry (tensors, objects: nodes routinely put
their input values into the graphs they build) become *literal* nodes: the value is stored like a
node result under a run-unique key, and the input links to it. Literal nodes are done from the start.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from nodes.core.graph import is_link
from nodes.core.signature import UNIQUE
from nodes.core.state import Expanded, NodeSpec, RunState, ephemeral_spec
from worker import admission
from worker.execute import CallResult
from worker.farm import Farm

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


def expanded(farm: Farm, state: RunState, nid: str, result: CallResult) -> Expanded:
    """The outcome of a node whose call returned ``expand`` graphs (``state``: the run as loaded)."""
    new_graph: dict[str, dict] = {}
    display: dict[str, str] = {}
    literals: dict[str, Any] = {}
    for graph in result.expand:
        for new_id, spec in graph.items():
            if new_id in state.nodes or new_id in new_graph:
                raise RuntimeError(f"Node expansion created a duplicate node id: {new_id}")
            inputs = dict(spec.get("inputs", {}))
            for name, value in inputs.items():
                if not is_link(value) and not _json_safe(value):
                    literals[f"{new_id}#{name}"] = value
                    inputs[name] = [f"{new_id}#{name}", 0]
            new_graph[new_id] = {"class_type": spec["class_type"], "inputs": inputs}
            if spec.get("override_display_id"):
                display[new_id] = spec["override_display_id"]
    links = [list(socket) for socket in result.outputs]
    for i, socket in enumerate(links):
        for j, value in enumerate(socket):
            if not is_link(value) and not _json_safe(value):
                literals[f"{nid}#result{i}.{j}"] = value
                socket[j] = [f"{nid}#result{i}.{j}", 0]
    missing = sorted({n["class_type"] for n in new_graph.values() if n["class_type"] not in farm.registry.classes})
    if missing:
        raise RuntimeError(f"Node expansion uses unknown node types: {', '.join(missing)}")
    pid = state.pid
    literal_keys = {lit: UNIQUE + hashlib.sha256(f"{pid}/{lit}".encode()).hexdigest() for lit in literals}
    done: dict[str, str | None] = {}
    for lit, value in literals.items():
        stored = farm.store.put(literal_keys[lit], [[value]], None)
        farm.cache.stored(literal_keys[lit])
        done[lit] = farm.settings.worker_name if stored.local_only else None
    if literals:  # a literal has no recipe to recompute it from: readable by every worker before it is used
        farm.store.flush()
    known = {**{n: s.key for n, s in state.nodes.items()}, **literal_keys}
    new_keys = admission.node_keys(farm, pid, new_graph, known=known)
    specs: dict[str, NodeSpec] = {}
    for new_id, node in new_graph.items():
        facts = admission.node_facts(farm.registry.get(node["class_type"]))
        specs[new_id] = ephemeral_spec(state, nid, specs, display.get(new_id), class_type=node["class_type"],
                                       inputs=node["inputs"], key=new_keys[new_id], lazy=facts.lazy,
                                       raw_link=facts.raw_link, output=facts.output)
    for lit in literals:
        specs[lit] = ephemeral_spec(state, nid, specs, None, class_type=LITERAL_CLASS, inputs={}, key=literal_keys[lit])
    return Expanded(specs, links, done)


def resolve(result: list[Any], link_values: dict[str, list[list[Any]]]) -> list[list[Any]]:
    """Second visit of an expanded node: its outputs, with the expansion's results substituted."""
    outputs: list[list[Any]] = []
    for socket_values in result:
        values: list[Any] = []
        for v in socket_values:
            if is_link(v):
                values.extend(link_values[v[0]][int(v[1])])
            else:
                values.append(v)
        outputs.append(values)
    return outputs
