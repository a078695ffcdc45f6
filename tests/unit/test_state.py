"""The run state machine (nodes/core/state.py), pure: stimuli in, events / dispatches / finish out.

Graphs here are API-format prompts; cache keys are plain strings. Every test drives the machine the
way the worker does: ``admit`` once, then one stimulus per node report.
"""

from __future__ import annotations

from typing import Any

from nodes.core import state
from nodes.core.graph import NodeFacts
from nodes.core.state import ErrorInfo, NodeSpec, RunState
from worker import events

PID = "p1"


def link(src: str, socket: int = 0) -> list:
    return [src, socket]


def spec(node: dict, key: str, facts: NodeFacts | None = None, **extra: Any) -> NodeSpec:
    f = facts or NodeFacts()
    return NodeSpec(node["class_type"], node["inputs"], key, f.lazy, f.raw_link, f.output, **extra)


def make(
    graph: dict[str, dict],
    outputs: list[str],
    facts: dict[str, NodeFacts] | None = None,
    keys: dict[str, str] | None = None,
) -> RunState:
    facts = facts or {}
    keys = keys or {nid: f"k-{nid}" for nid in graph}
    nodes = {nid: spec(n, keys[nid], facts.get(nid, NodeFacts(output=nid in outputs))) for nid, n in graph.items()}
    return RunState(PID, "client", outputs, nodes=nodes)


def node(class_type: str = "N", **inputs: Any) -> dict:
    return {"class_type": class_type, "inputs": inputs}


def chain() -> dict[str, dict]:
    """a -> b -> c (c is the output)."""
    return {"a": node(v=1), "b": node(x=link("a")), "c": node("Out", x=link("b"))}


def types(step: state.Step) -> list[str]:
    return [e for e, _ in step.events]


def event(step: state.Step, name: str) -> dict:
    return next(d for e, d in step.events if e == name)


def cached(st: RunState, *nids: str) -> list[str]:
    return [n for n in st.nodes if st.nodes[n].key in {f"k-{x}" for x in nids}]


# ---- admit -------------------------------------------------------------------------------------


def test_admit_starts_with_the_sources_and_waits_the_rest() -> None:
    st = make(chain(), ["c"])
    step = state.admit(st, [], {}, now_ms=5)
    assert types(step) == ["execution_start", "execution_cached"]
    assert event(step, "execution_start") == {"prompt_id": PID, "timestamp": 5}
    assert event(step, "execution_cached") == {"nodes": [], "prompt_id": PID, "timestamp": 5}
    assert step.dispatch == ["a"]
    assert st.status == {"a": "q", "b": "w", "c": "w"}
    assert st.deps["b"] == ["a"] and st.deps["c"] == ["b"]
    assert step.finish is None
    assert [m[0] for m in st.msgs] == ["execution_start", "execution_cached"]


def test_admit_with_a_cached_node_never_schedules_it() -> None:
    st = make(chain(), ["c"])
    step = state.admit(st, ["a"], {}, now_ms=1)
    assert event(step, "execution_cached")["nodes"] == ["a"]
    assert step.dispatch == ["b"]
    assert st.status["a"] == "c"
    assert "b" not in st.deps


def test_admit_with_everything_cached_resends_the_output_ui_and_succeeds() -> None:
    st = make(chain(), ["c"])
    ui = {"images": [{"filename": "x.png", "subfolder": "", "type": "output"}]}
    step = state.admit(st, ["a", "b", "c"], {"c": ui}, now_ms=7)
    assert types(step) == ["execution_start", "execution_cached", "executed", "progress_state", "execution_success"]
    assert event(step, "execution_cached")["nodes"] == ["a", "b", "c"]
    assert event(step, "executed") == {"node": "c", "display_node": "c", "output": ui, "prompt_id": PID}
    nodes = event(step, "progress_state")["nodes"]
    assert list(nodes) == ["c"]
    assert nodes["c"]["state"] == "finished" and (nodes["c"]["value"], nodes["c"]["max"]) == (1, 1)
    assert step.dispatch == [] and step.finish == "success"
    assert st.ui == {"c": ui} and st.end == "success"


