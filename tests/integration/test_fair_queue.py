"""A fair, prioritised queue (issue 11 item 2) and a jobs listing that pages through Redis (item 7).

The queue's Redis Functions are checked against a bare redis-server (admission follows the order
``/queue`` lists, the per-client cap, taking runs off and re-prioritising them), then with real farms:
one client's many runs do not starve another's single run, a client over its cap waits while another
client's runs start. The jobs listing is compared, query by query, with the old whole-history sort.
"""

from __future__ import annotations

import itertools
import json
import random
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from api.routes import jobs as jobs_route
from nodes.core.item import QueueItem
from tests.farm import Farm, functions_redis
from worker import history, keys, prompt_queue

# ---- the queue's Redis Functions on a bare Redis ---------------------------------------------------------


@pytest.fixture()
def r(tmp_path: Path) -> Iterator[redis.Redis]:
    with functions_redis(tmp_path / "redis") as client:
        yield client


def queue(r: redis.Redis, submitter: str, number: float, priority: int | None = None) -> str:
    pid = f"{submitter}-{number:g}-{uuid.uuid4().hex[:4]}"
    extra: dict[str, Any] = {"nodefarm_submitter": submitter} if submitter else {}
    if priority is not None:
        extra["priority"] = priority
    prompt_queue.enqueue(r, QueueItem(number, pid, {}, extra, []))
    return pid


def admit_all(r: redis.Redis, cap: int = 0) -> list[str]:
    out = []
    while (pid := prompt_queue.pop_admittable(r, 10**6, cap)) is not None:
        out.append(pid)
    return out


def queue_keys_left(r: redis.Redis) -> list[str]:
    return sorted(k.decode() for k in r.scan_iter(keys.PREFIX + "queue*") if k.decode() != keys.QUEUE_TURN)


def test_admission_follows_the_order_queue_lists(r: redis.Redis) -> None:
    rng = random.Random(11)
    numbers = itertools.count(1)
    pids = []
    for _ in range(120):
        submitter = rng.choice(["alice", "alice", "alice", "bob", "carol", ""])
        number = next(numbers)
        pids.append(queue(r, submitter, -number if rng.random() < 0.1 else number, rng.choice([None, None, 0, 1, -1, 5])))
        if rng.random() < 0.2:  # admissions interleaved with submissions move the turns
            prompt_queue.pop_admittable(r, 10**6)
    listed = prompt_queue.pending_ids(r)
    assert sorted(listed) == sorted(p.decode() for p in r.zrange(keys.QUEUE, 0, -1))
    admitted = []
    while listed:
        assert prompt_queue.pending_ids(r) == listed
        admitted.append(prompt_queue.pop_admittable(r, 10**6))
        assert admitted[-1] == listed.pop(0)
    assert prompt_queue.pop_admittable(r, 10**6) is None
    assert queue_keys_left(r) == []  # no lane, turn list, level or place outlives its runs


def test_a_single_client_is_admitted_in_comfyuis_order(r: redis.Redis) -> None:
    a1, a2, a3 = queue(r, "solo", 1), queue(r, "solo", 2), queue(r, "solo", 3)
    front = queue(r, "solo", -4)
    assert prompt_queue.pending_ids(r) == [front, a1, a2, a3]
    assert admit_all(r) == [front, a1, a2, a3]


def test_a_newcomer_waits_for_at_most_one_run_of_each_other_client(r: redis.Redis) -> None:
    alice = [queue(r, "alice", n) for n in range(1, 501)]
    assert prompt_queue.pop_admittable(r, 10**6) == alice[0]
    bob = queue(r, "bob", 501)
    carol = queue(r, "carol", 502)
    assert admit_all(r)[:6] == [alice[1], bob, carol, alice[2], alice[3], alice[4]]


def test_a_higher_priority_goes_first_farm_wide(r: redis.Redis) -> None:
    low = [queue(r, "alice", n) for n in range(1, 4)]
    urgent = queue(r, "bob", 4, priority=3)
    background = queue(r, "carol", 5, priority=-1)
    assert admit_all(r) == [urgent, *low, background]


