"""ComfyUI's execution semantics (spec/comfyui.md section 5) on a real farm, with the comfy_semantics pack.

Every test uses values of its own (``uniq()``), so the farm-wide cache never hides an execution.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections import defaultdict
from typing import Any

import pytest
import requests

from tests.farm import Farm, WsClient, assert_success, executing, frames, marks, run_ws, texts

pytestmark = pytest.mark.integration


def uniq() -> str:
    return uuid.uuid4().hex[:10]


def ufloat() -> float:
    return float(random.randint(10_000, 9_999_999))


def n(class_type: str, **inputs: Any) -> dict:
    return {"class_type": class_type, "inputs": inputs}








# ---- list mapping (5.4) --------------------------------------------------------------------------


def test_a_list_output_maps_a_normal_node_and_an_input_is_list_node_gets_the_whole_list(farm: Farm) -> None:
    x, tag = ufloat(), uniq()
    prompt = {
        "l": n("SemMakeList", values=f"{x},{x + 1}"),
        "c": n("SemCall", a=["l", 0], tag=f"{tag}-call"),
        "s": n("SemListSum", values=["c", 0], tag=f"{tag}-sum"),
        "show_c": n("SemShow", value=["c", 0]),
        "show_s": n("SemShow", value=["s", 0]),
    }
    _, messages, entry = run_ws(farm, prompt)
    assert_success(entry)
    assert [json.loads(line) for line in marks(farm, f"{tag}-call")] == [[x, None], [x + 1, None]]
    assert [json.loads(line) for line in marks(farm, f"{tag}-sum")] == [[[x * 10, (x + 1) * 10], [f"{tag}-sum"]]]
    # one ui entry per call, merged; the INPUT_IS_LIST node produced one value
    assert texts(entry, "show_c") == [repr(x * 10), repr((x + 1) * 10)]
    assert texts(entry, "show_s") == [repr(x * 10 + (x + 1) * 10)]
    # each node gets one `executing` frame although it is called twice
    ran = executing(messages)
    assert sorted(ran) == sorted(prompt) and len(ran) == len(set(ran))


def test_shorter_lists_repeat_their_last_element(farm: Farm) -> None:
    x, tag = ufloat(), uniq()
    prompt = {
        "three": n("SemMakeList", values=f"{x},{x + 1},{x + 2}"),
        "two": n("SemMakeList", values="0.5,0.25"),
        "c": n("SemCall", a=["three", 0], b=["two", 0], tag=tag),
        "o": n("SemShow", value=["c", 0]),
    }
    _, _, entry = run_ws(farm, prompt)
    assert_success(entry)
    assert [json.loads(line) for line in marks(farm, tag)] == [[x, 0.5], [x + 1, 0.25], [x + 2, 0.25]]
    assert len(texts(entry, "o")) == 3


# ---- lazy inputs (5.5) ---------------------------------------------------------------------------


@pytest.mark.parametrize("cls", ["SemLazySwitch", "SemLazySwitchAsync"])
@pytest.mark.parametrize("condition", [True, False])
def test_lazy_switch_runs_only_the_branch_it_asks_for(farm: Farm, cls: str, condition: bool) -> None:
    a, b, tag = ufloat(), ufloat(), uniq()
    prompt = {
        "t": n("SemMark", value=a, tag=f"{tag}-t"),
        "f": n("SemMark", value=b, tag=f"{tag}-f"),
        "sw": n(cls, condition=condition, on_true=["t", 0], on_false=["f", 0]),
        "o": n("SemShow", value=["sw", 0]),
    }
    _, messages, entry = run_ws(farm, prompt)
    assert_success(entry)
    taken, untaken = ("t", "f") if condition else ("f", "t")
    assert texts(entry, "o") == [repr(a if condition else b)]
    assert len(marks(farm, f"{tag}-{taken}")) == 1
    assert marks(farm, f"{tag}-{untaken}") == []
    ran = executing(messages)
    assert untaken not in ran
    # the switch is executed, asks for its input, and is executed again (upstream re-sends `executing`)
    assert ran == ["sw", taken, "sw", "o"]


def test_a_cached_lazy_source_is_passed_without_asking(farm: Farm) -> None:
    a, tag = ufloat(), uniq()
    farm.run({"t": n("SemMark", value=a, tag=tag), "o": n("SemShow", value=["t", 0])})
    prompt = {
        "t": n("SemMark", value=a, tag=tag),
        "f": n("SemMark", value=ufloat(), tag=f"{tag}-f"),
        "sw": n("SemLazySwitch", condition=True, on_true=["t", 0], on_false=["f", 0]),
        "o": n("SemShow", value=["sw", 0]),
    }
    _, messages, entry = run_ws(farm, prompt)
    assert texts(entry, "o") == [repr(a)]
    assert executing(messages) == ["sw", "o"]
    assert len(marks(farm, tag)) == 1 and marks(farm, f"{tag}-f") == []


def test_a_lazy_input_cycle_inside_an_expansion_fails_instead_of_hanging(farm: Farm) -> None:
    prompt = {"c": n("SemExpandCycle", lazy=True, tag=uniq()), "o": n("SemShow", value=["c", 0])}
    _, messages, entry = run_ws(farm, prompt)
    error = frames(messages, "execution_error")[0]
    assert error["node_id"] == "c" and error["node_type"] == "SemExpandCycle"
    assert error["exception_type"] == "graph.DependencyCycleError"
    assert entry["status"]["status_str"] == "error"


# ---- ExecutionBlocker (5.6) ----------------------------------------------------------------------


def test_a_silent_blocker_skips_every_consumer_and_the_run_succeeds(farm: Farm) -> None:
    tag = uniq()
    prompt = {
        "b": n("SemBlock", value=ufloat(), block=True, message=""),
        "m": n("SemMark", value=["b", 0], tag=tag),
        "o": n("SemShow", value=["m", 0], tag=f"{tag}-o"),
    }
    _, messages, entry = run_ws(farm, prompt)
    assert_success(entry)
    assert frames(messages, "execution_error") == []
    assert marks(farm, tag) == [] and marks(farm, f"{tag}-o") == []
    assert "o" not in entry["outputs"]  # an output node receiving a blocker produces no ui


def test_a_verbose_blocker_reports_once_and_the_run_still_succeeds(farm: Farm) -> None:
    tag = uniq()
    prompt = {
        "b": n("SemBlock", value=ufloat(), block=True, message=f"stop {tag}"),
        "m": n("SemMark", value=["b", 0], tag=tag),
        "o": n("SemShow", value=["m", 0]),
    }
    pid, messages, entry = run_ws(farm, prompt)
    errors = frames(messages, "execution_error")
    assert len(errors) == 1
    assert errors[0] == {
        "prompt_id": pid, "node_id": "m", "node_type": "SemMark", "executed": errors[0]["executed"],
        "exception_message": f"Execution Blocked: stop {tag}", "exception_type": "ExecutionBlocked",
        "traceback": [], "current_inputs": [], "current_outputs": [],
    }
    assert "execution_success" in [m["type"] for m in messages]
    assert_success(entry)
    assert marks(farm, tag) == []
    assert "execution_error" not in [k for k, _ in entry["status"]["messages"]]


def test_an_unblocked_value_passes(farm: Farm) -> None:
    v = ufloat()
    prompt = {"b": n("SemBlock", value=v, block=False, message="x"), "o": n("SemShow", value=["b", 0])}
    _, _, entry = run_ws(farm, prompt)
    assert texts(entry, "o") == [repr(v)]


# ---- node expansion (5.7) ------------------------------------------------------------------------


def test_expansion_runs_ephemeral_nodes_displayed_as_their_parent(farm: Farm) -> None:
    v = ufloat()
    prompt = {
        "s": n("PrimitiveFloat", value=v),
        "e": n("SemExpandChain", start=["s", 0], count=3),
        "o": n("SemShow", value=["e", 0]),
    }
    _, messages, entry = run_ws(farm, prompt)
    assert_success(entry)
    assert texts(entry, "o") == [repr(v + 3)]
    execs = [(f["node"], f["display_node"]) for f in frames(messages, "executing") if f["node"]]
    assert execs == [("s", "s"), ("e", "e"), ("e.0.0.1", "e"), ("e.0.0.2", "e"), ("e.0.0.3", "e"), ("o", "o")]
    # progress_state entries of ephemeral nodes point at their parent
    last = frames(messages, "progress_state")[-1]["nodes"]
    assert {k: (v["display_node_id"], v["parent_node_id"], v["real_node_id"]) for k, v in last.items()
            if k.startswith("e.")} == {f"e.0.0.{i}": ("e", "e", "e") for i in (1, 2, 3)}
    assert last["e"]["parent_node_id"] is None
    # history lists only the real output node
    assert list(entry["outputs"]) == ["o"]
    assert entry["meta"] == {"o": {"node_id": "o", "display_node": "o", "parent_node": None, "real_node_id": "o"}}


def test_an_expansion_may_carry_values_json_cannot(farm: Farm) -> None:
    """Tensors (and tuples) placed into an expansion graph or its result reach their consumers as the
    very values (upstream keeps them in memory; the farm stores them like node results)."""
    prompt = {
        "i": n("EmptyImage", width=2, height=1, batch_size=1, color=0x336699 + random.randint(0, 1000)),
        "x": n("SemExpandValues", image=["i", 0]),
        "inv": n("SemShow", value=["x", 0]),
        "same": n("SemShow", value=["x", 1]),
        "tup": n("SemShow", value=["x", 2]),
    }
    _, messages, entry = run_ws(farm, prompt)
    assert_success(entry)
    assert texts(entry, "inv") == ["Tensor[1, 1, 2, 3]"] and texts(entry, "same") == ["Tensor[1, 1, 2, 3]"]
    assert texts(entry, "tup") == [repr(("pair", 2))]
    assert executing(messages)[:3] == ["i", "x", "x.0.0.1"]


def test_an_expansion_that_expands_again(farm: Farm) -> None:
    v = ufloat()
    prompt = {"r": n("SemRecurse", value=v, n=2), "o": n("SemShow", value=["r", 0])}
    _, messages, entry = run_ws(farm, prompt)
    assert_success(entry)
    assert texts(entry, "o") == [repr(v + 2)]
    execs = [(f["node"], f["display_node"]) for f in frames(messages, "executing") if f["node"]]
    assert execs == [
        ("r", "r"), ("r.0.0.1", "r"), ("r.0.0.2", "r"), ("r.0.0.2.0.0.1", "r"), ("r.0.0.2.0.0.2", "r"), ("o", "o"),
    ]


def test_a_while_loop_built_by_expansion(farm: Farm) -> None:
    """The execution-inversion loop: LoopClose clones the body through DYNPROMPT (rawLink flow input)."""
    v = ufloat()
    prompt = {
        "open": n("SemLoopOpen", value=v),
        "add": n("MathOperation", a=["open", 1], b=1.0, operation="add"),
        "less": n("SemLess", a=["add", 0], b=v + 3),
        "close": n("SemLoopClose", flow=["open", 0], again=["less", 0], value=["add", 0]),
        "o": n("SemShow", value=["close", 0]),
    }
    _, messages, entry = run_ws(farm, prompt)
    assert_success(entry)
    assert texts(entry, "o") == [repr(v + 3)]
    execs = [(f["node"], f["display_node"]) for f in frames(messages, "executing") if f["node"]]
    # two iterations were cloned (ids grow by the cloning node's prefix); each clone shows as the
    # original body node
    assert execs == [
        ("open", "open"), ("add", "add"), ("less", "less"), ("close", "close"),
        ("close.0.0.open", "open"), ("close.0.0.add", "add"), ("close.0.0.less", "less"),
        ("close.0.0.Recurse", "close"),
        ("close.0.0.Recurse.0.0.close.0.0.open", "open"), ("close.0.0.Recurse.0.0.close.0.0.add", "add"),
        ("close.0.0.Recurse.0.0.close.0.0.less", "less"), ("close.0.0.Recurse.0.0.Recurse", "close"),
        ("o", "o"),
    ]
    assert list(entry["outputs"]) == ["o"]


def test_a_dynamic_cycle_is_an_execution_error_on_the_expanding_node(farm: Farm) -> None:
    prompt = {"c": n("SemExpandCycle", lazy=False, tag=uniq()), "o": n("SemShow", value=["c", 0])}
    pid, messages, entry = run_ws(farm, prompt)
    error = frames(messages, "execution_error")[0]
    assert error["prompt_id"] == pid and error["node_id"] == "c" and error["node_type"] == "SemExpandCycle"
    assert error["exception_type"] == "graph.DependencyCycleError"
    assert error["exception_message"] == "Dependency cycle detected"
    assert error["traceback"] == [] and error["current_inputs"] == []
    assert [m["type"] for m in messages][-3:] == ["execution_error", "status", "executing"]
    assert entry["status"]["status_str"] == "error"


def for_loop(iterations: int, start: int, step: int, fresh: str | None = None) -> dict:
    """``start`` plus ``step`` once per iteration, by a for loop built from expansion. With ``fresh``
    (a mark tag) the start value comes from a node that is never cached (IS_CHANGED NaN)."""
    prompt = {
        "fo": n("SemForOpen", remaining=iterations, value1=start),
        "body": n("SemIntMath", a=["fo", 2], b=step, operation="add"),
        "fc": n("SemForClose", flow=["fo", 0], value1=["body", 0]),
        "o": n("SemShow", value=["fc", 0]),
    }
    if fresh is not None:
        prompt["start"] = n("SemFreshInt", value=start, tag=fresh)
        prompt["fo"]["inputs"]["value1"] = ["start", 0]
    return prompt


@pytest.mark.parametrize("fresh", [False, True])
def test_a_for_loop_by_expansion_resubmitted_with_other_counts(farm: Farm, fresh: bool) -> None:
    """Upstream runs its for-loop test graph again and again with 1..4 iterations on one server; each
    run computes from its own count (the loop counter reaches the cloned open node through an input
    declared ``hidden`` as ``("*",)``). Repeated counts hit the cache unless the start is fresh."""
    start, step, tag = random.randint(1000, 10**6), random.randint(1, 999), uniq()
    counts = (1, 2, 3, 4, 4, 2, 3, 1)
    for iterations in counts:
        entry = farm.run(for_loop(iterations, start, step, tag if fresh else None))
        assert_success(entry)
        assert texts(entry, "o") == [repr(start + iterations * step)], iterations
    assert len(marks(farm, tag)) == (len(counts) if fresh else 0)


# ---- inputs (5.3, 1.1) ---------------------------------------------------------------------------


def test_raw_link_input_receives_the_link_and_its_source_still_runs_first(farm: Farm) -> None:
    prompt = {"src": n("PrimitiveFloat", value=ufloat()), "r": n("SemRawLink", link=["src", 0])}
    _, messages, entry = run_ws(farm, prompt)
    assert_success(entry)
    assert texts(entry, "r") == [json.dumps(["src", 0])]
    assert executing(messages) == ["src", "r"]


def test_undeclared_links_arrive_as_kwargs_and_undeclared_constants_are_dropped(farm: Farm) -> None:
    a, b, label = ufloat(), ufloat(), uniq()
    prompt = {
        "a": n("PrimitiveFloat", value=a),
        "b": n("PrimitiveFloat", value=b),
        "k": n("SemKwargs", label=label, input_0=["a", 0], input_1=["b", 0], junk=7),
    }
    _, messages, entry = run_ws(farm, prompt)
    assert_success(entry)
    assert json.loads(texts(entry, "k")[0]) == {"label": label, "kwargs": {"input_0": a, "input_1": b}}
    assert sorted(executing(messages)) == ["a", "b", "k"]  # undeclared link sources are executed


def test_hidden_inputs(farm: Farm) -> None:
    tag, tag2 = uniq(), uniq()
    prompt = {"h": n("SemHidden", tag=tag), "x": n("SemExpandHidden", tag=tag2), "o": n("SemShow", value=["x", 0])}
    workflow = {"workflow": {"tag": tag}}
    _, _, entry = run_ws(farm, prompt, extra_data={"extra_pnginfo": workflow})
    assert_success(entry)
    assert json.loads(texts(entry, "h")[0]) == {
        "unique_id": "h", "prompt_nodes": ["h", "o", "x"], "prompt_tag": tag, "dynprompt": "DynamicPrompt",
        "dyn_class": "SemHidden", "dyn_real": "h", "extra_pnginfo": workflow,
    }
    # inside an expansion UNIQUE_ID is the ephemeral id; DYNPROMPT knows the ephemeral node
    inner = json.loads(texts(entry, "x.0.0.1")[0])
    assert (inner["unique_id"], inner["dyn_class"], inner["dyn_real"], inner["prompt_tag"]) == (
        "x.0.0.1", "SemHidden", "x", None)
    assert entry["meta"]["x.0.0.1"] == {"node_id": "x.0.0.1", "display_node": "x", "parent_node": "x",
                                        "real_node_id": "x"}


def test_a_plain_star_input_accepts_an_image_and_comma_unions_match_any_member(farm: Farm) -> None:
    prompt = {
        "i": n("EmptyImage", width=3, height=2, batch_size=1, color=random.randint(0, 0xFFFFFF)),
        "show": n("SemShow", value=["i", 0]),
        "f": n("PrimitiveFloat", value=ufloat()),
        "u": n("SemUnion", value=["f", 0]),
        "show_u": n("SemShow", value=["u", 0]),
    }
    _, _, entry = run_ws(farm, prompt)
    assert_success(entry)
    assert texts(entry, "show") == ["Tensor[1, 2, 3, 3]"]
    res = farm.post({"i": n("PrimitiveInt", value=3), "u": n("SemUnion", value=["i", 0]),
                     "o": n("SemShow", value=["u", 0])})
    assert res.status_code == 400
    error = res.json()["node_errors"]["u"]["errors"][0]
    assert error["type"] == "return_type_mismatch"
    assert error["details"] == "value, received_type(INT) mismatch input_type(IMAGE,FLOAT)"


def test_validate_inputs_with_input_types_replaces_the_link_type_check(farm: Farm) -> None:
    v = random.randint(1000, 10**6)
    prompt = {"i": n("PrimitiveInt", value=v), "t": n("SemTypes", value=["i", 0]), "o": n("SemShow", value=["t", 0])}
    _, _, entry = run_ws(farm, prompt)  # INT into a FLOAT input: accepted by the validator
    assert texts(entry, "o") == [repr(f"int:{v}")]
    res = farm.post({"s": n("PrimitiveString", value="x"), "t": n("SemTypes", value=["s", 0]),
                     "o": n("SemShow", value=["t", 0])})
    assert res.status_code == 400
    assert res.json()["node_errors"]["t"]["errors"] == [{
        "type": "custom_validation_failed", "message": "Custom validation failed for node",
        "details": "input_types - wants a number, got STRING", "extra_info": {"input_name": "input_types"}}]


def test_validate_inputs_with_input_types_rejecting_a_linked_type_is_a_400(farm: Farm) -> None:
    """The validator names the linked input (it gets None) and ``input_types``: judged at POST time,
    never deferred to the worker."""
    res = farm.post({"i": n("PrimitiveInt", value=random.randint(1000, 10**6)),
                     "t": n("SemTypedUnion", value=["i", 0]), "o": n("SemShow", value=["t", 0])})
    assert res.status_code == 400, res.text
    body = res.json()
    assert body["error"]["type"] == "prompt_outputs_failed_validation"
    assert body["node_errors"] == {"t": {
        "errors": [
            {"type": "custom_validation_failed", "message": "Custom validation failed for node",
             "details": f"{name} - Invalid type of value: INT", "extra_info": {"input_name": name}}
            for name in ("value", "input_types")
        ],
        "dependent_outputs": ["o"], "class_type": "SemTypedUnion",
    }}
    v = ufloat()
    _, _, entry = run_ws(farm, {"f": n("PrimitiveFloat", value=v), "t": n("SemTypedUnion", value=["f", 0]),
                                "o": n("SemShow", value=["t", 0])})
    assert_success(entry)
    assert texts(entry, "o") == [repr(repr(v))]


# ---- caching (5.8) -------------------------------------------------------------------------------


def test_is_changed_nan_reruns_every_time_while_a_constant_caches(farm: Farm) -> None:
    tag = uniq()
    nan = {"n": n("SemAlwaysRun", tag=f"{tag}-nan"), "o": n("SemShow", value=["n", 0])}
    const = {"c": n("SemConstChanged", tag=f"{tag}-const"), "o": n("SemShow", value=["c", 0])}
    for _ in range(2):
        farm.run(nan)
        _, messages, _ = run_ws(farm, const)
    assert marks(farm, f"{tag}-nan") == ["ran", "ran"]
    assert marks(farm, f"{tag}-const") == ["ran"]
    assert frames(messages, "execution_cached")[0]["nodes"] == ["c", "o"]


def test_not_idempotent_nodes_are_never_merged_with_identical_ones(farm: Farm) -> None:
    v, tag = ufloat(), uniq()
    prompt = {
        "n1": n("SemNotIdempotent", value=v, tag=f"{tag}-ni"),
        "n2": n("SemNotIdempotent", value=v, tag=f"{tag}-ni"),
        "m1": n("SemMark", value=v, tag=f"{tag}-m"),
        "m2": n("SemMark", value=v, tag=f"{tag}-m"),
        "k": n("SemKwargs", label="", a=["n1", 0], b=["n2", 0], c=["m1", 0], d=["m2", 0]),
    }
    _, messages, entry = run_ws(farm, prompt)
    assert_success(entry)
    assert len(marks(farm, f"{tag}-ni")) == 2
    assert len(marks(farm, f"{tag}-m")) == 1  # identical nodes of one prompt are computed once
    assert {"n1", "n2"} <= set(executing(messages))


def test_one_node_instance_per_node_id_and_class_is_reused_across_runs(farm: Farm) -> None:
    tag = uniq()
    a, b = f"ia_{tag}", f"ib_{tag}"
    prompt = {a: n("SemInstance", tag=tag), b: n("SemInstance", tag=tag),
              "k": n("SemKwargs", label="", x=[a, 0], y=[b, 0])}
    for _ in range(3):
        assert_success(farm.run(prompt))
    calls: dict[tuple[str, int], list[tuple[int, int]]] = defaultdict(list)
    for line in marks(farm, tag):
        node_id, pid, obj, count = json.loads(line)
        calls[(node_id, pid)].append((obj, count))
    for seen in calls.values():
        assert len({obj for obj, _ in seen}) == 1  # one instance per (node id, class) in a process
        assert [count for _, count in seen] == list(range(1, len(seen) + 1))  # reused: its state persists
    # 3 runs on at most 2 worker processes: some process ran each node id at least twice
    assert max(len(s) for (node_id, _), s in calls.items() if node_id == a) >= 2


# ---- V3, async -----------------------------------------------------------------------------------


def test_v3_node_from_comfy_entrypoint_runs(farm: Farm) -> None:
    v = ufloat()
    prompt = {"v": n("SemV3Scale", value=v, factor=2.0), "d": n("SemV3AsyncDouble", value=["v", 0]),
              "o": n("SemShow", value=["d", 0])}
    _, _, entry = run_ws(farm, prompt)
    assert_success(entry)
    assert texts(entry, "v") == [f"v:{v * 2}"]
    assert texts(entry, "o") == [repr(v * 4)]
    res = farm.post({"v": n("SemV3Scale", value=v, factor=3.0)})
    assert res.status_code == 400
    assert res.json()["node_errors"]["v"]["errors"][0]["details"] == "factor - no threes"
    info = requests.get(farm.url + "/object_info/SemV3Scale", timeout=5).json()["SemV3Scale"]
    assert info["display_name"] == "Scale (V3 test)"
    assert info["python_module"] == "custom_nodes.comfy_semantics_v3"


def test_async_node_function(farm: Farm) -> None:
    v = ufloat()
    prompt = {"a": n("SemAsync", value=v, seconds=0.05), "o": n("SemShow", value=["a", 0])}
    _, _, entry = run_ws(farm, prompt)
    assert texts(entry, "o") == [repr(v * 2)]


# ---- progress, custom events, interrupt ----------------------------------------------------------


def test_progress_bar_updates_send_progress_and_progress_state(farm: Farm) -> None:
    pid, messages, entry = run_ws(farm, {"p": n("SemProgress", value=ufloat(), steps=3),
                                         "o": n("SemShow", value=["p", 0])})
    assert_success(entry)
    progress = [(f["value"], f["max"], f["node"], f["prompt_id"]) for f in frames(messages, "progress")]
    assert progress == [(1, 3, "p", pid), (2, 3, "p", pid), (3, 3, "p", pid)]
    running = [f["nodes"]["p"] for f in frames(messages, "progress_state")
               if f["nodes"].get("p", {}).get("state") == "running"]
    assert [(s["value"], s["max"]) for s in running] == [(0, 1), (1, 3), (2, 3), (3, 3)]
    # ComfyUI: each update goes to the progress registry first (a progress_state with the new value),
    # then out as the `progress` frame
    stream = [m for m in messages if m["type"] in ("progress", "progress_state")]
    for i, m in enumerate(stream):
        if m["type"] == "progress":
            before = stream[i - 1]
            assert before["type"] == "progress_state" and before["data"]["nodes"]["p"]["value"] == m["data"]["value"]


def test_send_sync_custom_events_reach_websocket_clients(farm: Farm) -> None:
    tag = uniq()
    observer = WsClient(farm.url)
    try:
        pid, messages, entry = run_ws(farm, {"s": n("SemNotify", value=ufloat(), tag=tag),
                                             "o": n("SemShow", value=["s", 0])})
        assert_success(entry)
        mine = [(m["type"], m["data"]) for m in messages if m["type"].startswith("sem.")]
        assert mine == [("sem.broadcast", {"node": "s", "tag": tag}), ("sem.direct", {"node": "s", "tag": tag})]
        observer.until(lambda m: isinstance(m, dict) and m["type"] == "sem.broadcast" and m["data"]["tag"] == tag)
        # the run's final status is broadcast after the node's events: the observer got all it will get
        observer.until(lambda m: isinstance(m, dict) and m["type"] == "status"
                       and m["data"]["status"]["exec_info"]["queue_remaining"] == 0)
        assert not [m for m in observer.messages if isinstance(m, dict) and m["type"] == "sem.direct"]
    finally:
        observer.close()


def test_interrupt_stops_a_looping_node_and_nothing_downstream_starts(farm: Farm) -> None:
    tag = uniq()
    prompt = {
        "s": n("SemSpin", value=ufloat(), seconds=30.0, tag=tag),
        "m": n("SemMark", value=["s", 0], tag=f"{tag}-after"),
        "o": n("SemShow", value=["m", 0]),
    }
    ws = WsClient(farm.url)
    started = time.time()
    try:
        pid = farm.submit(prompt, client_id=ws.client_id)
        ws.until(lambda m: isinstance(m, dict) and m["type"] == "progress" and m["data"]["node"] == "s")
        assert requests.post(farm.url + "/interrupt", json={}, timeout=5).status_code == 200
        messages = ws.until_done(pid)
    finally:
        ws.close()
    assert time.time() - started < 15
    interrupted = frames(messages, "execution_interrupted")
    assert len(interrupted) == 1
    assert {k: interrupted[0][k] for k in ("prompt_id", "node_id", "node_type", "executed")} == {
        "prompt_id": pid, "node_id": "s", "node_type": "SemSpin", "executed": []}
    assert [m["type"] for m in messages][-3:] == ["execution_interrupted", "status", "executing"]
    assert "m" not in executing(messages) and "o" not in executing(messages)
    assert marks(farm, tag) == ["start"]
    assert marks(farm, f"{tag}-after") == []
    entry = farm.wait(pid)
    assert entry["status"]["status_str"] == "error" and entry["status"]["completed"] is False
    assert entry["outputs"] == {}
    assert [k for k, _ in entry["status"]["messages"]] == ["execution_start", "execution_cached", "execution_interrupted"]


# ---- the whole stream ----------------------------------------------------------------------------


def summary(m: dict) -> tuple:
    """The key fields of one message, for comparing sequences."""
    t, d = m["type"], m["data"]
    if t == "status":
        return (t, d["status"]["exec_info"]["queue_remaining"])
    if t == "execution_cached":
        return (t, tuple(d["nodes"]))
    if t == "executing":
        return (t, d["node"], d.get("display_node"))
    if t == "progress":
        return (t, d["node"], d["value"], d["max"])
    if t == "progress_state":
        return (t, tuple(sorted((k, v["state"]) for k, v in d["nodes"].items())))
    if t == "executed":
        return (t, d["node"], json.dumps(d["output"]))
    return (t,)


def test_exact_message_sequence_with_cache_lazy_expansion_and_progress(farm: Farm) -> None:
    v, tag = ufloat(), uniq()
    farm.run({"c": n("PrimitiveFloat", value=v), "pre": n("SemShow", value=["c", 0])})  # "c" is now cached
    prompt = {
        "c": n("PrimitiveFloat", value=v),
        "p": n("SemProgress", value=["c", 0], steps=2),
        "e": n("SemExpandChain", start=["p", 0], count=2),
        "u": n("SemMark", value=v, tag=tag),
        "l": n("SemLazySwitch", condition=True, on_true=["e", 0], on_false=["u", 0]),
        "o": n("SemShow", value=["l", 0]),
    }
    ws = WsClient(farm.url)
    try:
        hello = ws.until(lambda m: True)[0]
        pid = farm.submit(prompt, client_id=ws.client_id)
        ws.until_done(pid)
    finally:
        ws.close()
    assert hello == {"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 0}}, "sid": ws.client_id}}
    got = [summary(m) for m in ws.messages[1:]]

    def ps(*running: str, done: tuple[str, ...] = ()) -> tuple:
        states = {k: "finished" for k in done} | {k: "running" for k in running}
        return ("progress_state", tuple(sorted(states.items())))

    ui = json.dumps({"text": [repr(v + 2)]})
    e1, e2 = "e.0.0.1", "e.0.0.2"
    # a node that started and waits (the lazy "l" asking for its input, the expanded "e") stays
    # "running" in progress_state until it finishes; the progress registry update goes out before
    # its `progress` frame
    expected = [
        ("status", 1), ("status", 1),
        ("execution_start",), ("execution_cached", ("c",)),
        ps("l"), ("executing", "l", "l"),
        ps("l", "p"), ("executing", "p", "p"),
        ps("l", "p"), ("progress", "p", 1, 2), ps("l", "p"), ("progress", "p", 2, 2),
        ps("l", done=("p",)),
        ps("l", "e", done=("p",)), ("executing", "e", "e"),
        ps("l", "e", e1, done=("p",)), ("executing", e1, "e"),
        ps("l", "e", done=("p", e1)),
        ps("l", "e", e2, done=("p", e1)), ("executing", e2, "e"),
        ps("l", "e", done=("p", e1, e2)),
        ps("l", done=("p", e1, e2, "e")),
        ps("l", done=("p", e1, e2, "e")), ("executing", "l", "l"),
        ps(done=("p", e1, e2, "e", "l")),
        ps("o", done=("p", e1, e2, "e", "l")), ("executing", "o", "o"),
        ("executed", "o", ui),
        ps(done=("p", e1, e2, "e", "l", "o")),
        ("execution_success",), ("status", 0), ("executing", None, None),
    ]
    assert got == expected
    assert marks(farm, tag) == []
