"""Calling one node the way ComfyUI does (spec/comfyui.md sections 5.3-5.7).

List mapping (:mod:`nodes.core.listmap`; inputs come from :mod:`nodes.core.inputs`),
OUTPUT_IS_LIST, ExecutionBlocker propagation, lazy
``check_lazy_status``, ``{"ui", "result", "expand"}`` returns, and coroutine node functions.
No Redis here: inputs arrive resolved, the result goes back to :mod:`worker.task`.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from nodes import face, schema
from nodes.compat.comfy_execution.graph_utils import ExecutionBlocker
from nodes.core.listmap import slices


@dataclass
class CallResult:
    """What one execution of a node produced."""

    outputs: list[list[Any]] = field(default_factory=list)  # socket -> values (one per call)
    ui: dict | None = None
    need: list[str] = field(default_factory=list)  # lazy input names to evaluate first
    expand: list[dict] = field(default_factory=list)  # graphs returned by calls, in call order
    blocked_messages: list[str] = field(default_factory=list)  # verbose ExecutionBlocker messages


def _run(value: Any) -> Any:
    if inspect.isawaitable(value):
        return asyncio.run(_await(value))
    return value


async def _await(value: Any) -> Any:
    return await value


def _accepted(fn: Callable, kwargs: dict[str, Any]) -> dict[str, Any]:
    try:
        spec = inspect.getfullargspec(fn)
    except TypeError:
        return kwargs
    if spec.varkw is not None:
        return kwargs
    names = set(spec.args) | set(spec.kwonlyargs)
    return {k: v for k, v in kwargs.items() if k in names}


def map_over_list(
    data: dict[str, list[Any]],
    fn: Callable[..., Any],
    *,
    input_is_list: bool,
    node_id: str,
    prompt_id: str,
    filter_kwargs: bool = False,
) -> list[Any]:
    """Call ``fn`` once with whole lists, or once per index with the last element repeated.

    A call whose inputs hold an ExecutionBlocker is skipped and yields that blocker.
    """
    results: list[Any] = []
    blockers = face.both("comfy_execution.graph_utils", "ExecutionBlocker")
    builders = face.both("comfy_execution.graph_utils", "GraphBuilder")
    node_context = face.live("comfy_execution.utils").CurrentNodeContext
    for index, kwargs in slices(data, input_is_list):
        blocker = next(
            (x for v in kwargs.values() for x in (v if input_is_list else [v]) if isinstance(x, blockers)),
            None,
        )
        if blocker is not None:
            results.append(blocker)
            continue
        if filter_kwargs:
            kwargs = _accepted(fn, kwargs)
        for builder in builders:
            builder.set_default_prefix(node_id, index, 0)
        with node_context(prompt_id, node_id, index):
            results.append(_run(fn(**kwargs)))
    return results


def _comfyui_v3(cls: type) -> Any:
    """The user's ComfyUI's ``comfy_api.internal`` when ``cls`` is one of its V3 nodes, else None."""
    internal = sys.modules.get("comfy_api.internal")
    base = getattr(internal, "_ComfyNodeInternal", None)
    return internal if base is not None and isinstance(cls, type) and issubclass(cls, base) else None


def bound(cls: type, obj: Any, name: str) -> Callable[..., Any]:
    """The callable ComfyUI calls for method ``name`` of a node (FUNCTION, check_lazy_status, ...).

    A V1 node (and a V3 node of our stand-in ``comfy_api``): the instance's method. A V3 node of
    the user's ComfyUI is called as ComfyUI calls it: on a per-call clone of the class whose
    ``cls.hidden`` holds the hidden inputs, through its locked-method wrapper."""
    internal = _comfyui_v3(cls)
    if internal is None:
        return getattr(obj, name)  # type: ignore[no-any-return]
    hidden_enum = face.live("comfy_api.latest").io.Hidden
    kinds = schema.hidden_inputs(cls)

    def call(**kwargs: Any) -> Any:
        hidden = {hidden_enum(kind): kwargs.pop(arg) for arg, kind in kinds.items() if arg in kwargs}
        cls.VALIDATE_CLASS()  # type: ignore[attr-defined]
        clone = cls.PREPARE_CLASS_CLONE(hidden)  # type: ignore[attr-defined]
        return internal.make_locked_method_func(cls, name, clone)(**kwargs)

    call.__signature__ = inspect.signature(getattr(cls, name))  # type: ignore[attr-defined]
    return call


def _ui_items(value: Any) -> list[Any]:
    """One ui value as the list ComfyUI sends: an iterable (a tuple, a ``map``, a generator) gives
    its elements; a str, bytes, dict or scalar is one element."""
    if isinstance(value, list):
        return value
    if isinstance(value, Iterable) and not isinstance(value, (str, bytes, bytearray, dict)):
        return list(value)
    return [value]


def _merge_ui(uis: list[dict]) -> dict | None:
    """Every call's ui, concatenated per key of the first (upstream's ``[y for x in uis for y in x[k]]``)."""
    if not uis:
        return None
    merged: dict[str, list] = {}
    for key in uis[0]:
        merged[key] = []
        for ui in uis:
            value = ui.get(key)
            if value is None:
                continue
            merged[key].extend(_ui_items(value))
    return merged


def run_node(
    cls: type,
    obj: Any,
    data: dict[str, list[Any]],
    *,
    node_id: str,
    prompt_id: str,
    unevaluated: set[str],
    class_type: str | None = None,
) -> CallResult:
    """Execute ``obj`` (an instance of ``cls``) on assembled inputs. May ask for lazy inputs first.

    ``check_lazy_status`` is called before every execution, as upstream does (spec 5.5); only the
    names it returns that are still ``unevaluated`` links count as requests. A class with an
    ``expand_node`` classmethod expands through it instead of calling its function
    (docs/expand_node.md).
    """
    input_is_list = schema.input_is_list(cls)
    check = bound(cls, obj, "check_lazy_status") if callable(getattr(obj, "check_lazy_status", None)) else None
    if check is not None:
        asked = map_over_list(
            data, check, input_is_list=input_is_list, node_id=node_id, prompt_id=prompt_id, filter_kwargs=True
        )
        need: list[str] = []
        for names in asked:
            if isinstance(names, list):
                need += [n for n in names if n in unevaluated and n not in need]
        if need:
            return CallResult(need=need)
    if callable(getattr(cls, "expand_node", None)):
        expanded = call_expand_node(cls, data, node_id=node_id, prompt_id=prompt_id,
                                    class_type=class_type or cls.__name__)
        if expanded is not None:
            return expanded
    fn = bound(cls, obj, cls.FUNCTION)  # type: ignore[attr-defined]
    returns = map_over_list(data, fn, input_is_list=input_is_list, node_id=node_id, prompt_id=prompt_id)
    return normalize(cls, as_v1_returns(returns, len(schema.return_types(cls))))


def as_v1_returns(returns: list[Any], n_out: int) -> list[Any]:
    """Returns of the user's ComfyUI's V3 nodes (``io.NodeOutput``) and its ExecutionBlocker in the
    V1 shapes :func:`normalize` reads: ``{"result", "ui", "expand"}`` dicts and tuples."""
    blockers = face.both("comfy_execution.graph_utils", "ExecutionBlocker")
    output_type = getattr(sys.modules.get("comfy_api.internal"), "_NodeOutputInternal", None)
    return [_as_v1(r, n_out, blockers, output_type) for r in returns]


def _as_v1(r: Any, n_out: int, blockers: tuple[type, ...], output_type: Any) -> Any:
    if isinstance(r, dict) and isinstance(r.get("result"), blockers):
        return {**r, "result": (r["result"],) * n_out}
    if isinstance(r, blockers):
        return (r,) * n_out
    if output_type is None or not isinstance(r, output_type):
        return r
    out: dict[str, Any] = {}
    ui = getattr(r, "ui", None)
    if ui is not None:
        out["ui"] = ui if isinstance(ui, dict) else ui.as_dict()
    result = getattr(r, "result", None)
    if getattr(r, "block_execution", None) is not None:
        result = (blockers[0](r.block_execution),) * n_out
    out["result"] = () if result is None else result
    if getattr(r, "expand", None) is not None:
        out["expand"] = r.expand
    return out


# ---- expand_node: the seed's expansion hook (docs/expand_node.md) --------------------------------


@dataclass
class ExpandNodeView:
    """The ``node`` argument of ``expand_node(cls, node, context)``."""

    id: str
    class_type: str
    inputs: dict[str, Any]


@dataclass
class ExpandContext:
    """The ``context`` argument of ``expand_node(cls, node, context)``."""

    prompt_id: str
    unique_id: str
    list_index: int = 0


class ExpandSpecError(ValueError):
    """An ``expand_node`` return that does not follow docs/expand_node.md."""


_NOT_EXPANDED = object()


def call_expand_node(
    cls: type, data: dict[str, list[Any]], *, node_id: str, prompt_id: str, class_type: str
) -> CallResult | None:
    """Call ``cls.expand_node`` once per list element and turn its returns into an expansion.

    Returns None when ``expand_node`` returned None (the node then runs its function as usual).
    """
    hidden = set(schema.hidden_inputs(cls))
    n_out = len(schema.return_types(cls))

    def one(**kwargs: Any) -> Any:
        ctx = face.live("comfy_execution.utils").get_executing_context()
        index = ctx.list_index if ctx is not None and ctx.list_index is not None else 0
        view = ExpandNodeView(node_id, class_type, {k: v for k, v in kwargs.items() if k not in hidden})
        spec = cls.expand_node(view, ExpandContext(prompt_id, node_id, index))  # type: ignore[attr-defined]
        if spec is None:
            return _NOT_EXPANDED
        graph, outputs = expansion_from_spec(spec, n_out, f"{node_id}.{index}.0.")
        return {"result": outputs, "expand": graph}

    returns = map_over_list(data, one, input_is_list=schema.input_is_list(cls), node_id=node_id, prompt_id=prompt_id)
    if any(r is _NOT_EXPANDED for r in returns):
        return None
    return normalize(cls, returns)


def expansion_from_spec(spec: Any, n_outputs: int, prefix: str) -> tuple[dict[str, dict], tuple[Any, ...]]:
    """``{"nodes", "connections", "outputs"}`` -> (expansion graph with ids ``prefix + id``, result links)."""
    if not isinstance(spec, dict):
        raise ExpandSpecError(f"expand_node must return a dict with 'nodes', got {type(spec).__name__}")
    entries = spec.get("nodes") or []
    if not isinstance(entries, (list, tuple)):
        raise ExpandSpecError("expand_node: 'nodes' must be a list")
    graph: dict[str, dict] = {}
    order: list[str] = []
    named: dict[str, str] = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("type", entry.get("class_type")), str):
            raise ExpandSpecError(f"expand_node: nodes[{i}] must be a dict with a 'type'")
        local = str(entry["id"]) if entry.get("id") is not None else str(i + 1)
        full = prefix + local
        if full in graph:
            raise ExpandSpecError(f"expand_node: two nodes have the id {local!r}")
        inputs = entry.get("inputs") or {}
        if not isinstance(inputs, dict):
            raise ExpandSpecError(f"expand_node: nodes[{i}]['inputs'] must be a dict")
        graph[full] = {"class_type": entry.get("type", entry.get("class_type")), "inputs": dict(inputs)}
        order.append(full)
        if entry.get("id") is not None:
            named[local] = full

    def ref(value: Any, where: str) -> str:
        if isinstance(value, int) and not isinstance(value, bool):
            if 0 <= value < len(order):
                return order[value]
            raise ExpandSpecError(f"expand_node: {where}: no node at index {value}")
        if isinstance(value, str) and value in named:
            return named[value]
        raise ExpandSpecError(f"expand_node: {where}: {value!r} is neither a node index nor a node id")

    def source(value: Any, where: str) -> list:
        if not isinstance(value, (list, tuple)) or not 1 <= len(value) <= 2:
            raise ExpandSpecError(f"expand_node: {where} must be [node, output_index]")
        return [ref(value[0], where), int(value[1]) if len(value) == 2 else 0]

    for j, conn in enumerate(spec.get("connections") or []):
        where = f"connections[{j}]"
        if not isinstance(conn, dict) or "to" not in conn:
            raise ExpandSpecError(f"expand_node: {where} must be a dict with 'to' (got {conn!r})")
        to = conn["to"]
        if not isinstance(to, (list, tuple)) or len(to) != 2 or not isinstance(to[1], str):
            raise ExpandSpecError(f"expand_node: {where}['to'] must be [node, input_name]")
        target = ref(to[0], where)
        if "from" in conn:
            graph[target]["inputs"][to[1]] = source(conn["from"], where + "['from']")
        elif "value" in conn:
            graph[target]["inputs"][to[1]] = conn["value"]
        else:
            raise ExpandSpecError(f"expand_node: {where} needs 'from' or 'value'")

    if spec.get("outputs") is not None:
        outputs = [source(o, f"outputs[{k}]") for k, o in enumerate(spec["outputs"])]
    elif order:
        outputs = [[order[-1], 0]]
    else:
        raise ExpandSpecError("expand_node: no nodes and no 'outputs'")
    result = tuple(outputs[:n_outputs]) + (None,) * max(0, n_outputs - len(outputs))
    return graph, result


def normalize(cls: type, returns: list[Any]) -> CallResult:
    """Merge per-call returns into ComfyUI's cached form: ``outputs[socket] -> values``.

    There are at least ``len(RETURN_TYPES)`` sockets, and one per returned value past them: like
    upstream's ``merge_result_data``, every value a call returns is kept, so a link past the declared
    outputs of a ``ByPassTypeTuple`` node reaches it. A call that returned fewer values gives None.
    """
    n_out = len(schema.return_types(cls))
    is_list = schema.output_is_list(cls)
    outcome = CallResult()
    uis: list[dict] = []
    results: list[tuple[Any, ...] | ExecutionBlocker] = []
    for r in returns:
        result: Any
        if isinstance(r, dict):
            if r.get("ui") is not None:
                uis.append(r["ui"])
            if "expand" in r and r["expand"] is not None:
                outcome.expand.append(r["expand"])
            result = r.get("result", ())
        elif r is None:
            result = ()
        else:
            result = r
        if not isinstance(result, (list, tuple, ExecutionBlocker)):
            result = (result,)
        results.append(result if isinstance(result, ExecutionBlocker) else tuple(result))
    width = max([n_out, *(len(r) for r in results if not isinstance(r, ExecutionBlocker))])
    outcome.outputs = [[] for _ in range(width)]
    for result in results:
        for i in range(width):
            if isinstance(result, ExecutionBlocker):  # a blocked call blocks every output
                value: Any = result
            else:
                value = result[i] if i < len(result) else None
            if i < len(is_list) and is_list[i] and isinstance(value, (list, tuple)):
                outcome.outputs[i].extend(value)
            else:
                outcome.outputs[i].append(value)
    outcome.ui = _merge_ui(uis)
    return outcome