def test_the_per_client_cap(r: redis.Redis) -> None:
    alice = [queue(r, "alice", n, priority=1) for n in range(1, 4)]
    bob = [queue(r, "bob", n) for n in range(4, 6)]
    # alice's level is higher, but once she runs one run, bob's lower level goes; then nobody may
    assert admit_all(r, cap=1) == [alice[0], bob[0]]
    r.zrem(keys.RUNNING, alice[0])  # her run ended
    assert admit_all(r, cap=1) == [alice[1]]
    assert admit_all(r, cap=2) == [alice[2], bob[1]]
    assert prompt_queue.pop_admittable(r, 10**6, 0) is None


def test_taking_runs_off_and_changing_a_priority(r: redis.Redis) -> None:
    a = [queue(r, "alice", n) for n in range(1, 4)]
    b = queue(r, "bob", 4)
    assert prompt_queue.dequeue(r, [a[1], "unknown"]) == 1
    assert r.get(keys.run_item(a[1])) is None
    assert prompt_queue.pending_ids(r) == [a[0], b, a[2]]
    assert prompt_queue.set_priority(r, a[2], 2)
    assert prompt_queue.pending_ids(r) == [a[2], a[0], b]
    item = prompt_queue.load_item(r, a[2])
    assert item is not None and item.extra_data["priority"] == 2 and item.number == 3
    assert not prompt_queue.set_priority(r, "unknown", 1)
    assert admit_all(r) == [a[2], a[0], b]
    assert not prompt_queue.set_priority(r, b, 1)  # running: its priority no longer matters
    prompt_queue.clear_pending(r)
    assert queue_keys_left(r) == []


def test_moving_a_run_to_the_front(r: redis.Redis) -> None:
    a = [queue(r, "alice", n) for n in range(1, 4)]
    b = queue(r, "bob", 4)
    c = queue(r, "carol", 5, priority=2)
    assert prompt_queue.pending_ids(r) == [c, a[0], b, a[1], a[2]]
    moved = prompt_queue.move_to_front(r, b)  # above a higher level: raised to it, and first there
    assert moved is not None and moved.extra_data["priority"] == 2 and moved.number < 1
    assert prompt_queue.pending_ids(r) == [b, c, a[0], a[1], a[2]]
    item = prompt_queue.load_item(r, b)
    assert item is not None and item.wire() == moved.wire()  # what /queue shows says so
    moved = prompt_queue.move_to_front(r, a[2])
    assert moved is not None and prompt_queue.pending_ids(r) == [a[2], b, c, a[0], a[1]]
    again = prompt_queue.move_to_front(r, a[2])  # already first: nothing to change
    assert again is not None and again.number == moved.number
    assert prompt_queue.pending_ids(r) == [a[2], b, c, a[0], a[1]]
    assert prompt_queue.move_to_front(r, "unknown") is None
    low = queue(r, "dave", -10**6)  # a front run with a number below the counter's: still first after a move
    assert prompt_queue.move_to_front(r, a[0]) is not None
    assert prompt_queue.pending_ids(r)[0] == a[0] and prompt_queue.pending_ids(r)[-1] == low
    # next means next: once a[0] ran, alice's turn is the level's last again (fair to bob and carol)
    assert admit_all(r) == [a[0], b, c, a[2], a[1], low]
    assert prompt_queue.move_to_front(r, b) is None  # running
    assert queue_keys_left(r) == []


def test_the_dashboard_lists_the_head_of_a_long_queue_and_counts_the_rest(r: redis.Redis) -> None:
    from api import dashboard

    a = [queue(r, "alice", n) for n in range(1, 5)]
    b = queue(r, "bob", 5, priority=1)
    got = dashboard.queue(r, shown=3)
    assert [j["id"] for j in got["pending"]] == [b, a[0], a[1]]  # the next three, in admission order
    assert [j["position"] for j in got["pending"]] == [1, 2, 3] and got["pending_total"] == 5
    assert [j["id"] for j in dashboard.queue(r, shown=None)["pending"]] == prompt_queue.pending_ids(r)
    prompt_queue.clear_pending(r)


