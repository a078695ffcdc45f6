"""No lost runs when a worker dies; a node that keeps killing workers fails clearly."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.farm import Farm, WsClient, marks

pytestmark = pytest.mark.integration


@pytest.fixture()
def fresh_farm(tmp_path: Path) -> Iterator[Farm]:
    f = Farm(tmp_path, workers=2)
    yield f
    f.stop()


def test_sigkilled_worker_mid_node_another_worker_finishes_the_run(fresh_farm: Farm) -> None:
    farm = fresh_farm
    prompt = {
        "1": {"class_type": "TestSlowValue", "inputs": {"value": 3.5, "seconds": 4.0, "tag": "victim"}},
        "2": {"class_type": "MathOperation", "inputs": {"a": ["1", 0], "b": 2.0, "operation": "multiply"}},
        "3": {"class_type": "TestFloatOutput", "inputs": {"value": ["2", 0]}},
    }
    ws = WsClient(farm.url)
    pid = farm.submit(prompt, client_id=ws.client_id)
    mark = farm.marks / "victim"
    deadline = time.time() + 30
    while not mark.exists() and time.time() < deadline:
        time.sleep(0.05)
    victim = mark.read_text().split()[0]  # "w0@test" or "w1@test"
    farm.kill(victim.split("@")[0])  # SIGKILL the whole worker (main process and its pool child)
    messages = ws.until_done(pid, timeout=60)
    ws.close()
    entry = farm.wait(pid)
    assert entry["status"]["status_str"] == "success", entry["status"]
    assert entry["outputs"]["3"] == {"text": ["7.0"]}
    starts = mark.read_text().split("\n")
    runners = [line.split()[0] for line in starts if line]
    assert runners[0] == victim and runners[-1] != victim  # the other worker ran the node again
    assert "execution_error" not in [m["type"] for m in messages]


def test_node_that_kills_its_worker_fails_the_run_after_few_attempts(fresh_farm: Farm) -> None:
    farm = fresh_farm
    prompt = {
        "1": {"class_type": "TestKillWorker", "inputs": {"value": 1.0}},
        "2": {"class_type": "TestFloatOutput", "inputs": {"value": ["1", 0]}},
    }
    ws = WsClient(farm.url)
    pid = farm.submit(prompt, client_id=ws.client_id)
    messages = ws.until_done(pid, timeout=90)
    ws.close()
    error = next(m["data"] for m in messages if m["type"] == "execution_error")
    assert error["exception_type"] == "nodefarm.WorkerLost"
    assert "TestKillWorker" in error["exception_message"] and error["node_id"] == "1"
    attempts = (farm.marks / "killer").read_text().split()
    assert len(attempts) == 2  # NODEFARM_MAX_NODE_ATTEMPTS default
    assert farm.wait(pid)["status"]["status_str"] == "error"
    # the farm still works afterwards
    ok = farm.run({"1": {"class_type": "TestFloatOutput", "inputs": {"value": ["2", 0]}},
                   "2": {"class_type": "PrimitiveFloat", "inputs": {"value": 4.25}}})
    assert ok["outputs"]["1"] == {"text": ["4.25"]}


def test_out_of_memory_frees_and_retries_the_node_once_on_another_worker(farm: Farm) -> None:
    tag = f"oom-{time.time_ns()}"
    entry = farm.run({"1": {"class_type": "TestOutOfMemory", "inputs": {"value": 2.5, "tag": tag, "fail_on": 1}},
                      "2": {"class_type": "TestFloatOutput", "inputs": {"value": ["1", 0]}}})
    assert entry["status"]["status_str"] == "success", entry["status"]
    tries = marks(farm, tag)
    assert len(tries) == 2 and tries[0] != tries[1], tries  # the retry ran on the other worker


def test_out_of_memory_twice_fails_the_run_with_a_clear_message(farm: Farm) -> None:
    tag = f"oom-{time.time_ns()}"
    entry = farm.run({"1": {"class_type": "TestOutOfMemory", "inputs": {"value": 1.5, "tag": tag, "fail_on": 5}},
                      "2": {"class_type": "TestFloatOutput", "inputs": {"value": ["1", 0]}}})
    assert entry["status"]["status_str"] == "error"
    error = next(m[1] for m in entry["status"]["messages"] if m[0] == "execution_error")
    assert error["exception_type"] == "torch.OutOfMemoryError"
    assert "ran out of memory on your GPU" in error["exception_message"]
    assert len(marks(farm, tag)) == 2  # tried here, then once more elsewhere; no more


def test_a_worker_restarted_at_once_under_its_name_runs_its_lost_node_again(tmp_path: Path) -> None:
    """What a supervisor (systemd, compose, nodefarm up) does: SIGKILL, then the same worker name
    again before anyone saw it go silent. The new process re-sends what the old one was running."""
    farm = Farm(tmp_path, workers=1)
    try:
        tag = f"restart-{time.time_ns()}"
        pid = farm.submit({
            "1": {"class_type": "TestSlowValue", "inputs": {"value": 1.5, "seconds": 3.0, "tag": tag}},
            "2": {"class_type": "TestFloatOutput", "inputs": {"value": ["1", 0]}},
        })
        deadline = time.time() + 30
        while not marks(farm, tag) and time.time() < deadline:
            time.sleep(0.05)
        farm.kill("w0")
        farm.start_worker(0)
        entry = farm.wait(pid, timeout=60)
        assert entry["status"]["status_str"] == "success", entry["status"]
        assert entry["outputs"]["2"] == {"text": ["1.5"]}
        assert len(marks(farm, tag)) == 2  # started by the killed process, then by its successor
    finally:
        farm.stop()


def test_a_result_store_restart_mid_run_costs_no_run(fresh_farm: Farm) -> None:
    """The result Redis goes away for 3 s (and comes back empty) while runs are in flight: the
    clients wait for it, lost results are computed again from their recipes, every run succeeds."""
    farm = fresh_farm
    tag = f"store-{time.time_ns()}"
    pids = [farm.submit({
        "1": {"class_type": "TestSlowValue", "inputs": {"value": float(i), "seconds": 1.5, "tag": tag}},
        "2": {"class_type": "MathOperation", "inputs": {"a": ["1", 0], "b": 10.0, "operation": "add"}},
        "3": {"class_type": "MathOperation", "inputs": {"a": ["2", 0], "b": 2.0, "operation": "multiply"}},
        "4": {"class_type": "TestFloatOutput", "inputs": {"value": ["3", 0]}},
    }) for i in range(3)]
    deadline = time.time() + 30
    while len(marks(farm, tag)) < 1 and time.time() < deadline:
        time.sleep(0.05)
    farm.results.restart(down_s=3.0)
    for i, pid in enumerate(pids):
        entry = farm.wait(pid, timeout=90)
        assert entry["status"]["status_str"] == "success", entry["status"]
        assert entry["outputs"]["4"] == {"text": [repr((i + 10.0) * 2.0)]}