def test_a_cached_output_without_ui_is_resent_with_null_output() -> None:
    st = make(chain(), ["c"])
    step = state.admit(st, ["a", "b", "c"], {"c": None}, now_ms=0)
    assert event(step, "executed")["output"] is None
    assert st.ui == {}


def test_cached_output_next_to_an_uncached_one() -> None:
    graph = {"a": node(v=1), "o1": node("Out", x=link("a")), "o2": node("Out", y=link("a"), z=2)}
    st = make(graph, ["o1", "o2"])
    step = state.admit(st, ["a", "o1"], {"o1": {"text": ["1"]}}, now_ms=0)
    assert event(step, "executed")["node"] == "o1"
    assert step.dispatch == ["o2"]
    assert step.finish is None


def test_nodes_not_reachable_from_an_output_never_run() -> None:
    graph = {"a": node(v=1), "b": node(v=2), "c": node("Out", x=link("a"))}
    st = make(graph, ["c"])
    state.admit(st, [], {}, 0)
    assert "b" not in st.status


# ---- node_done ---------------------------------------------------------------------------------


def test_node_done_unblocks_dependants_and_the_last_one_ends_the_run() -> None:
    st = make(chain(), ["c"])
    state.admit(st, [], {}, 0)
    step = state.node_done(st, "a", now_ms=1)
    assert step.dispatch == ["b"]
    assert types(step) == ["progress_state"]
    assert event(step, "progress_state")["nodes"]["a"]["state"] == "finished"
    step = state.node_done(st, "b", now_ms=2)
    assert step.dispatch == ["c"]
    step = state.node_done(st, "c", ui={"text": ["done"]}, now_ms=3)
    assert types(step) == ["executed", "progress_state", "execution_success"]
    assert event(step, "executed") == {"node": "c", "display_node": "c", "output": {"text": ["done"]}, "prompt_id": PID}
    assert event(step, "execution_success") == {"prompt_id": PID, "timestamp": 3}
    assert step.finish == "success"
    assert st.executed == ["a", "b", "c"]
    assert st.ui == {"c": {"text": ["done"]}}
    assert st.msgs[-1] == ["execution_success", {"prompt_id": PID, "timestamp": 3}]


def test_a_node_waits_for_all_of_its_sources() -> None:
    graph = {"a": node(v=1), "b": node(v=2), "c": node("Out", x=link("a"), y=link("b"))}
    st = make(graph, ["c"])
    step = state.admit(st, [], {}, 0)
    assert sorted(step.dispatch) == ["a", "b"]
    assert state.node_done(st, "a").dispatch == []
    assert state.node_done(st, "b").dispatch == ["c"]


def test_a_node_found_in_the_store_counts_as_done_but_not_as_executed() -> None:
    st = make(chain(), ["c"])
    state.admit(st, [], {}, 0)
    state.node_done(st, "a", ran=False)
    assert st.status["a"] == "d" and st.executed == []


def test_progress_state_events_carry_only_what_changed() -> None:
    """Stored events are deltas (a long chain would otherwise be quadratic); the relay expands them."""
    st = make(chain(), ["c"])
    state.admit(st, [], {}, 0)
    state.node_done(st, "a")
    step = state.node_done(st, "b")
    assert set(event(step, "progress_state")["nodes"]) == {"b"}


def test_finished_nodes_stay_in_the_expanded_progress_state() -> None:
    st = make(chain(), ["c"])
    registry = events.ProgressRegistry()
    state.admit(st, [], {}, 0)
    registry.expand(event(state.node_done(st, "a"), "progress_state"))
    nodes = registry.expand(event(state.node_done(st, "b"), "progress_state"))["nodes"]
    assert (nodes["a"]["value"], nodes["a"]["max"], nodes["a"]["state"]) == (1, 1, "finished")
    assert set(nodes) == {"a", "b"}


def test_duplicate_delivery_of_node_done_changes_nothing() -> None:
    st = make(chain(), ["c"])
    state.admit(st, [], {}, 0)
    state.node_done(st, "a")
    before = repr(st)
    again = state.node_done(st, "a")
    assert again.events == [] and again.dispatch == [] and again.finish is None
    assert repr(st) == before


