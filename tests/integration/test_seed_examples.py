"""The seed's example nodes ("Advanced Custom Node Features", tests/custom_nodes/seed_examples) on a farm.

Results are read through nodes of the comfy_semantics pack (SemShow shows any value, SemListSum sums a
list). Every test uses values of its own so the farm-wide cache never hides an execution.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import requests
import socketio

from tests.farm import Farm, WsClient, assert_success, frames, marks, run_ws, texts

pytestmark = pytest.mark.integration

SEED_JS = Path(__file__).resolve().parents[1] / "custom_nodes" / "seed_examples" / "web" / "js" / "my_extension.js"


def uniq() -> str:
    return uuid.uuid4().hex[:10]


def ufloat() -> float:
    return float(random.randint(10_000, 9_999_999))


def color() -> int:
    return random.randint(1, 0xFFFFFE)


def n(class_type: str, **inputs: Any) -> dict:
    return {"class_type": class_type, "inputs": inputs}


def image(width: int = 4, height: int = 4, batch: int = 1, c: int | None = None) -> dict:
    return n("EmptyImage", width=width, height=height, batch_size=batch, color=color() if c is None else c)



def executing(messages: list[dict]) -> list[tuple[str, str]]:
    return [(m["data"]["node"], m["data"]["display_node"]) for m in messages
            if m["type"] == "executing" and m["data"]["node"] is not None]






# ---- Custom Scheduling: ConditionalNode, LoopNode --------------------------------------------------


@pytest.mark.parametrize("condition", [True, False])
def test_conditional_node_computes_only_the_branch_it_takes(farm: Farm, condition: bool) -> None:
    yes, no = uniq(), uniq()
    prompt = {
        "img_t": image(),
        "img_f": image(),
        "t": n("CachedProcessor", image=["img_t", 0], settings=yes),
        "f": n("CachedProcessor", image=["img_f", 0], settings=no),
        "cond": n("ConditionalNode", condition=condition, if_true=["t", 0], if_false=["f", 0]),
        "o": n("SemShow", value=["cond", 0]),
    }
    _, messages, entry = run_ws(farm, prompt)
    assert_success(entry)
    assert texts(entry, "o") == ["Tensor[1, 4, 4, 3]"]
    taken, untaken = (yes, no) if condition else (no, yes)
    assert len(marks(farm, f"cached-{taken}")) == 1
    assert marks(farm, f"cached-{untaken}") == []  # the branch not taken is never computed
    ran = [node for node, _ in executing(messages)]
    assert ("t" in ran, "f" in ran) == (condition, not condition)
    assert ("img_t" in ran, "img_f" in ran) == (condition, not condition)


def test_loop_node_runs(farm: Farm) -> None:
    v = ufloat()
    _, _, entry = run_ws(farm, {"l": n("LoopNode", iterations=5, initial_value=v), "o": n("SemShow", value=["l", 0])})
    assert texts(entry, "o") == [repr(v + 0 + 1 + 2 + 3 + 4)]


# ---- Lazy Evaluation: LazyProcessorNode ------------------------------------------------------------


@pytest.mark.parametrize("trigger", [True, False])
def test_lazy_processor_evaluates_its_input_only_when_triggered(farm: Farm, trigger: bool) -> None:
    settings = uniq()
    prompt = {
        "img": image(),
        "exp": n("CachedProcessor", image=["img", 0], settings=settings),
        "lazy": n("LazyProcessorNode", trigger=trigger, expensive_input=["exp", 0]),
        "o": n("SemShow", value=["lazy", 0]),
    }
    _, _, entry = run_ws(farm, prompt)
    assert_success(entry)
    assert texts(entry, "o") == (["Tensor[1, 4, 4, 3]"] if trigger else ["None"])
    assert len(marks(farm, f"cached-{settings}")) == (1 if trigger else 0)


# ---- Dynamic Inputs ----------------------------------------------------------------------------


def test_dynamic_input_node_collects_its_undeclared_inputs(farm: Farm) -> None:
    a, b, c = ufloat(), ufloat(), ufloat()
    prompt = {
        "a": n("PrimitiveFloat", value=a),
        "b": n("PrimitiveFloat", value=b),
        "c": n("PrimitiveFloat", value=c),
        "d": n("DynamicInputNode", input_count=2, input_0=["a", 0], input_1=["b", 0], input_2=["c", 0]),
        "sum": n("SemListSum", values=["d", 0], tag=uniq()),
        "show_sum": n("SemShow", value=["sum", 0]),
        "show_d": n("SemShow", value=["d", 0]),
    }
    _, _, entry = run_ws(farm, prompt)
    assert_success(entry)
    assert texts(entry, "show_d") == [repr(a), repr(b)]  # input_count=2: input_2 is not collected
    assert texts(entry, "show_sum") == [repr(a + b)]


# ---- Node Expansion: ExpanderNode.expand_node ----------------------------------------------------


@pytest.mark.parametrize(("operation", "count", "expected"), [("add", 3, 7.0), ("multiply", 4, 16.0)])
def test_expander_node_expands_into_math_operation_nodes(farm: Farm, operation: str, count: int,
                                                          expected: float) -> None:
    node_id = f"x{uniq()}"
    prompt = {node_id: n("ExpanderNode", count=count, operation=operation), "o": n("SemShow", value=[node_id, 0])}
    _, messages, entry = run_ws(farm, prompt)
    assert_success(entry)
    assert texts(entry, "o") == [repr(expected)]  # not the placeholder function's 0.0
    ephemeral = [(f"{node_id}.0.0.{i}", node_id) for i in range(1, count + 1)]
    assert executing(messages) == [(node_id, node_id), *ephemeral, ("o", "o")]
    assert list(entry["outputs"]) == ["o"]


# ---- Caching and Optimization ----------------------------------------------------------------------


def test_cached_processor_reuses_its_own_cache_across_runs(farm: Farm) -> None:
    """Same pixels from a different upstream: the farm's cache misses, the node's own self.cache hits
    (one instance per node id and class in each worker process)."""
    settings, c, node_id = uniq(), color(), f"cp{uniq()}"
    sources = [image(4, 4, 1, c)] + [n("ImageCrop", image=["big", 0], width=4, height=4, x=i, y=0) for i in range(4)]
    runs = 0
    for src in sources:
        prompt = {"big": image(16, 16, 1, c), "src": src, node_id: n("CachedProcessor", image=["src", 0], settings=settings),
                  "o": n("SemShow", value=[node_id, 0])}
        if src["class_type"] == "EmptyImage":
            del prompt["big"]
        _, messages, entry = run_ws(farm, prompt)
        assert_success(entry)
        assert node_id in [node for node, _ in executing(messages)]  # the node ran every time
        runs += 1
    computed = Counter(line.split()[0] for line in marks(farm, f"cached-{settings}"))
    assert all(count == 1 for count in computed.values())  # each worker process computed once
    assert sum(computed.values()) < runs


def test_memory_efficient_node_processes_in_chunks(farm: Farm) -> None:
    before = len(marks(farm, "memory-chunks"))
    prompt = {"img": image(2, 2, 25), "m": n("MemoryEfficientNode", large_input=["img", 0]),
              "o": n("SemShow", value=["m", 0])}
    _, _, entry = run_ws(farm, prompt)
    assert_success(entry)
    assert texts(entry, "o") == ["Tensor[25, 2, 2, 3]"]
    assert [line.split()[1] for line in marks(farm, "memory-chunks")[before:]] == ["10", "10", "5"]


# ---- Error Handling and Validation: RobustNode -------------------------------------------------------


def test_robust_node_accepts_a_valid_image(farm: Farm) -> None:
    prompt = {"img": image(4, 2), "r": n("RobustNode", image=["img", 0], scale_factor=2.0, mode="bilinear"),
              "o": n("SemShow", value=["r", 0])}
    _, _, entry = run_ws(farm, prompt)
    assert_success(entry)
    assert texts(entry, "o") == ["Tensor[1, 4, 8, 3]"]


@pytest.mark.parametrize(("channels", "scale", "mode", "reason"), [
    (2, 1.0, "bilinear", "Image must have 3 or 4 channels, got 2"),
    (3, 0.0, "bilinear", "Scale factor must be positive"),
    (3, 1.0, "lanczos", "Invalid mode. Must be one of: ['bilinear', 'nearest', 'bicubic']"),
])
def test_robust_node_rejects_bad_inputs_with_its_validator(farm: Farm, channels: int, scale: float, mode: str,
                                                           reason: str) -> None:
    """The validator looks at the linked image first, which is None at POST time (spec 5.9), so POST
    accepts the prompt and the worker runs VALIDATE_INPUTS again with the real image before the node."""
    prompt = {
        "img": n("SemImage", width=3, height=3, channels=channels, value=random.random()),
        "r": n("RobustNode", image=["img", 0], scale_factor=scale, mode=mode),
        "o": n("SemShow", value=["r", 0]),
    }
    res = farm.post(prompt)
    assert res.status_code == 200, res.text
    pid = res.json()["prompt_id"]
    entry = farm.wait(pid)
    assert entry["status"]["status_str"] == "error"
    error = next(data for kind, data in entry["status"]["messages"] if kind == "execution_error")
    assert error["node_id"] == "r" and error["node_type"] == "RobustNode"
    assert error["exception_type"] == "custom_validation_failed"
    assert f"image - {reason}" in error["exception_message"]
    assert error["executed"] == ["img"]


def test_robust_node_validator_runs_at_post_time(farm: Farm) -> None:
    """VALIDATE_INPUTS is called at POST with linked inputs as None: the seed's validator returns
    "Image must be a tensor" then, which the farm defers to the worker instead of rejecting."""
    prompt = {"img": image(), "r": n("RobustNode", image=["img", 0], scale_factor=1.0, mode="nearest"),
              "o": n("SemShow", value=["r", 0])}
    res = farm.post(prompt)
    assert res.status_code == 200 and res.json()["node_errors"] == {}
    assert_success(farm.wait(res.json()["prompt_id"]))


# ---- Progress Reporting: ProgressNode ----------------------------------------------------------------


def test_progress_node_reports_progress(farm: Farm) -> None:
    items = uniq()[:5]
    pid, messages, entry = run_ws(farm, {"p": n("ProgressNode", items=items), "o": n("SemShow", value=["p", 0])})
    assert_success(entry)
    assert texts(entry, "o") == [repr(ch.upper()) for ch in items]
    assert [(f["node"], f["value"], f["max"]) for f in frames(messages, "progress")] == [
        ("p", v, 100) for v in (20, 40, 60, 80, 100)]


def test_progress_node_stops_on_interrupt(farm: Farm) -> None:
    items = "x" * 200 + uniq()  # 0.05 s per item: ten seconds unless interrupted
    ws = WsClient(farm.url)
    started = time.time()
    try:
        pid = farm.submit({"p": n("ProgressNode", items=items), "o": n("SemShow", value=["p", 0])},
                          client_id=ws.client_id)
        ws.until(lambda m: isinstance(m, dict) and m["type"] == "progress" and m["data"]["node"] == "p")
        requests.post(farm.url + "/interrupt", json={"prompt_id": pid}, timeout=5)
        messages = ws.until_done(pid)
    finally:
        ws.close()
    assert time.time() - started < 6
    interrupted = frames(messages, "execution_interrupted")
    assert len(interrupted) == 1 and interrupted[0]["node_id"] == "p" and interrupted[0]["node_type"] == "ProgressNode"
    assert "o" not in [node for node, _ in executing(messages)]
    entry = farm.wait(pid)
    assert entry["status"]["status_str"] == "error" and entry["outputs"] == {}


# ---- Server-Client Communication: InteractiveNode ----------------------------------------------------


def test_interactive_node_events_reach_websocket_and_socketio_clients(farm: Farm) -> None:
    v, sio_id = ufloat(), uniq()
    got: list[tuple[str, Any]] = []
    done = threading.Event()
    sio = socketio.Client()

    @sio.on("*")
    def any_event(event: str, data: Any = None) -> None:
        got.append((event, data))
        if event == "my_node.complete" and isinstance(data, dict) and data.get("result") == v * 2:
            done.set()

    sio.connect(f"{farm.url}?clientId={sio_id}", wait_timeout=10)
    try:
        node_id = f"i{uniq()}"
        pid, messages, entry = run_ws(farm, {node_id: n("InteractiveNode", value=v), "o": n("SemShow", value=[node_id, 0])})
        assert_success(entry)
        custom = [(m["type"], m["data"]) for m in messages if m["type"].startswith("my_node.")]
        assert custom == [
            ("my_node.progress", {"node_id": node_id, "progress": 0.5, "message": "Processing..."}),
            ("my_node.complete", {"node_id": node_id, "result": v * 2}),
        ]
        assert done.wait(10), got
        assert [e for e in got if e[0].startswith("my_node.") and e[1]["node_id"] == node_id] == custom
        assert ("status", {"status": {"exec_info": {"queue_remaining": 0}}, "sid": sio_id}) in got
    finally:
        sio.disconnect()


# ---- Debug Utilities: DebugNode ------------------------------------------------------------------


def test_debug_node_accepts_any_type_and_passes_it_on(farm: Farm) -> None:
    prompt = {
        "img": image(3, 3),
        "f": n("PrimitiveFloat", value=ufloat()),
        "lat": n("EmptyLatentImage", width=16, height=16, batch_size=1),
        "d_img": n("DebugNode", any_input=["img", 0], label="image"),
        "d_f": n("DebugNode", any_input=["f", 0], label="float"),
        "d_lat": n("DebugNode", any_input=["lat", 0], label=uniq()),
        "inv": n("ImageInvert", image=["d_img", 0]),  # its "*" output feeds an IMAGE input
        "o": n("SemShow", value=["inv", 0]),
    }
    _, _, entry = run_ws(farm, prompt)
    assert_success(entry)
    assert texts(entry, "o") == ["Tensor[1, 3, 3, 3]"]


# ---- Custom Widgets, web extension -------------------------------------------------------------------


def test_widget_options_appear_unchanged_in_object_info(farm: Farm) -> None:
    info = requests.get(farm.url + "/object_info", timeout=10).json()
    assert info["RemoteWidgetNode"]["input"]["required"]["model_name"] == [
        "STRING", {"default": "", "remote": {"route": "/api/models", "refresh_button": True, "refresh": 60000}}]
    assert info["MultiSelectNode"]["input"]["required"]["options"] == [
        ["option1", "option2", "option3"],
        {"default": ["option1"], "multi_select": {"placeholder": "Select options...", "chip": True}}]
    assert info["ExpanderNode"]["python_module"] == "custom_nodes.seed_examples"


def test_web_directory_is_served_as_an_extension(farm: Farm) -> None:
    urls = requests.get(farm.url + "/extensions", timeout=10).json()
    assert "/extensions/seed_examples/my_extension.js" in urls
    res = requests.get(farm.url + "/extensions/seed_examples/my_extension.js", timeout=10)
    assert res.status_code == 200 and res.text.endswith(SEED_JS.read_text())  # the farm may prepend a shim
    assert 'name: "my.custom.extension"' in res.text


def test_object_info_lists_every_seed_node(farm: Farm) -> None:
    info = requests.get(farm.url + "/object_info", timeout=10).json()
    seed = {"InteractiveNode", "LazyProcessorNode", "DynamicInputNode", "RemoteWidgetNode", "MultiSelectNode",
            "ExpanderNode", "CachedProcessor", "MemoryEfficientNode", "RobustNode", "ProgressNode",
            "ConditionalNode", "LoopNode", "MyImageProcessor", "DebugNode"}
    assert seed <= set(info)
    assert json.loads(json.dumps(info["DebugNode"]["output"])) == ["*"] and info["DebugNode"]["output_node"] is True
