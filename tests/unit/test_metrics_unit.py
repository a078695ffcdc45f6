"""worker/metrics.py without Redis: outcome labels, histogram buckets, and the collector turning the
``nf:metrics`` hash into Prometheus families (cumulative buckets, labels from JSON fields)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from nodes.core.state import Done, ErrorInfo, Failed, Interrupted
from worker import metrics
from worker.metrics import DURATION_BUCKETS, bucket, field, outcome_label


class FakeRedis:
    def __init__(self, hash_: dict[str, float]) -> None:
        self.hash = {k.encode(): str(v).encode() for k, v in hash_.items()}

    def hgetall(self, _key: str) -> dict[bytes, bytes]:
        return self.hash


def test_outcome_labels() -> None:
    assert outcome_label(Done(ui=None)) == "success"
    assert outcome_label(Done(ui=None, ran=False)) == "cached"
    assert outcome_label(Failed(ErrorInfo("x", "ValueError"))) == "error"
    assert outcome_label(Interrupted()) == "interrupted"
    assert outcome_label(None) == "crashed"


def test_buckets_are_upper_bounds_and_the_last_is_inf() -> None:
    assert bucket(DURATION_BUCKETS, 0.0) == 0
    assert bucket(DURATION_BUCKETS, 0.005) == 0
    assert bucket(DURATION_BUCKETS, 0.0051) == 1
    assert bucket(DURATION_BUCKETS, 1e9) == len(DURATION_BUCKETS)


def test_the_collector_makes_cumulative_histograms_and_labelled_counters() -> None:
    odd = 'K"Sampler|x'  # class names may hold any character
    fake: Any = FakeRedis({
        field("node", odd, "success"): 3, field("node", odd, "error"): 1, field("runs", "success"): 2,
        field("dur", odd, bucket(DURATION_BUCKETS, 0.3)): 2, field("dur", odd, bucket(DURATION_BUCKETS, 700)): 1,
        field("dur_sum", odd): 700.6, field("busy", "w0@h"): 1.5, field("cache", "hit"): 4,
        field("loads", "w0@h", "Loader"): 1, "not json": 9,
    })
    registry = CollectorRegistry(auto_describe=False)
    registry.register(type("C", (), {"collect": lambda self: iter(metrics.counted(fake))})())
    text = generate_latest(registry).decode()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for fam in text_string_to_metric_families(text) for s in fam.samples}
    assert samples[("nodefarm_node_executions_total", (("class_type", odd), ("outcome", "success")))] == 3
    assert samples[("nodefarm_runs_finished_total", (("outcome", "success"),))] == 2
    assert samples[("nodefarm_runs_finished_total", (("outcome", "error"),))] == 0  # always shown
    b = "nodefarm_node_duration_seconds_bucket"
    assert samples[(b, (("class_type", odd), ("le", "0.25")))] == 0
    assert samples[(b, (("class_type", odd), ("le", "0.5")))] == 2
    assert samples[(b, (("class_type", odd), ("le", "600.0")))] == 2
    assert samples[(b, (("class_type", odd), ("le", "+Inf")))] == 3
    assert samples[("nodefarm_node_duration_seconds_count", (("class_type", odd),))] == 3
    assert samples[("nodefarm_node_duration_seconds_sum", (("class_type", odd),))] == 700.6
    assert samples[("nodefarm_worker_busy_seconds_total", (("worker", "w0@h"),))] == 1.5
    assert samples[("nodefarm_cache_lookups_total", (("result", "hit"),))] == 4
    assert samples[("nodefarm_model_loads_total", (("class_type", "Loader"), ("worker", "w0@h")))] == 1
    assert samples[("nodefarm_node_wait_seconds_count", ())] == 0
