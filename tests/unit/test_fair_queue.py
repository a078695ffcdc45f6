"""The queue's admission order (worker/prompt_queue.py) and the finished-job facts the jobs indexes
sort by (worker/history.py), as pure functions of plain data."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from api import auth, schemas
from api.schemas import JobPriorityBody, PromptBody
from worker import history, prompt_queue
from worker.prompt_queue import Lane, admission_order, priority_of, submitter_of


def lane(submitter: str, turn: float, *pids: str, level: int = 0) -> Lane:
    return Lane(level, submitter, turn, tuple(pids))


# ---- the order ------------------------------------------------------------------------------------------


def test_a_single_client_keeps_comfyuis_order() -> None:
    """One lane: the lane order itself (lower number first; a front run has a negative number)."""
    assert admission_order([lane("alice", 1, "front", "n1", "n2", "n3")]) == ["front", "n1", "n2", "n3"]


def test_one_clients_500_runs_do_not_starve_anothers_single_run() -> None:
    many = [f"a{i}" for i in range(500)]
    # alice was served last (turn 7), bob arrived after that (turn 8): bob's run is the second one
    order = admission_order([lane("alice", 7, *many), lane("bob", 8, "b0")])
    assert order[:3] == ["a0", "b0", "a1"] and order[3:] == many[2:]
    # bob's turn came first
    assert admission_order([lane("alice", 9, *many), lane("bob", 8, "b0")])[:2] == ["b0", "a0"]


def test_submitters_take_turns_round_after_round() -> None:
    order = admission_order([lane("c", 3, "c0"), lane("a", 1, "a0", "a1", "a2"), lane("b", 2, "b0", "b1")])
    assert order == ["a0", "b0", "c0", "a1", "b1", "a2"]


def test_a_higher_level_goes_first_whatever_the_turns() -> None:
    order = admission_order([
        lane("a", 1, "a0", "a1"),
        lane("b", 2, "b-urgent", level=5),
        lane("a", 3, "a-low", level=-1),
        lane("c", 4, "c-urgent0", "c-urgent1", level=5),
    ])
    assert order == ["b-urgent", "c-urgent0", "c-urgent1", "a0", "a1", "a-low"]


def test_equal_turns_go_by_submitter_bytes_as_redis_orders_members() -> None:
    assert admission_order([lane("b", 1, "b0"), lane("a", 1, "a0"), lane("B", 1, "B0")]) == ["B0", "a0", "b0"]


def test_an_empty_queue() -> None:
    assert admission_order([]) == []


# ---- what a run brings ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("extra", "level"), [
    ({}, 0), ({"priority": 3}, 3), ({"priority": -2}, -2), ({"priority": 4.0}, 4), ({"priority": 2.5}, 0),
    ({"priority": True}, 0), ({"priority": "9"}, 0), ({"priority": None}, 0), ({"priority": float("nan")}, 0),
    ({"priority": 10**7}, 0), ({"priority": float("inf")}, 0),
])
def test_priority_of(extra: dict[str, Any], level: int) -> None:
    assert priority_of(extra) == level


def test_submitter_of() -> None:
    assert submitter_of({"nodefarm_submitter": "alice", "client_id": "c1"}) == "alice"
    assert submitter_of({"client_id": "c1"}) == "c1"
    assert submitter_of({}) == ""


def test_the_names_agree_across_layers() -> None:
    assert prompt_queue.SUBMITTER_KEY == auth.SUBMITTER_KEY
    assert prompt_queue.PRIORITY_LIMIT == schemas.PRIORITY_LIMIT


@pytest.mark.parametrize("value", [True, "3", 2.5, 2_000_000, -2_000_000, float("inf"), None, [1]])
def test_a_priority_that_is_not_an_integer_level_is_refused(value: Any) -> None:
    with pytest.raises(ValidationError):
        JobPriorityBody.model_validate({"priority": value})
    with pytest.raises(ValidationError):
        PromptBody.model_validate({"prompt": {}, "extra_data": {"priority": value}})


@pytest.mark.parametrize("value", [0, 7, -3, 4.0, 1_000_000])
def test_an_integer_priority_is_taken(value: Any) -> None:
    assert JobPriorityBody.model_validate({"priority": value}).priority == int(value)
    assert PromptBody.model_validate({"prompt": {}, "extra_data": {"priority": value}}).extra_data == {"priority": value}


# ---- the facts of a finished run (worker/history.py) ------------------------------------------------------


def entry(status_str: str, *messages: tuple[str, dict[str, Any]], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"prompt": [1, "p", {}, extra or {}, []], "outputs": {},
            "status": {"status_str": status_str, "completed": status_str == "success",
                       "messages": [list(m) for m in messages]}}


START = ("execution_start", {"timestamp": 1000})


def test_job_facts_status() -> None:
    assert history.job_facts(entry("success", START, ("execution_success", {"timestamp": 1500}))).status == "completed"
    failed = history.job_facts(entry("error", START, ("execution_error", {"timestamp": 1700, "exception_message": "x"})))
    assert failed.status == "failed" and failed.error == {"timestamp": 1700, "exception_message": "x"}
    assert history.job_facts(entry("error", START, ("execution_interrupted", {"timestamp": 1200}))).status == "cancelled"


def test_job_facts_times() -> None:
    done = history.job_facts(entry("success", START, ("execution_success", {"timestamp": 1500})))
    assert (done.create_time, done.start, done.end, done.duration) == (1000, 1000, 1500, 500.0)
    stamped = history.job_facts(entry("success", START, extra={"create_time": 900}))
    assert stamped.create_time == 900 and stamped.duration == 0.0
    assert history.job_facts(entry("success"), finished_at=2.5).create_time == 2500
    assert history.job_facts(entry("success", extra={"create_time": float("nan")}), finished_at=3).create_time == 3000
    assert history.job_facts({}).create_time == 0


def test_job_facts_workflow() -> None:
    wf = history.job_facts(entry("success", extra={"extra_pnginfo": {"workflow": {"id": "wf-1"}}}))
    assert wf.workflow_id == "wf-1"
    assert history.job_facts(entry("success", extra={"extra_pnginfo": "junk"})).workflow_id is None