def test_node_done_for_a_node_that_is_not_dispatched_is_ignored() -> None:
    st = make(chain(), ["c"])
    state.admit(st, [], {}, 0)
    assert state.node_done(st, "c").events == []  # still waiting on b
    assert st.status["c"] == "w"
    assert state.node_done(st, "zzz").events == []


def test_holder_is_recorded_for_results_only_in_one_workers_memory() -> None:
    st = make(chain(), ["c"])
    state.admit(st, [], {}, 0)
    state.node_done(st, "a", holder="w1@x")
    assert st.holders == {"a": "w1@x"}


# ---- lazy: node_pending --------------------------------------------------------------------------


def lazy_graph() -> tuple[dict[str, dict], dict[str, NodeFacts]]:
    """``l`` takes ``x`` (and ``y``) lazily; ``o`` shows ``l``."""
    graph = {
        "x": node(v=1),
        "y": node(v=2),
        "l": node("Switch", on_true=link("x"), on_false=link("y"), cond=True),
        "o": node("Out", v=link("l")),
    }
    facts = {"l": NodeFacts(lazy=frozenset({"on_true", "on_false"})), "o": NodeFacts(output=True)}
    return graph, facts


def test_lazy_sources_are_not_scheduled_at_admission() -> None:
    graph, facts = lazy_graph()
    st = make(graph, ["o"], facts)
    step = state.admit(st, [], {}, 0)
    assert step.dispatch == ["l"]
    assert "x" not in st.status and "y" not in st.status


def test_node_pending_schedules_the_requested_input_and_redispatches_the_node() -> None:
    graph, facts = lazy_graph()
    st = make(graph, ["o"], facts)
    state.admit(st, [], {}, 0)
    step = state.node_pending(st, "l", ["x"])
    assert step.dispatch == ["x"]
    assert st.status["l"] == "w" and st.deps["l"] == ["x"]
    step = state.node_done(st, "x")
    assert step.dispatch == ["l"]
    assert st.seq["l"] == 2  # the second dispatch gets a new sequence number
    state.node_done(st, "l")
    step = state.node_done(st, "o")
    assert step.finish == "success"
    assert "y" not in st.status  # the untaken branch never ran
    assert st.executed == ["x", "l", "o"]


def test_node_pending_for_an_input_already_available_redispatches_at_once() -> None:
    graph, facts = lazy_graph()
    st = make(graph, ["o"], facts)
    state.admit(st, ["x"], {}, 0)
    step = state.node_pending(st, "l", ["x"])
    assert step.dispatch == ["l"]


def test_node_pending_duplicate_is_ignored() -> None:
    graph, facts = lazy_graph()
    st = make(graph, ["o"], facts)
    state.admit(st, [], {}, 0)
    state.node_pending(st, "l", ["x"])
    again = state.node_pending(st, "l", ["x"])
    assert again.dispatch == [] and again.events == []


# ---- expansion: node_expanded ------------------------------------------------------------------


def expansion_run() -> RunState:
    graph = {"s": node(v=1), "e": node("Expand", start=link("s")), "o": node("Out", v=link("e"))}
    st = make(graph, ["o"])
    state.admit(st, [], {}, 0)
    state.node_done(st, "s")
    return st


def ephemeral(st: RunState, nid: str, new_graph: dict[str, dict], keys: dict[str, str],
              facts: dict[str, NodeFacts] | None = None, display: dict[str, str] | None = None) -> dict[str, NodeSpec]:
    specs: dict[str, NodeSpec] = {}
    for new_id, n in new_graph.items():
        f = (facts or {}).get(new_id, NodeFacts())
        specs[new_id] = state.ephemeral_spec(st, nid, specs, (display or {}).get(new_id), class_type=n["class_type"],
                                             inputs=n["inputs"], key=keys[new_id], lazy=f.lazy, raw_link=f.raw_link,
                                             output=f.output)
    return specs


def expand(st: RunState, nid: str, new_graph: dict[str, dict], result: list, *,
           facts: dict[str, NodeFacts] | None = None, display: dict[str, str] | None = None) -> state.Step:
    keys = {n: f"k-{n}" for n in new_graph}
    return state.node_expanded(st, nid, ephemeral(st, nid, new_graph, keys, facts, display), result, now_ms=9)


