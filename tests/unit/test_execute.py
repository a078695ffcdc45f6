"""Calling one node the way ComfyUI does (worker/execute.py; spec sections 5.3-5.7), pure."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from nodes.compat.comfy_execution.graph_utils import ExecutionBlocker, GraphBuilder
from nodes.compat.comfy_execution.utils import get_executing_context
from nodes.core.inputs import Hidden, assemble_inputs
from worker.execute import map_over_list, normalize, run_node


def call_map(data: dict[str, list[Any]], fn: Any, input_is_list: bool = False, **kw: Any) -> list[Any]:
    return map_over_list(data, fn, input_is_list=input_is_list, node_id="7", prompt_id="P", **kw)


# ---- list mapping --------------------------------------------------------------------------------


def test_called_once_per_element_with_shorter_lists_repeating_their_last() -> None:
    calls: list[tuple] = []

    def fn(a: Any, b: Any, c: Any) -> tuple:
        calls.append((a, b, c))
        return (a,)

    results = call_map({"a": [1, 2, 3], "b": ["x"], "c": [10, 20]}, fn)
    assert calls == [(1, "x", 10), (2, "x", 20), (3, "x", 20)]
    assert results == [(1,), (2,), (3,)]


def test_input_is_list_gets_whole_lists_in_one_call() -> None:
    calls: list[dict] = []

    def fn(**kw: Any) -> tuple:
        calls.append(kw)
        return (sum(kw["a"]),)

    assert call_map({"a": [1, 2, 3], "b": ["x"]}, fn, input_is_list=True) == [(6,)]
    assert calls == [{"a": [1, 2, 3], "b": ["x"]}]


def test_no_inputs_means_one_call_without_arguments() -> None:
    assert call_map({}, lambda: ("ok",)) == [("ok",)]


def test_a_blocked_element_skips_its_call_and_yields_the_blocker() -> None:
    blocker = ExecutionBlocker(None)
    seen: list[Any] = []

    def fn(a: Any) -> tuple:
        seen.append(a)
        return (a * 2,)

    results = call_map({"a": [1, blocker, 3]}, fn)
    assert seen == [1, 3]
    assert results == [(2,), blocker, (6,)]


def test_input_is_list_is_blocked_by_any_blocker_in_any_list() -> None:
    blocker = ExecutionBlocker("stop")
    results = call_map({"a": [1, blocker], "b": [2]}, lambda **kw: pytest.fail("called"), input_is_list=True)
    assert results == [blocker]


def test_filter_kwargs_passes_only_the_arguments_the_function_names() -> None:
    def check_lazy_status(a: Any) -> list[str]:
        return ["a"] if a is None else []

    assert call_map({"a": [None], "b": [1], "unique_id": ["7"]}, check_lazy_status, filter_kwargs=True) == [["a"]]


def test_coroutine_functions_are_awaited() -> None:
    async def fn(a: Any) -> tuple:
        await asyncio.sleep(0)
        return (a + 1,)

    assert call_map({"a": [1, 2]}, fn) == [(2,), (3,)]


def test_each_call_runs_in_its_executing_context_and_builder_prefix() -> None:
    seen: list[tuple] = []

    def fn(a: Any) -> tuple:
        ctx = get_executing_context()
        seen.append((tuple(ctx) if ctx else None, GraphBuilder().prefix))
        return (a,)

    call_map({"a": [1, 2]}, fn)
    assert seen == [(("P", "7", 0), "7.0.0."), (("P", "7", 1), "7.1.0.")]
    assert get_executing_context() is None


# ---- normalize: merging the calls' returns -------------------------------------------------------


class TwoOut:
    RETURN_TYPES = ("FLOAT", "STRING")
    FUNCTION = "run"


class ListOut:
    RETURN_TYPES = ("FLOAT", "INT")
    OUTPUT_IS_LIST = (True, False)
    FUNCTION = "run"


class NoOut:
    RETURN_TYPES = ()
    FUNCTION = "run"
    OUTPUT_NODE = True


def test_tuples_are_collected_per_socket() -> None:
    out = normalize(TwoOut, [(1.0, "a"), (2.0, "b")])
    assert out.outputs == [[1.0, 2.0], ["a", "b"]]
    assert out.ui is None and out.expand == [] and out.need == []


def test_output_is_list_sockets_concatenate_the_calls_lists() -> None:
    out = normalize(ListOut, [([1.0, 2.0], 5), ([3.0], 6)])
    assert out.outputs == [[1.0, 2.0, 3.0], [5, 6]]


def test_a_blocker_return_blocks_every_output() -> None:
    blocker = ExecutionBlocker("no")
    out = normalize(TwoOut, [blocker, (2.0, "b")])
    assert out.outputs == [[blocker, 2.0], [blocker, "b"]]
    out = normalize(TwoOut, [{"result": blocker}])
    assert out.outputs == [[blocker], [blocker]]


def test_a_blocked_element_inside_an_output_list_stays_an_element() -> None:
    blocker = ExecutionBlocker(None)
    out = normalize(ListOut, [([1.0, blocker, 3.0], 1)])
    assert out.outputs[0] == [1.0, blocker, 3.0]


def test_ui_of_all_calls_is_merged_with_the_keys_of_the_first() -> None:
    returns = [
        {"ui": {"images": [{"filename": "a.png"}], "text": ["x"]}, "result": (1.0, "a")},
        {"ui": {"images": [{"filename": "b.png"}], "extra": ["dropped"]}, "result": (2.0, "b")},
    ]
    out = normalize(TwoOut, returns)
    assert out.ui == {"images": [{"filename": "a.png"}, {"filename": "b.png"}], "text": ["x"]}
    assert out.outputs == [[1.0, 2.0], ["a", "b"]]


def test_ui_only_return_of_an_output_node() -> None:
    out = normalize(NoOut, [{"ui": {"text": ["hi"]}}])
    assert out.outputs == [] and out.ui == {"text": ["hi"]}


def test_expand_graphs_are_collected_in_call_order() -> None:
    g1 = {"7.0.0.1": {"class_type": "A", "inputs": {}}}
    g2 = {"7.1.0.1": {"class_type": "A", "inputs": {}}}
    out = normalize(TwoOut, [{"result": (["7.0.0.1", 0], "a"), "expand": g1},
                             {"result": (["7.1.0.1", 0], "b"), "expand": g2}])
    assert out.expand == [g1, g2]
    assert out.outputs == [[["7.0.0.1", 0], ["7.1.0.1", 0]], ["a", "b"]]


def test_a_bare_value_is_the_first_output() -> None:
    assert normalize(TwoOut, [3.0]).outputs == [[3.0], [None]]


# ---- assemble_inputs -----------------------------------------------------------------------------


class Consumer:
    RETURN_TYPES = ("FLOAT",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {"value": ("FLOAT", {}), "flow": ("FLOW", {"rawLink": True}), "n": ("INT", {})},
            "optional": {"opt": ("STRING", {}), "items": ("LIST", {})},
            "hidden": {"uid": "UNIQUE_ID", "prompt": "PROMPT", "dyn": "DYNPROMPT", "png": "EXTRA_PNGINFO",
                       "token": "AUTH_TOKEN_COMFY_ORG", "key": "API_KEY_COMFY_ORG"},
        }


def hidden(**kw: Any) -> Hidden:
    base: dict[str, Any] = {"prompt": {"9": {"class_type": "Consumer"}}, "extra_data": {}, "unique_id": "9"}
    base.update(kw)
    return Hidden(**base)


def test_inputs_become_lists_links_resolve_to_the_source_socket() -> None:
    node = {"inputs": {"value": ["1", 1], "n": 3, "flow": ["2", 0], "opt": "s"}}
    links = {"1": [[10.0, 11.0], [20.0, 21.0]], "2": [["flow-value"]]}
    data = assemble_inputs(Consumer, node, links, hidden())
    assert data["value"] == [20.0, 21.0]
    assert data["n"] == [3] and data["opt"] == ["s"]


def test_raw_link_inputs_receive_the_link_itself() -> None:
    node = {"inputs": {"value": 1.0, "n": 1, "flow": ["2", 0]}}
    data = assemble_inputs(Consumer, node, {"2": [["flow-value"]]}, hidden())
    assert data["flow"] == [["2", 0]]


def test_missing_link_data_is_none() -> None:
    node = {"inputs": {"value": ["1", 0], "n": 1, "flow": ["2", 0]}}
    data = assemble_inputs(Consumer, node, {}, hidden())
    assert data["value"] == [None]


def test_undeclared_links_are_kept_and_undeclared_constants_dropped() -> None:
    node = {"inputs": {"value": 1.0, "n": 1, "flow": ["2", 0], "input_0": ["1", 0], "junk": 5}}
    data = assemble_inputs(Consumer, node, {"1": [[4.5]]}, hidden())
    assert data["input_0"] == [4.5]
    assert "junk" not in data


def test_wrapped_list_constants_are_unwrapped() -> None:
    node = {"inputs": {"value": 1.0, "n": 1, "flow": ["2", 0], "items": {"__value__": [1, 2, 3]}}}
    assert assemble_inputs(Consumer, node, {}, hidden())["items"] == [[1, 2, 3]]


def test_hidden_inputs_by_declared_kind() -> None:
    extra = {"extra_pnginfo": {"workflow": {"w": 1}}, "auth_token_comfy_org": "tok", "api_key_comfy_org": "key"}
    dyn = object()
    prompt = {"9": {"class_type": "Consumer", "inputs": {}}}
    data = assemble_inputs(Consumer, {"inputs": {}}, {}, hidden(prompt=prompt, extra_data=extra, dynprompt=dyn))
    assert data["uid"] == ["9"]
    assert data["prompt"] == [prompt]
    assert data["dyn"] == [dyn]
    assert data["png"] == [{"workflow": {"w": 1}}]
    assert data["token"] == ["tok"] and data["key"] == ["key"]


def test_extra_pnginfo_absent_is_none() -> None:
    assert assemble_inputs(Consumer, {"inputs": {}}, {}, hidden())["png"] == [None]


class LoopOpen:
    """Upstream's for-loop open node declares its counter hidden with a type, not a hidden kind."""

    RETURN_TYPES = ("INT",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"remaining": ("INT", {})}, "hidden": {"counter": ("*",), "uid": "UNIQUE_ID"}}


