"""``GET /metrics`` (issue 11, item 3): Prometheus's text format, scraped during and after real runs on
the shared 2-worker farm; every figure the issue names moves the way the runs say it should.

Counters are farm-wide (workers add to them in Redis, worker/metrics.py), so the tests compare a scrape
before and after their own runs, whatever other tests ran on the farm before.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.farm import Farm, assert_success

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(farm: Farm) -> Samples:
    res = requests.get(farm.url + "/metrics", timeout=10, headers=farm.headers)
    assert res.status_code == 200, res.text
    assert res.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(res.text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum over every sample of ``name`` whose labels include ``labels``."""
    return sum(v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= set(ls))


def workers(samples: Samples) -> dict[str, float]:
    return {dict(ls)["worker"]: v for (n, ls), v in samples.items() if n == "nodefarm_worker_up"}


def prompt(tag: str, seconds: float) -> dict:
    """A model-like in-memory object, a slow node and a consumer of both, then an output."""
    return {
        "m": {"class_type": "TestOpaque", "inputs": {"value": 2.0, "tag": tag}},
        "s": {"class_type": "TestSlowValue", "inputs": {"value": 3.0, "seconds": seconds, "tag": tag}},
        "u": {"class_type": "TestOpaqueUse", "inputs": {"opaque": ["m", 0], "after": ["s", 0], "tag": tag}},
        "o": {"class_type": "TestFloatOutput", "inputs": {"value": ["u", 0]}},
    }


def scrapes_while(farm: Farm, done: threading.Event) -> Iterator[Samples]:
    while not done.is_set():
        yield scrape(farm)
        time.sleep(0.2)


def test_metrics_move_during_and_after_a_run(farm: Farm) -> None:
    before = scrape(farm)
    assert set(workers(before)) >= {"w0@test", "w1@test"}
    tag = f"metrics-{uuid.uuid4().hex[:8]}"
    pid = farm.submit(prompt(tag, 2.0))
    done = threading.Event()
    seen_running = seen_busy = 0.0
    deadline = time.time() + 60
    for during in scrapes_while(farm, done):
        seen_running = max(seen_running, value(during, "nodefarm_runs", state="running"))
        seen_busy = max(seen_busy, value(during, "nodefarm_node_tasks_unacked"))
        if seen_running and seen_busy or time.time() > deadline:
            done.set()
    assert seen_running >= 1, "the run never showed as running"
    assert seen_busy >= 1, "no node task was ever held by a worker"
    assert_success(farm.wait(pid))
    after = scrape(farm)

    def moved(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    assert moved("nodefarm_runs_finished_total", outcome="success") >= 1
    for cls in ("TestOpaque", "TestSlowValue", "TestOpaqueUse", "TestFloatOutput"):
        assert moved("nodefarm_node_executions_total", class_type=cls, outcome="success") >= 1, cls
        assert moved("nodefarm_node_duration_seconds_count", class_type=cls) >= 1, cls
    assert moved("nodefarm_node_duration_seconds_sum", class_type="TestSlowValue") >= 2.0
    slow_le_1 = moved("nodefarm_node_duration_seconds_bucket", class_type="TestSlowValue", le="1.0")
    slow_le_5 = moved("nodefarm_node_duration_seconds_bucket", class_type="TestSlowValue", le="5.0")
    assert (slow_le_1, slow_le_5) == (0, moved("nodefarm_node_duration_seconds_count", class_type="TestSlowValue"))
    assert moved("nodefarm_cache_lookups_total", result="miss") >= 4
    assert moved("nodefarm_worker_busy_seconds_total") >= 2.0
    assert moved("nodefarm_model_loads_total", class_type="TestOpaque") >= 1
    assert moved("nodefarm_node_wait_seconds_count") >= 4
    for name in ("w0@test", "w1@test"):
        assert value(after, "nodefarm_worker_up", worker=name) == 1
        assert total(after, "nodefarm_vram_total_bytes", worker=name) > 0  # CPU workers report their RAM
        assert total(after, "nodefarm_vram_free_bytes", worker=name) > 0
    assert value(after, "nodefarm_result_store_bytes") > 0
    assert value(after, "nodefarm_runs", state="history") >= 1
    assert ("nodefarm_queue_node_tasks", (("queue", "nf.nodes"),)) in after

    # resident models come from the heartbeats: the worker holding the opaque object lists it
    deadline = time.time() + 10
    while total(scrape(farm), "nodefarm_resident_models") < 1:
        assert time.time() < deadline, "no resident model reported"
        time.sleep(0.3)

    # the same prompt again: every node is cached at admission, nothing runs
    again = farm.run(prompt(tag, 2.0))
    assert_success(again)
    last = scrape(farm)
    assert total(last, "nodefarm_cache_lookups_total", result="hit") - total(after, "nodefarm_cache_lookups_total",
                                                                             result="hit") >= 1
    assert total(last, "nodefarm_node_executions_total", class_type="TestSlowValue") == total(
        after, "nodefarm_node_executions_total", class_type="TestSlowValue")
    assert total(last, "nodefarm_runs_finished_total", outcome="success") - total(
        after, "nodefarm_runs_finished_total", outcome="success") >= 1


def test_a_failing_node_counts_as_an_error_and_so_does_its_run(farm: Farm) -> None:
    before = scrape(farm)
    pid = farm.submit({
        "x": {"class_type": "TestRaise", "inputs": {"value": 1000 + time.time() % 1000}},
        "o": {"class_type": "TestFloatOutput", "inputs": {"value": ["x", 0]}},
    })
    entry = farm.wait(pid)
    assert entry["status"]["status_str"] == "error"
    after = scrape(farm)
    assert value(after, "nodefarm_node_executions_total", class_type="TestRaise", outcome="error") - value(
        before, "nodefarm_node_executions_total", class_type="TestRaise", outcome="error") == 1
    assert value(after, "nodefarm_runs_finished_total", outcome="error") - value(
        before, "nodefarm_runs_finished_total", outcome="error") == 1


def test_metrics_is_described_in_the_openapi_document(farm: Farm) -> None:
    doc = requests.get(farm.url + "/openapi.json", timeout=10, headers=farm.headers).json()
    assert "get" in doc["paths"]["/metrics"]


def test_openmetrics_when_asked_and_plain_text_for_an_accept_header_it_cannot_read(farm: Farm) -> None:
    om = requests.get(farm.url + "/metrics", timeout=10, headers={
        **farm.headers, "Accept": "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"})
    assert om.status_code == 200 and om.headers["Content-Type"].startswith("application/openmetrics-text")
    assert om.text.rstrip().endswith("# EOF") and "nodefarm_runs_finished_total" in om.text
    odd = requests.get(farm.url + "/metrics", timeout=10,
                       headers={**farm.headers, "Accept": "application/openmetrics-text; version=abc"})
    assert odd.status_code == 200 and odd.headers["Content-Type"].startswith("text/plain; version=0.0.4")