# ---- the history indexes on a bare Redis -----------------------------------------------------------------


def store_entries(r: redis.Redis, n: int, seed: int = 7, start: int = 0, created: int | None = None) -> list[str]:
    """``n`` finished runs written as the run's end writes them (functions.lua finish)."""
    rng = random.Random(seed)
    pipe = r.pipeline(transaction=False)
    pids = []
    for i in range(start, start + n):
        pid = f"h{i:06d}-{uuid.uuid4().hex[:6]}"
        began = 1_700_000_000_000 + i * 1000 + rng.randrange(500)
        outcome = rng.choice(["success", "success", "error", "interrupted"])
        extra: dict[str, Any] = {"client_id": "c"}
        if rng.random() < 0.5:
            extra["create_time"] = began - rng.randrange(1, 400)
        if created is not None:
            extra["create_time"] = created
        if rng.random() < 0.3:
            extra["extra_pnginfo"] = {"workflow": {"id": f"wf{rng.randrange(3)}"}}
        ended = began + 1000 + i * 13 + rng.randrange(13)  # durations all differ (no ties to order)
        last = {"success": "execution_success", "error": "execution_error", "interrupted": "execution_interrupted"}[outcome]
        entry = {"prompt": [i, pid, {}, extra, []], "outputs": {},
                 "status": {"status_str": "success" if outcome == "success" else "error", "completed": outcome == "success",
                            "messages": [["execution_start", {"prompt_id": pid, "timestamp": began}],
                                         [last, {"prompt_id": pid, "timestamp": ended}]]}, "meta": {}}
        pipe.set(keys.history_entry(pid), json.dumps(entry))
        pipe.zadd(keys.HISTORY, {pid: ended / 1000})
        pids.append(pid)
    pipe.execute()
    return pids


def test_the_indexes_follow_the_history(r: redis.Redis) -> None:
    pids = store_entries(r, 300)
    assert history.sync(r) == 300 and history.sync(r) == 0
    assert history.count(r, [keys.jobs_index("created")]) == 300
    per_status = sum(history.count(r, [keys.jobs_index("created", s)]) for s in history.STATUSES)
    assert per_status == 300
    history.delete(r, pids[:10])
    history.trim(r, 250)  # the 40 oldest go too
    left = history.count(r, [keys.jobs_index("created")])
    assert left == int(r.zcard(keys.HISTORY)) == 250 == int(r.hlen(keys.JOBS_FACTS))
    assert sum(history.count(r, [keys.jobs_index("duration", s)]) for s in history.STATUSES) == 250
    history.clear(r)
    assert sorted(k.decode() for k in r.scan_iter(keys.PREFIX + "*")) == []


# ---- a farm: two clients -----------------------------------------------------------------------------------


def slow(tag: str, value: float, seconds: float) -> dict[str, Any]:
    return {"1": {"class_type": "TestSlowValue", "inputs": {"value": value, "seconds": seconds, "tag": tag}},
            "2": {"class_type": "TestFloatOutput", "inputs": {"value": ["1", 0]}}}


def started_at(entry: dict[str, Any]) -> float:
    return next(m[1]["timestamp"] for m in entry["status"]["messages"] if m[0] == "execution_start")


def ended_at(entry: dict[str, Any]) -> float:
    return entry["status"]["messages"][-1][1]["timestamp"]


