"""Faults with nothing lost (issue 9): each scenario is repeated and prints its figures.

1. A worker SIGKILLed in a burst of runs: the node it had prefetched (taken from the broker, not
   started) is re-sent at once, like the one it was running (worker/rescue.py).
2. The state Redis SIGKILLed and restarted from its append-only file mid-run: every run completes
   or fails with a clear error; the watchdog (worker/watchdog.py) re-sends what got lost.
3. A node longer than the broker's visibility timeout runs once: its live worker keeps the message
   from being re-delivered.
4. The API SIGKILLed and restarted mid-run: /ws and Socket.IO clients that reconnect get every event
   they missed, once.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.farm import Farm, marks

pytestmark = pytest.mark.integration

REPEATS = 3


def figure(line: str) -> None:
    print(f"\n[faults] {line}", flush=True)


def finished(farm: Farm, pids: list[str]) -> int:
    return sum(1 for score in farm.r.zmscore("nf:history", pids) if score is not None)


def wait_finished(farm: Farm, pids: list[str], timeout: float) -> float:
    start = time.time()
    while time.time() - start < timeout:
        if finished(farm, pids) == len(pids):
            return time.time() - start
        time.sleep(0.2)
    raise AssertionError(f"{finished(farm, pids)} of {len(pids)} runs finished within {timeout} s; logs:\n"
                         + "\n".join(farm.log(n)[-3000:] for n in farm.procs))


def history(farm: Farm) -> dict:
    return dict(requests.get(farm.url + "/history", params={"max_items": 100000}, timeout=30).json())


# ---- 1. prefetched nodes of a dead worker --------------------------------------------------------------


def test_a_burst_with_a_worker_sigkilled_loses_no_prefetched_node(tmp_path: Path) -> None:
    """200 small runs, one worker SIGKILLed ~1.5 s in: 200 of 200 finish with the right outputs, each
    once in the history. The watchdog is held back (10 min grace): the rescue of the nodes the dead
    worker held (running and prefetched) is what saves them."""
    farm = Farm(tmp_path, workers=2, env={"NODEFARM_MAX_ACTIVE_RUNS": "40", "NODEFARM_WATCHDOG_GRACE": "600"})
    runs, held_total = 200, 0
    try:
        for rep in range(REPEATS):
            tag = f"burst{rep}"
            victim = f"w{rep % 2}"
            held: dict[str, int] = {}

            def kill(victim: str = victim, held: dict[str, int] = held) -> None:
                name = f"{victim}@test"
                deadline = time.time() + 5  # the first moment it holds a prefetched node
                while not farm.r.hlen(f"nf:worker:{name}:reserved") and time.time() < deadline:
                    time.sleep(0.005)
                held["reserved"] = farm.r.hlen(f"nf:worker:{name}:reserved")
                held["running"] = farm.r.hlen(f"nf:worker:{name}:running")
                farm.kill(victim)

            start = time.time()
            timer = threading.Timer(1.5, kill)
            timer.start()
            pids, values = [], {}
            for i in range(runs):
                value = rep * 1000 + i + 0.5
                pid = farm.submit({
                    "1": {"class_type": "TestSlowValue", "inputs": {"value": value, "seconds": 0.05, "tag": tag}},
                    "2": {"class_type": "TestFloatOutput", "inputs": {"value": ["1", 0]}},
                })
                pids.append(pid)
                values[pid] = value
            timer.join()
            wait_finished(farm, pids, timeout=180)
            took = time.time() - start
            entries = history(farm)
            assert len(entries) == runs * (rep + 1)  # each run once, nothing extra
            for pid in pids:
                entry = entries[pid]
                assert entry["status"]["status_str"] == "success", entry["status"]
                assert entry["outputs"]["2"] == {"text": [repr(values[pid])]}
            executions = len(marks(farm, tag))
            held_total += held["reserved"]
            figure(f"burst {rep + 1}: {runs}/{runs} finished in {took:.1f} s; {victim} killed at 1.5 s holding "
                   f"{held['reserved']} prefetched + {held['running']} running; {executions} executions for {runs} nodes")
            farm.start_worker(rep % 2)
            farm.wait_workers(2)
        assert held_total >= REPEATS - 1, "the kills caught no prefetched node: the scenario did not happen"
    finally:
        farm.stop()