def test_expansion_runs_the_subgraph_then_resolves_the_parent() -> None:
    st = expansion_run()
    new = {"e.0.0.1": node("Math", a=link("s"), b=1.0), "e.0.0.2": node("Math", a=link("e.0.0.1"), b=1.0)}
    step = expand(st, "e", new, [[link("e.0.0.2")]])
    assert step.dispatch == ["e.0.0.1"] and step.events == []
    assert st.status["e"] == "w" and st.deps["e"] == ["e.0.0.2"]
    assert st.resolve["e"] == [[link("e.0.0.2")]]
    assert (st.nodes["e.0.0.1"].parent, st.nodes["e.0.0.1"].display, st.nodes["e.0.0.1"].real) == ("e", "e", "e")
    assert state.node_done(st, "e.0.0.1").dispatch == ["e.0.0.2"]
    assert state.node_done(st, "e.0.0.2").dispatch == ["e"]
    assert state.node_done(st, "e").dispatch == ["o"]
    assert state.node_done(st, "o").finish == "success"
    assert st.executed == ["s", "e.0.0.1", "e.0.0.2", "e", "o"]


def test_ephemeral_nodes_report_display_parent_and_real_ids() -> None:
    st = expansion_run()
    expand(st, "e", {"e.0.0.1": node("Again")}, [[link("e.0.0.1")]])
    expand(st, "e.0.0.1", {"e.0.0.1.0.0.1": node("Math")}, [[link("e.0.0.1.0.0.1")]])
    deep = "e.0.0.1.0.0.1"
    assert state.display_id(st, deep) == "e" and state.parent_id(st, deep) == "e.0.0.1"
    assert state.real_id(st, deep) == "e"
    entry = state.progress_entry(st, deep, 0, 1, True)
    assert entry == {"value": 0, "max": 1, "state": "running", "node_id": deep, "prompt_id": PID,
                     "display_node_id": "e", "parent_node_id": "e.0.0.1", "real_node_id": "e"}
    assert state.parent_id(st, "e") is None


def test_override_display_id_is_followed() -> None:
    st = expansion_run()
    expand(st, "e", {"e.0.0.m": node("Math")}, [[link("e.0.0.m")]], display={"e.0.0.m": "s"})
    assert state.display_id(st, "e.0.0.m") == "s"
    assert state.real_id(st, "e.0.0.m") == "e"


def test_output_nodes_of_an_expansion_are_scheduled_too() -> None:
    st = expansion_run()
    new = {"e.0.0.1": node("Math"), "e.0.0.2": node("Show", v=link("e.0.0.1"))}
    step = expand(st, "e", new, [[1.0]], facts={"e.0.0.2": NodeFacts(output=True)})
    assert step.dispatch == ["e.0.0.1"]
    assert st.deps["e"] == ["e.0.0.2"]


def test_expansion_with_a_plain_value_result_resolves_at_once() -> None:
    st = expansion_run()
    step = expand(st, "e", {}, [[3.0]])
    assert step.dispatch == ["e"]


def test_expansion_reusing_a_result_already_in_this_run() -> None:
    st = expansion_run()
    step = expand(st, "e", {"e.0.0.1": node("Math", a=link("s"))}, [[link("s")]])
    assert "e" in step.dispatch or st.deps["e"] == ["e.0.0.1"]


def test_duplicate_expansion_report_is_ignored() -> None:
    st = expansion_run()
    expand(st, "e", {"e.0.0.1": node("Math")}, [[link("e.0.0.1")]])
    again = expand(st, "e", {"e.0.0.1": node("Math")}, [[link("e.0.0.1")]])
    assert again.dispatch == [] and again.events == []


def test_an_expansion_closing_a_cycle_fails_on_the_expanding_node() -> None:
    st = expansion_run()
    new = {"e.0.0.1": node("Math", a=link("e.0.0.2")), "e.0.0.2": node("Math", a=link("e.0.0.1"))}
    step = expand(st, "e", new, [[link("e.0.0.2")]])
    assert step.finish == "error" and step.dispatch == []
    assert types(step) == ["execution_error"]
    err = event(step, "execution_error")
    assert err["node_id"] == "e" and err["node_type"] == "Expand"
    assert err["exception_type"] == "graph.DependencyCycleError"
    assert err["exception_message"] == "Dependency cycle detected"
    assert err["traceback"] == [] and err["current_inputs"] == []
    assert err["executed"] == ["s"]
    assert st.end == "error"
    assert state.node_done(st, "e.0.0.1").events == []