def test_one_clients_many_runs_do_not_starve_anothers_single_run(tmp_path: Path) -> None:
    farm = Farm(tmp_path, workers=1, env={"NODEFARM_MAX_ACTIVE_RUNS": "1"})
    try:
        seed = time.time()
        alice = [farm.submit(slow("fair", seed + i, 0.5), client_id="alice") for i in range(12)]
        bob = farm.submit(slow("fair", seed + 100, 0.5), client_id="bob")
        pending = requests.get(farm.url + "/queue", timeout=10).json()["queue_pending"]
        listed = [item[1] for item in pending]
        assert bob in listed[:2], listed  # /queue lists pending runs in admission order
        # the last of alice's runs jumps ahead of her others (and bob's: a higher level)
        res = requests.post(f"{farm.url}/api/jobs/{alice[-1]}/priority", json={"priority": 5}, timeout=10)
        assert res.status_code == 200 and res.json()["priority_level"] == 5, res.text
        listed = [item[1] for item in requests.get(farm.url + "/queue", timeout=10).json()["queue_pending"]]
        assert listed[0] == alice[-1] or alice[-1] not in listed, listed  # (unless it started meanwhile)
        entries = {pid: farm.wait(pid, timeout=120) for pid in [*alice, bob]}
        order = sorted(entries, key=lambda p: started_at(entries[p]))
        # alice's first run was running; bob's starts once alice's urgent run and at most one other ran
        assert order.index(bob) <= 3, order
        assert order.index(alice[-1]) <= 2, order
        assert order.index(bob) < order.index(alice[6])
        # the jobs API refuses what it cannot do, without a 5xx
        assert requests.post(f"{farm.url}/api/jobs/{bob}/priority", json={"priority": 1}, timeout=10).status_code == 409
        assert requests.post(f"{farm.url}/api/jobs/{uuid.uuid4()}/priority", json={"priority": 1}, timeout=10).status_code == 404
        assert requests.post(f"{farm.url}/api/jobs/{bob}/priority", json={"priority": "high"}, timeout=10).status_code == 400
        assert requests.post(f"{farm.url}/api/jobs/{bob}/front", timeout=10).status_code == 409
        assert requests.post(f"{farm.url}/api/jobs/{uuid.uuid4()}/front", timeout=10).status_code == 404
        bad = farm.post(slow("fair", 1.0, 0.0), extra_data={"priority": 1.5})
        assert bad.status_code == 400 and "priority" in bad.text
    finally:
        farm.stop()


def test_a_client_at_its_cap_waits_while_another_clients_runs_start(tmp_path: Path) -> None:
    farm = Farm(tmp_path, workers=2, env={"NODEFARM_MAX_ACTIVE_RUNS": "4", "NODEFARM_MAX_RUNS_PER_CLIENT": "1"})
    try:
        seed = time.time()
        alice = [farm.submit(slow("cap", seed + i, 0.6), client_id="alice") for i in range(4)]
        bob = [farm.submit(slow("cap", seed + 10 + i, 0.6), client_id="bob") for i in range(2)]
        entries = {pid: farm.wait(pid, timeout=120) for pid in [*alice, *bob]}
        for runs in (alice, bob):  # never two runs of one client at once
            spans = sorted((started_at(entries[p]), ended_at(entries[p])) for p in runs)
            assert all(later[0] >= earlier[1] for earlier, later in itertools.pairwise(spans)), spans
        # ... while the two clients' runs did run side by side
        first_bob = min(started_at(entries[p]) for p in bob)
        assert first_bob < ended_at(entries[alice[0]]) or first_bob < ended_at(entries[alice[1]])
        assert farm.r.hlen(keys.RUNNING_SUBMITTERS) <= 1  # the bookkeeping of finished runs is dropped
    finally:
        farm.stop()


# ---- the jobs listing ----------------------------------------------------------------------------------------


def reference(everything: list[dict[str, Any]], statuses: set[str], workflow_id: str | None, sort_by: str, order: str,
              offset: int, limit: int | None) -> tuple[list[str], int]:
    """The listing as it was computed before the indexes: every job read and sorted in Python."""
    jobs = [j for j in everything if j["status"] in statuses and (not workflow_id or j.get("workflow_id") == workflow_id)]

    def key(job: dict[str, Any]) -> float:
        if sort_by == "execution_duration":
            start, end = job.get("execution_start_time"), job.get("execution_end_time")
            return float(end - start) if start and end else 0.0
        return float(job.get("create_time") or 0)

    jobs.sort(key=key, reverse=order == "desc")
    page = jobs[offset:] if limit is None else jobs[offset:offset + limit]
    return [j["id"] for j in page], len(jobs)