def test_a_constant_of_a_hidden_input_that_is_no_hidden_kind_is_passed() -> None:
    node = {"inputs": {"remaining": 4, "counter": 3, "uid": "forged"}}
    data = assemble_inputs(LoopOpen, node, {}, hidden())
    assert data == {"remaining": [4], "counter": [3], "uid": ["9"]}  # a known kind still wins
    assert "counter" not in assemble_inputs(LoopOpen, {"inputs": {"remaining": 4}}, {}, hidden())


# ---- run_node: lazy inputs -----------------------------------------------------------------------


class LazyPick:
    RETURN_TYPES = ("FLOAT",)
    FUNCTION = "run"

    def __init__(self) -> None:
        self.checks: list[dict] = []

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"cond": ("BOOLEAN", {}), "a": ("FLOAT", {"lazy": True}), "b": ("FLOAT", {"lazy": True})}}

    def check_lazy_status(self, cond: bool, a: Any = None, b: Any = None) -> Any:
        self.checks.append({"cond": cond, "a": a, "b": b})
        return ["a" if cond else "b", "not_an_input"]

    def run(self, cond: bool, a: Any, b: Any) -> tuple:
        return (a if cond else b,)


def test_check_lazy_status_asks_only_for_unevaluated_inputs() -> None:
    obj = LazyPick()
    out = run_node(LazyPick, obj, {"cond": [True], "a": [None], "b": [None]},
                   node_id="l", prompt_id="P", unevaluated={"a", "b"})
    assert out.need == ["a"] and out.outputs == []
    out = run_node(LazyPick, obj, {"cond": [True], "a": [5.0], "b": [None]},
                   node_id="l", prompt_id="P", unevaluated={"b"})
    assert out.need == [] and out.outputs == [[5.0]]