def test_a_cycle_closed_by_lazy_requests_fails_instead_of_hanging() -> None:
    st = expansion_run()
    lazy = NodeFacts(lazy=frozenset({"a"}))
    new = {"e.0.0.1": node("Pick", a=link("e.0.0.2")), "e.0.0.2": node("Pick", a=link("e.0.0.1"))}
    step = expand(st, "e", new, [[link("e.0.0.1")]], facts={"e.0.0.1": lazy, "e.0.0.2": lazy})
    assert step.dispatch == ["e.0.0.1"]
    step = state.node_pending(st, "e.0.0.1", ["e.0.0.2"])
    assert step.dispatch == ["e.0.0.2"]
    step = state.node_pending(st, "e.0.0.2", ["e.0.0.1"])
    assert step.finish == "error"
    err = event(step, "execution_error")
    assert err["exception_type"] == "graph.DependencyCycleError"
    assert err["node_id"] == "e"  # the real (display) node, as upstream blames the expanding parent


# ---- failures and interrupts -------------------------------------------------------------------


def test_node_failed_ends_the_run_once() -> None:
    st = make(chain(), ["c"])
    state.admit(st, ["a"], {}, 0)
    state.node_done(st, "b")
    info = ErrorInfo("boom\n", "ValueError", ["tb"], {"x": [1]})
    step = state.node_failed(st, "c", info, now_ms=4)
    assert step.finish == "error" and types(step) == ["execution_error"]
    err = event(step, "execution_error")
    assert err == {
        "prompt_id": PID, "node_id": "c", "node_type": "Out", "executed": ["b"],
        "exception_message": "boom\n", "exception_type": "ValueError", "traceback": ["tb"],
        "current_inputs": {"x": [1]}, "current_outputs": ["a", "b"], "timestamp": 4,
    }
    assert st.msgs[-1] == ["execution_error", err]
    assert state.node_failed(st, "c", info, 5).events == []
    assert state.interrupted(st, "c", 5).events == []
    assert state.node_done(st, "c").events == []


def test_failure_of_an_ephemeral_node_is_reported_on_its_real_node() -> None:
    st = expansion_run()
    expand(st, "e", {"e.0.0.1": node("Math")}, [[link("e.0.0.1")]])
    err = event(state.node_failed(st, "e.0.0.1", ErrorInfo("", "X"), 0), "execution_error")
    assert err["node_id"] == "e" and err["node_type"] == "Expand"


def test_interrupted_ends_the_run_once() -> None:
    st = make(chain(), ["c"])
    state.admit(st, [], {}, 0)
    state.node_done(st, "a")
    step = state.interrupted(st, "b", now_ms=8)
    assert step.finish == "interrupted"
    assert step.events == [("execution_interrupted", {
        "prompt_id": PID, "node_id": "b", "node_type": "N", "executed": ["a"], "timestamp": 8})]
    assert state.interrupted(st, "b", 9).events == []
    assert state.node_done(st, "b").dispatch == []  # the queued c never starts
    assert st.status["c"] == "w"


def test_interrupt_with_no_node_running() -> None:
    st = make(chain(), ["c"])
    state.admit(st, [], {}, 0)
    data = event(state.interrupted(st, None, 1), "execution_interrupted")
    assert data["node_id"] is None and data["node_type"] is None


# ---- lost inputs -------------------------------------------------------------------------------


def test_lost_inputs_are_recomputed_before_the_node_runs_again() -> None:
    st = make(chain(), ["c"])
    state.admit(st, [], {}, 0)
    state.node_done(st, "a")
    step = state.lost_inputs(st, "b", ["a"])
    assert step.dispatch == ["a"]
    assert st.status["b"] == "w" and st.deps["b"] == ["a"]
    assert state.node_done(st, "a").dispatch == ["b"]


def test_lost_cached_inputs_are_no_longer_counted_as_cached() -> None:
    st = make(chain(), ["c"])
    state.admit(st, ["a"], {}, 0)
    step = state.lost_inputs(st, "b", ["a"])
    assert step.dispatch == ["a"]
    assert st.cached() == []
    assert state.node_done(st, "a").dispatch == ["b"]