def test_the_jobs_listing_pages_through_the_indexes(tmp_path: Path) -> None:
    # no workers; one (fake) running run holds the only slot, so queued runs stay queued
    farm = Farm(tmp_path, workers=0, env={"NODEFARM_MAX_ACTIVE_RUNS": "1", "NODEFARM_WATCHDOG_GRACE": "3600"})
    try:
        r = farm.r
        store_entries(r, 400)
        base = 1_700_000_000_000
        running = QueueItem(0, "running-run", {}, {"create_time": base + 150_550, "nodefarm_submitter": "x"}, [])
        r.set(keys.run_item(running.prompt_id), json.dumps(running.wire()))
        r.zadd(keys.RUNNING, {running.prompt_id: 0})
        # creation times no stored run has (those lie within -399..+499 ms of a whole second)
        for i, t in enumerate([base + 1_550, base + 200_550, base + 399_560, base + 999_999_999]):
            extra: dict[str, Any] = {"create_time": t, "nodefarm_submitter": f"s{i % 2}"}
            if i == 1:
                extra["extra_pnginfo"] = {"workflow": {"id": "wf1"}}
            prompt_queue.enqueue(r, QueueItem(1000 + i, f"pending-{i}", {}, extra, []))
        time.sleep(1.5)  # the admitter looked, and left them queued
        assert r.zcard(keys.QUEUE) == 4

        everything = requests.get(farm.url + "/api/jobs", timeout=30).json()
        assert everything["pagination"]["total"] == 405 and not everything["pagination"]["has_more"]
        full = {j["id"]: j for j in everything["jobs"]}
        finished = history.entries(r, [p.decode() for p in r.zrange(keys.HISTORY, 0, -1)])
        times = history.finish_times(r)
        assert all(full[p] == jobs_route.history_job(p, e, finished_at=times[p]) for p, e in finished.items())
        # as the old listing gathered them: running, pending in queue order, then finished oldest first
        shown = requests.get(farm.url + "/queue", timeout=10).json()
        queued = [i[1] for i in shown["queue_running"] + shown["queue_pending"]]
        assert queued == ["running-run", "pending-0", "pending-1", "pending-2", "pending-3"]
        jobs = [full[p] for p in queued] + [full[p] for p in finished]

        rng = random.Random(3)
        statuses = ["pending", "in_progress", "completed", "failed", "cancelled"]
        queries = [{}, {"limit": 50}, {"limit": 50, "sort_order": "asc"}]
        for _ in range(60):
            q: dict[str, Any] = {"sort_by": rng.choice(["created_at", "execution_duration"]),
                                 "sort_order": rng.choice(["asc", "desc"]), "offset": rng.choice([0, 1, 3, 50, 199, 398, 404, 500])}
            if rng.random() < 0.8:
                q["limit"] = rng.choice([1, 2, 7, 50, 1000])
            if rng.random() < 0.7:
                q["status"] = ",".join(rng.sample(statuses, rng.randrange(1, 6)))
            if rng.random() < 0.15:
                q["workflow_id"] = rng.choice(["wf0", "wf1", "nope"])
            queries.append(q)
        for q in queries:
            got = requests.get(farm.url + "/api/jobs", params=q, timeout=30).json()
            want, total = reference(jobs, set((q.get("status") or ",".join(statuses)).split(",")), q.get("workflow_id"),
                                    q.get("sort_by", "created_at"), q.get("sort_order", "desc"), q.get("offset", 0), q.get("limit"))
            assert [j["id"] for j in got["jobs"]] == want, q
            assert got["pagination"]["total"] == total, q
            assert got["pagination"]["has_more"] == (q.get("offset", 0) + len(want) < total), q

        # a run that ends is listed at once; one deleted is gone from every listing
        newest = store_entries(r, 1, seed=99, start=500, created=base + 10**12)[0]
        assert requests.get(farm.url + "/api/jobs", params={"limit": 1}, timeout=10).json()["jobs"][0]["id"] == newest
        requests.post(farm.url + "/history", json={"delete": [newest]}, timeout=10)
        top = requests.get(farm.url + "/api/jobs", params={"limit": 1, "status": "completed,failed,cancelled"}, timeout=10).json()
        assert top["jobs"][0]["id"] != newest and top["pagination"]["total"] == 400
    finally:
        farm.stop()