def test_check_lazy_status_returning_a_non_list_is_ignored() -> None:
    class Odd(LazyPick):
        def check_lazy_status(self, cond: bool, a: Any = None, b: Any = None) -> Any:
            return "a"

    out = run_node(Odd, Odd(), {"cond": [True], "a": [None], "b": [None]}, node_id="l", prompt_id="P",
                   unevaluated={"a", "b"})
    assert out.need == [] and out.outputs == [[None]]


def test_check_lazy_status_is_called_before_every_execution_like_upstream() -> None:
    obj = LazyPick()
    run_node(LazyPick, obj, {"cond": [False], "a": [1.0], "b": [2.0]}, node_id="l", prompt_id="P", unevaluated=set())
    assert obj.checks == [{"cond": False, "a": 1.0, "b": 2.0}]


def test_async_check_lazy_status() -> None:
    class AsyncPick(LazyPick):
        async def check_lazy_status(self, cond: bool, a: Any = None, b: Any = None) -> Any:
            await asyncio.sleep(0)
            return ["b"]

    out = run_node(AsyncPick, AsyncPick(), {"cond": [False], "a": [None], "b": [None]}, node_id="l", prompt_id="P",
                   unevaluated={"a", "b"})
    assert out.need == ["b"]


# ---- expand_node (docs/expand_node.md) -----------------------------------------------------------