def test_lost_inputs_for_a_node_not_dispatched_is_ignored() -> None:
    st = make(chain(), ["c"])
    state.admit(st, [], {}, 0)
    assert state.lost_inputs(st, "c", ["b"]).dispatch == []


# ---- identical nodes ---------------------------------------------------------------------------


def test_identical_nodes_run_once_the_second_waits_for_the_first() -> None:
    graph = {"a1": node(v=1), "a2": node(v=1), "c": node("Out", x=link("a1"), y=link("a2"))}
    keys = {"a1": "same", "a2": "same", "c": "k-c"}
    st = make(graph, ["c"], keys=keys)
    step = state.admit(st, [], {}, 0)
    assert len(step.dispatch) == 1
    first = step.dispatch[0]
    second = "a2" if first == "a1" else "a1"
    assert st.status[second] == "w" and st.deps[second] == [first]
    step = state.node_done(st, first, ui={"text": ["x"]}, holder="w1", worker="w1")
    assert step.dispatch == ["c"]  # the identical node is done with the first: a cache hit, never dispatched
    assert st.status[second] == "d" and st.holders[second] == "w1" and st.made[second] == "w1"
    assert [e for e, d in step.events] == ["executed", "progress_state", "executed", "progress_state"]
    assert event(step, "executed")["node"] == first
    assert state.node_done(st, "c").finish == "success"
    assert st.executed == [first, "c"]


def test_run_unique_keys_are_never_deduplicated() -> None:
    graph = {"a1": node(v=1), "a2": node(v=1), "c": node("Out", x=link("a1"), y=link("a2"))}
    keys = {"a1": "u:same", "a2": "u:same", "c": "u:c"}
    st = make(graph, ["c"], keys=keys)
    assert sorted(state.admit(st, [], {}, 0).dispatch) == ["a1", "a2"]


def test_a_raw_link_source_is_still_a_dependency() -> None:
    """Upstream's add_node skips only lazy inputs: a rawLink source runs before its consumer."""
    graph = {"open": node(v=1), "close": node("Out", flow=link("open"))}
    st = make(graph, ["close"], {"close": NodeFacts(raw_link=frozenset({"flow"}), output=True)})
    step = state.admit(st, [], {}, 0)
    assert step.dispatch == ["open"]
    assert st.deps["close"] == ["open"]


def test_nodes_waiting_after_they_started_stay_running_in_progress_state() -> None:
    """Upstream starts a node's progress when it executes and finishes it only when it completes: a
    lazy node that asked for inputs and an expanded node stay "running" meanwhile."""
    graph, facts = lazy_graph()
    st = make(graph, ["o"], facts)
    state.admit(st, [], {}, 0)
    registry = events.ProgressRegistry()
    registry.expand(state.progress_delta(st, "l", 0.0, 1.0, True))  # the worker starts l
    state.node_pending(st, "l", ["x"])
    nodes = registry.expand(state.progress_delta(st, "x", 0.0, 1.0, True))["nodes"]
    assert {k: v["state"] for k, v in nodes.items()} == {"l": "running", "x": "running"}
    step = state.node_done(st, "x")
    nodes = registry.expand(event(step, "progress_state"))["nodes"]
    assert {k: v["state"] for k, v in nodes.items()} == {"l": "running", "x": "finished"}
    assert "o" not in nodes  # waiting, never started: pending, not listed


def test_literal_nodes_of_an_expansion_are_done_from_the_start() -> None:
    st = expansion_run()
    new = {"e.0.0.1": node("Invert", image=link("e.0.0.1#image")), "e.0.0.1#image": node("nodefarm.Literal")}
    keys = {"e.0.0.1": "k1", "e.0.0.1#image": "u:lit"}
    step = state.node_expanded(st, "e", ephemeral(st, "e", new, keys), [[link("e.0.0.1")]], done={"e.0.0.1#image": "w2@x"})
    assert step.dispatch == ["e.0.0.1"]
    assert st.status["e.0.0.1#image"] == "d" and st.holders["e.0.0.1#image"] == "w2@x"
    assert "e.0.0.1#image" not in st.executed
