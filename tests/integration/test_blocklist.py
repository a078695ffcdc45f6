"""The bad-worker blocklist (issue 9, item 6), against a real Redis and a real 2-worker farm.

A worker whose nodes fail while the same nodes succeed elsewhere, or that keeps dying, is blocklisted
for a while and its nodes go elsewhere; /system_stats, the dashboard, the API and the CLI show it; an
operator lifts it; a blocklisted worker alone on the farm still runs work (worker/blocklist.py).
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import redis
import requests

from nodes.settings import Settings
from tests.farm import Farm, assert_success, functions_redis, marks
from worker import blocklist, heartbeat, keys

# ---- the Redis side, without workers -----------------------------------------------------------


@pytest.fixture()
def r(tmp_path: Path) -> Iterator[redis.Redis]:
    with functions_redis(tmp_path / "redis") as client:
        yield client


def settings(name: str = "w1", **changes: Any) -> Settings:
    return Settings(worker_name=name, heartbeat_s=0.5).with_(**changes)


def fake_farm(r: redis.Redis, name: str) -> Any:
    return SimpleNamespace(r=r, settings=settings(name), gate=blocklist.Gate())


def test_the_third_failure_in_the_window_blocklists_and_resets_the_count(r: redis.Redis) -> None:
    s = settings()
    assert blocklist.charge(r, s, "w0", "died") is None
    assert blocklist.charge(r, s, "w0", "died") is None
    assert blocklist.failure_counts(r, ["w0", "w1"], s.blocklist_s) == {"w0": 2, "w1": 0}
    entry = blocklist.charge(r, s, "w0", "X failed there")
    assert entry is not None and entry.failures == 3 and entry.reason.endswith("the last: X failed there")
    assert blocklist.entries(r) == {"w0": entry}
    assert blocklist.failure_counts(r, ["w0"], s.blocklist_s) == {"w0": 0}  # a fresh count once out


def test_failures_outside_the_window_do_not_add_up(r: redis.Redis) -> None:
    s = settings(blocklist_s=60.0)
    now = time.time()
    blocklist.charge(r, s, "w0", "old", now - 120)
    blocklist.charge(r, s, "w0", "old", now - 61)
    assert blocklist.charge(r, s, "w0", "new", now) is None
    assert blocklist.failure_counts(r, ["w0"], 60.0, now) == {"w0": 1}


def test_an_entry_expires_by_itself_and_lifting_is_reported(r: redis.Redis) -> None:
    s = settings(blocklist_s=60.0)
    for _ in range(3):
        blocklist.charge(r, s, "w0", "died", time.time() - 61)  # its entry ended a second ago
    assert blocklist.entries(r) == {} and r.hlen(keys.BLOCKLIST) == 0  # the expired entry is gone
    for _ in range(3):
        blocklist.charge(r, s, "w0", "died")
    assert blocklist.entry_of(r, "w0") is not None
    assert blocklist.lift(r, "w0") is True
    assert blocklist.entry_of(r, "w0") is None and blocklist.lift(r, "w0") is False


def test_a_failure_is_charged_when_the_same_key_then_succeeds_on_another_worker(r: redis.Redis) -> None:
    w0, w1 = fake_farm(r, "w0"), fake_farm(r, "w1")
    blocklist.record_failure(r, w0.settings, "k1", "TestBadWorker", "w0", "ValueError: broken")
    assert blocklist.succeeded(w0, "k1", attempts=1) == []  # its own success settles it: nobody charged
    for key in ("k2", "k3"):
        blocklist.record_failure(r, w0.settings, key, "TestBadWorker", "w0", "ValueError: broken")
    assert blocklist.succeeded(w1, "k2", attempts=1) == ["w0"]
    assert blocklist.succeeded(w1, "k2", attempts=1) == []  # once per failure
    assert blocklist.succeeded(w1, "other", attempts=1) == []
    counted = blocklist.failure_counts(r, ["w0", "w1"], 600)
    assert counted == {"w0": 1, "w1": 0}
    reason = r.zrange(keys.worker_failures("w0"), 0, -1)[0].decode()
    assert "TestBadWorker failed there (ValueError: broken) and succeeded on w1" in reason


def test_without_recorded_failures_a_success_costs_no_round_trip(r: redis.Redis) -> None:
    farm = fake_farm(r, "w1")
    farm.gate.failures_recorded(r)  # the flag is read now (nothing recorded) and trusted for REFRESH_S
    r.hset(keys.FAILED, "k", json.dumps({"workers": {"w0": time.time()}}))  # recorded meanwhile
    assert blocklist.succeeded(farm, "k", attempts=1) == []  # not seen yet: no look
    assert blocklist.succeeded(farm, "k", attempts=2) == ["w0"]  # a retried node always looks


def test_a_dead_worker_claimed_by_the_reaper_is_charged(r: redis.Redis) -> None:
    r.zadd(keys.WORKERS, {"ghost": time.time() - 60})
    heartbeat.reap(r, settings("w1"))
    assert blocklist.failure_counts(r, ["ghost"], 600) == {"ghost": 1}
    assert "died" in r.zrange(keys.worker_failures("ghost"), 0, -1)[0].decode()


def test_a_worker_restarted_with_nodes_in_flight_is_charged_and_a_clean_start_is_not(r: redis.Redis) -> None:
    s = settings("w0")
    heartbeat.restarted(r, s)
    assert blocklist.failure_counts(r, ["w0"], 600) == {"w0": 0}
    r.hset(keys.worker_running("w0"), "p 1", json.dumps(["p", "1", 1]))
    heartbeat.restarted(r, s)
    assert blocklist.failure_counts(r, ["w0"], 600) == {"w0": 1}


def test_a_blocklisted_worker_hands_its_node_to_the_least_busy_healthy_worker(r: redis.Redis) -> None:
    now = time.time()
    r.zadd(keys.WORKERS, {"w0": now, "w1": now, "w2": now, "w3": now - 60})  # w3: dead
    r.lpush(keys.worker_queue("w1"), "busy")
    w0 = fake_farm(r, "w0")
    assert blocklist.bounce(w0, "p", "1", 1) is None  # not blocklisted: runs it
    for _ in range(3):
        blocklist.charge(r, w0.settings, "w0", "died")
    w0.gate = blocklist.Gate()  # a fresh view (a process refreshes its own within REFRESH_S)
    assert blocklist.bounce(w0, "p", "1", 1) == "w2"
    task = json.loads(r.lindex(keys.worker_queue("w2"), 0))
    assert task["headers"]["task"] == keys.NODE_TASK and json.loads(task["body"])[0] == ["p", "1", 1]
    for _ in range(3):
        blocklist.charge(r, w0.settings, "w2", "died")
    for _ in range(3):
        blocklist.charge(r, w0.settings, "w1", "died")
    assert blocklist.bounce(w0, "p", "1", 1) is None  # every live worker blocklisted: it runs here


# ---- a real farm ---------------------------------------------------------------------------------


def bad_prompt(value: float, tag: str, slow_tag: str, n: int = 4) -> dict:
    """``n`` nodes side by side that fail only on w0, and a plain node beside them (marks say who ran
    what): both workers take some of them."""
    prompt: dict = {
        "s": {"class_type": "TestSlowValue", "inputs": {"value": value, "seconds": 0.05, "tag": slow_tag}},
        "so": {"class_type": "TestFloatOutput", "inputs": {"value": ["s", 0], "label": "slow"}},
    }
    for i in range(n):
        prompt[f"b{i}"] = {"class_type": "TestBadWorker",
                           "inputs": {"value": value + i / 10, "bad_worker": "w0@test", "tag": tag, "kind": "cuda"}}
        prompt[f"o{i}"] = {"class_type": "TestFloatOutput", "inputs": {"value": [f"b{i}", 0]}}
    return prompt


def wide_prompt(value: float, tag: str, n: int = 4, seconds: float = 0.4) -> dict:
    prompt: dict = {}
    for i in range(n):
        prompt[f"s{i}"] = {"class_type": "TestSlowValue", "inputs": {"value": value + i, "seconds": seconds, "tag": tag}}
        prompt[f"o{i}"] = {"class_type": "TestFloatOutput", "inputs": {"value": [f"s{i}", 0]}}
    return prompt


def listing(farm: Farm) -> dict:
    res = requests.get(farm.url + "/nodefarm/blocklist", timeout=10)
    assert res.status_code == 200 and res.headers["Content-Type"] == "application/json"
    return dict(res.json())


def stats_of(farm: Farm) -> dict[str, Any]:
    devices = requests.get(farm.url + "/system_stats", timeout=10).json()["devices"]
    return {d["worker"]: d["blocklisted"] for d in devices}


def test_a_worker_failing_where_others_succeed_is_blocklisted_its_work_goes_elsewhere_and_an_operator_lifts_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    from api.cli.main import main as cli

    farm = Farm(tmp_path, workers=2)
    try:
        tag, slow = f"bad-{time.time_ns()}", f"slow-{time.time_ns()}"
        # 1. runs until w0 is blocklisted: each node failing on w0 is retried on w1, which succeeds
        before = 0
        for i in range(20):
            entry = farm.run(bad_prompt(i + 0.5, tag, slow))
            assert_success(entry)  # not one run lost to the bad worker
            before += 1
            if listing(farm)["blocklist"]:
                break
        listed = listing(farm)
        assert list(listed["blocklist"]) == ["w0@test"], (listed, marks(farm, tag))
        assert marks(farm, tag).count("w0@test") >= 3
        time.sleep(blocklist.REFRESH_S + 0.5)  # w0's own view of its entry is at most this old
        tries_on_w0 = marks(farm, tag).count("w0@test")
        entry_json = listed["blocklist"]["w0@test"]
        assert entry_json["failures"] == 3 and "TestBadWorker failed there" in entry_json["reason"]
        assert "succeeded on w1@test" in entry_json["reason"]
        assert 590 < entry_json["until"] - entry_json["since"] <= 600

        # 2. later runs all succeed, none of their nodes runs on w0
        slow_before = len(marks(farm, slow))
        after = 10
        for i in range(after):
            assert_success(farm.run(bad_prompt(100 + i + 0.5, tag, slow)))
        assert marks(farm, tag).count("w0@test") == tries_on_w0  # not tried on w0 again
        assert {m.split()[0] for m in marks(farm, slow)[slow_before:]} == {"w1@test"}
        with capsys.disabled():
            print(f"\nblocklist figures: {before} runs until w0 was blocklisted (w0 failed {tries_on_w0} nodes, each "
                  f"retried on w1; 0 failed runs); {after} runs after it ({after * 5} nodes): {after} succeeded, 0 failed, "
                  f"0 nodes on w0")

        # 3. /system_stats, the dashboard's source, and the CLI show it
        shown = stats_of(farm)
        assert shown["w0@test"]["failures"] == 3 and shown["w1@test"] is None
        capsys.readouterr()
        assert cli(["blocklist", "list", "--server", farm.url]) == 0
        out = capsys.readouterr().out
        assert "w0@test  blocklisted" in out and "TestBadWorker" in out

        # 4. lifting: 200 once, then 404; w0 takes work again
        res = requests.delete(farm.url + "/api/nodefarm/blocklist/w0@test", timeout=10)
        assert res.status_code == 200 and res.json()["lifted"] is True and res.json()["blocklist"] == {}
        res = requests.delete(farm.url + "/nodefarm/blocklist/w0@test", timeout=10)
        assert res.status_code == 404 and res.json()["error"]["type"] == "not_blocklisted"
        assert cli(["blocklist", "lift", "nobody@test", "--server", farm.url]) == 1
        assert stats_of(farm)["w0@test"] is None
        time.sleep(blocklist.REFRESH_S + 0.5)  # w0's own view of its entry is at most this old
        wide = f"wide-{time.time_ns()}"
        assert_success(farm.run(wide_prompt(1.0, wide)))
        assert "w0@test" in {m.split()[0] for m in marks(farm, wide)}, marks(farm, wide)

        # 5. a node routed to a worker because only it holds its input (an in-memory object) goes elsewhere
        #    once that worker is blocklisted: the input is made again from its recipe
        made, used, wait = (f"{t}-{time.time_ns()}" for t in ("made", "used", "wait"))
        pid = farm.submit({
            "p": {"class_type": "TestOpaque", "inputs": {"value": 2.0, "tag": made}},
            "s": {"class_type": "TestSlowValue", "inputs": {"value": 1.0, "seconds": 3.0, "tag": wait}},
            "c": {"class_type": "TestOpaqueUse", "inputs": {"opaque": ["p", 0], "after": ["s", 0], "tag": used}},
            "o": {"class_type": "TestFloatOutput", "inputs": {"value": ["c", 0]}},
        })
        deadline = time.time() + 30
        while not marks(farm, made) and time.time() < deadline:
            time.sleep(0.05)
        holder = marks(farm, made)[0]
        for _ in range(3):
            blocklist.charge(farm.r, Settings(), holder, "test: charged directly")
        done = farm.wait(pid)
        assert_success(done)
        assert done["outputs"]["o"] == {"text": ["3.0"]}
        other = ({"w0@test", "w1@test"} - {holder}).pop()
        assert marks(farm, used) == [f"{other} made-by {other}"], (holder, marks(farm, made), marks(farm, used))
        assert marks(farm, made) == [holder, other]
        assert requests.delete(f"{farm.url}/nodefarm/blocklist/{holder}", timeout=10).status_code == 200

        # 6. blocklisted and alone on the farm, it still runs work
        for _ in range(3):
            blocklist.charge(farm.r, Settings(), "w0@test", "test: charged directly")
        assert stats_of(farm)["w0@test"] is not None
        farm.kill("w1", signal.SIGTERM)  # a clean stop: w1 leaves the live workers
        deadline = time.time() + 30
        while b"w1@test" in farm.r.zrange(keys.WORKERS, 0, -1) and time.time() < deadline:
            time.sleep(0.2)
        alone = f"alone-{time.time_ns()}"
        assert_success(farm.run(wide_prompt(7.0, alone, n=2, seconds=0.05)))
        assert {m.split()[0] for m in marks(farm, alone)} == {"w0@test"}
        assert list(listing(farm)["blocklist"]) == ["w0@test"]  # still on it: it ran because nobody else could
    finally:
        farm.stop()