class Declarative:
    RETURN_TYPES = ("FLOAT", "FLOAT")
    FUNCTION = "run"
    seen: list[tuple] = []

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"count": ("INT", {}), "start": ("FLOAT", {})}, "hidden": {"uid": "UNIQUE_ID"}}

    @classmethod
    def expand_node(cls, node: Any, context: Any) -> Any:
        cls.seen.append((node.id, node.class_type, dict(node.inputs), context.prompt_id, context.unique_id,
                         context.list_index))
        if node.inputs["count"] == 0:
            return None
        nodes = [{"type": "MathOperation", "inputs": {"operation": "add", "b": 1.0}} for _ in range(node.inputs["count"])]
        nodes[0]["id"] = "first"
        connections = [{"value": node.inputs["start"], "to": ["first", "a"]}]
        connections += [{"from": [i, 0], "to": [i + 1, "a"]} for i in range(node.inputs["count"] - 1)]
        return {"nodes": nodes, "connections": connections, "outputs": [["first", 0], [len(nodes) - 1]]}

    def run(self, count: int, start: float, uid: str) -> tuple:
        return (-1.0, -1.0)


def test_expand_node_is_called_instead_of_the_function_and_builds_the_graph() -> None:
    Declarative.seen.clear()
    out = run_node(Declarative, Declarative(), {"count": [2], "start": [5.0], "uid": ["x"]},
                   node_id="x", prompt_id="P", unevaluated=set(), class_type="Decl")
    assert Declarative.seen == [("x", "Decl", {"count": 2, "start": 5.0}, "P", "x", 0)]
    assert out.expand == [{
        "x.0.0.first": {"class_type": "MathOperation", "inputs": {"operation": "add", "b": 1.0, "a": 5.0}},
        "x.0.0.2": {"class_type": "MathOperation", "inputs": {"operation": "add", "b": 1.0, "a": ["x.0.0.first", 0]}},
    }]
    assert out.outputs == [[["x.0.0.first", 0]], [["x.0.0.2", 0]]]


def test_expand_node_returning_none_runs_the_function() -> None:
    out = run_node(Declarative, Declarative(), {"count": [0], "start": [5.0], "uid": ["x"]},
                   node_id="x", prompt_id="P", unevaluated=set())
    assert out.expand == [] and out.outputs == [[-1.0], [-1.0]]


def test_expand_node_is_list_mapped_with_one_prefix_per_call() -> None:
    Declarative.seen.clear()
    out = run_node(Declarative, Declarative(), {"count": [1], "start": [1.0, 2.0], "uid": ["x"]},
                   node_id="x", prompt_id="P", unevaluated=set())
    assert [list(g) for g in out.expand] == [["x.0.0.first"], ["x.1.0.first"]]
    assert [s[-1] for s in Declarative.seen] == [0, 1]


def test_expansion_spec_defaults_and_errors() -> None:
    from worker.execute import ExpandSpecError, expansion_from_spec

    graph, result = expansion_from_spec({"nodes": [{"type": "A"}, {"type": "B", "inputs": {"x": 1}}]}, 1, "p.0.0.")
    assert graph == {"p.0.0.1": {"class_type": "A", "inputs": {}}, "p.0.0.2": {"class_type": "B", "inputs": {"x": 1}}}
    assert result == (["p.0.0.2", 0],)  # default: the last node's output 0
    _, result = expansion_from_spec({"nodes": [{"type": "A"}], "outputs": [[0, 1]]}, 3, "p.0.0.")
    assert result == (["p.0.0.1", 1], None, None)
    for bad in (
        [],
        {"nodes": []},
        {"nodes": [{"inputs": {}}]},
        {"nodes": [{"type": "A", "id": "2"}, {"type": "A"}]},
        {"nodes": [{"type": "A"}], "connections": [...]},
        {"nodes": [{"type": "A"}], "connections": [{"from": [3, 0], "to": [0, "a"]}]},
        {"nodes": [{"type": "A"}], "connections": [{"to": [0, "a"]}]},
        {"nodes": [{"type": "A"}], "connections": [{"from": ["nope", 0], "to": [0, "a"]}]},
    ):
        with pytest.raises(ExpandSpecError):
            expansion_from_spec(bad, 1, "p.0.0.")
