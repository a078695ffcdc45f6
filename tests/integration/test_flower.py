"""Flower and ``celery inspect`` against a real farm (issue 11, item 4): the workers send task events,
and node tasks carry readable names (``nf.node:<class>``) and args (``<class> #<node> of <run>``),
which the run functions put in their messages' headers (worker/functions.lua ``publish``).

Flower is started exactly as the README says: ``celery --broker=<the farm's Redis> flower``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.farm import Farm, assert_success, free_port

WORKERS = {"w0@test", "w1@test"}


@pytest.fixture(scope="module")
def flower(farm: Farm, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log_path = Path(tmp_path_factory.mktemp("flower")) / "flower.log"
    env = {**os.environ, "FLOWER_UNAUTHENTICATED_API": "true"}  # Flower 2 serves its API only with this, or auth
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", f"--broker={farm.state.url}", "flower", f"--port={port}",
             "--address=127.0.0.1"],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                if requests.get(url + "/healthcheck", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise AssertionError("Flower did not start:\n" + log_path.read_text(errors="replace")[-3000:])
            time.sleep(0.3)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def flower_json(url: str, path: str, **params: Any) -> Any:
    res = requests.get(url + path, params=params, timeout=15)
    assert res.status_code == 200, f"{path}: {res.status_code} {res.text[:300]}"
    return res.json()


def slow_prompt(tag: str) -> dict:
    return {
        "s": {"class_type": "TestSlowValue", "inputs": {"value": 7.0, "seconds": 3.0, "tag": tag}},
        "o": {"class_type": "TestFloatOutput", "inputs": {"value": ["s", 0], "label": tag}},
    }


def test_flower_lists_both_workers(flower: str) -> None:
    deadline = time.time() + 30
    while True:
        listed = flower_json(flower, "/api/workers", refresh="1")
        if WORKERS <= set(listed):
            break
        assert time.time() < deadline, f"Flower lists {sorted(listed)}"
        time.sleep(1)
    for name in WORKERS:  # what `celery inspect` answered for it: its queues and the node task
        info = listed[name]
        assert "nf.node" in info["registered"]
        assert "nf.nodes" in {q["name"] for q in info["active_queues"]}


def test_flower_shows_a_completed_node_task_by_class_and_run(farm: Farm, flower: str) -> None:
    tag = f"flower-{uuid.uuid4().hex[:8]}"
    pid = farm.submit(slow_prompt(tag))
    assert_success(farm.wait(pid))
    deadline = time.time() + 30
    while True:
        tasks = flower_json(flower, "/api/tasks")
        mine = {t["name"]: t for t in tasks.values() if pid in str(t.get("args"))}
        output = mine.get("nf.node:TestFloatOutput")
        if output is not None and output["state"] == "SUCCESS" and "nf.node:TestSlowValue" in mine:
            break
        assert time.time() < deadline, f"Flower's tasks of {pid}: {json.dumps(mine)[:2000]}"
        time.sleep(0.5)
    assert output["args"] == f"TestFloatOutput #o of {pid}"
    assert output["worker"] in WORKERS
    slow = mine["nf.node:TestSlowValue"]
    assert slow["args"] == f"TestSlowValue #s of {pid}"
    assert slow["runtime"] >= 3.0


def test_celery_inspect_shows_the_running_node_by_class_and_run(farm: Farm) -> None:
    tag = f"inspect-{uuid.uuid4().hex[:8]}"
    pid = farm.submit(slow_prompt(tag))
    seen: list[dict] = []
    done = threading.Event()
    deadline = time.time() + 30
    while not done.is_set() and time.time() < deadline:
        out = subprocess.run(
            [sys.executable, "-m", "celery", f"--broker={farm.state.url}", "inspect", "active", "--json",
             "--timeout=2"],
            capture_output=True, text=True, timeout=60,
        )
        if out.returncode == 0 and out.stdout.strip():
            active = json.loads(out.stdout.strip().splitlines()[-1])
            seen = [t for tasks in active.values() for t in tasks if pid in str(t.get("args"))]
            if seen:
                done.set()
        time.sleep(0.3)
    assert seen, "celery inspect active never showed the running node"
    assert seen[0]["name"] == "nf.node:TestSlowValue"  # the header's shadow name; `type` stays the task's
    assert (seen[0]["type"], seen[0]["args"]) == ("nf.node", [pid, "s", 1])  # inspect shows the real args
    assert_success(farm.wait(pid))
