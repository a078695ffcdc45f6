"""Farm metrics: what every worker counts, kept in the state Redis, and the Prometheus view of it.

Why Redis and not prometheus_client's multiprocess mode: that mode sums the files that the processes
of *one host* write into one ``PROMETHEUS_MULTIPROC_DIR``. A farm spans hosts (the API on one, one
worker per GPU on others), so each host would need its own exporter and Prometheus would have to
find them all. Instead each worker process adds its figures to one hash (``nf:metrics``, one
round trip per node, never failing a node), the run functions count finished runs in the same hash
(``worker/functions.lua`` ``finish``), and ``GET /metrics`` of any API process reads that hash plus
what Redis already knows (queues, heartbeats with VRAM and resident models, the result store's
memory). Every API process answers the same farm-wide figures, so a load balancer in front of
several is fine, and a worker that restarts never resets a counter.

Fields of the hash are JSON arrays ``[metric, label values...]`` (class types may hold any
character). Histograms keep one non-cumulative count per bucket (index into the bucket bounds; the
last index is +Inf) and their sum; the collector makes them cumulative.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import redis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from nodes.core.state import Done
from worker import keys

log = logging.getLogger("nodefarm.metrics")

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
WAIT_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

# the outcome label of a node execution, by the type of what execute_task got (worker/task.py)
OUTCOMES = {"Pending": "pending", "Expanded": "expanded", "Failed": "error", "Interrupted": "interrupted",
            "LostInputs": "lost_inputs", "RetryElsewhere": "retried", "NoneType": "crashed"}


def field(*parts: str | int) -> str:
    return json.dumps(parts, separators=(",", ":"))


def bucket(bounds: tuple[float, ...], value: float) -> int:
    """Index of the first bound ``value`` fits under (``len(bounds)``: +Inf)."""
    for i, bound in enumerate(bounds):
        if value <= bound:
            return i
    return len(bounds)


def outcome_label(outcome: object) -> str:
    if isinstance(outcome, Done):
        return "success" if outcome.ran else "cached"
    return OUTCOMES.get(type(outcome).__name__, type(outcome).__name__.lower())


# ---- writing (worker processes) ------------------------------------------------------------------


def node_done(r: redis.Redis, worker: str, class_type: str, outcome: object, seconds: float,
              sent: float | None = None) -> None:
    """One node task ended on ``worker``: its outcome, how long it took (``seconds``, busy time) and,
    when the task's message said when it was published (``sent``, unix s, the ``nf_sent`` header),
    how long it waited for a worker. Never raises: a metric must not fail a node."""
    try:
        label = outcome_label(outcome)
        pipe = r.pipeline(transaction=False)
        pipe.hincrby(keys.METRICS, field("node", class_type, label), 1)
        pipe.hincrbyfloat(keys.METRICS, field("busy", worker), seconds)
        if isinstance(outcome, Done):
            pipe.hincrby(keys.METRICS, field("cache", "miss" if outcome.ran else "hit"), 1)
            if outcome.ran:
                pipe.hincrby(keys.METRICS, field("dur", class_type, bucket(DURATION_BUCKETS, seconds)), 1)
                pipe.hincrbyfloat(keys.METRICS, field("dur_sum", class_type), seconds)
                if outcome.holder:  # its result lives only in this worker's memory: a model (or a CLIP, ...)
                    pipe.hincrby(keys.METRICS, field("loads", worker, class_type), 1)
        if sent is not None:
            waited = max(0.0, time.time() - seconds - sent)  # clocks of hosts differ a little: never negative
            pipe.hincrby(keys.METRICS, field("wait", bucket(WAIT_BUCKETS, waited)), 1)
            pipe.hincrbyfloat(keys.METRICS, field("wait_sum"), waited)
        pipe.execute()
    except Exception as exc:  # Redis away for a moment: these figures are lost, the node is not
        log.debug("metrics of a %s node not recorded: %s", class_type, exc)


def cached_at_admission(r: redis.Redis, count: int) -> None:
    """Nodes of a newly admitted run that were cached (never dispatched): cache hits. Never raises."""
    if not count:
        return
    try:
        r.hincrby(keys.METRICS, field("cache", "hit"), count)
    except Exception as exc:
        log.debug("cache hits at admission not recorded: %s", exc)


# ---- reading (the API's /metrics) ----------------------------------------------------------------


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _histogram(name: str, doc: str, labels: list[str], bounds: tuple[float, ...],
               counts: dict[tuple[str, ...], dict[int, float]], sums: dict[tuple[str, ...], float]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=labels)
    for label_values in sorted(set(counts) | set(sums)):
        per = counts.get(label_values, {})
        running, cumulative = 0.0, []
        for i, bound in enumerate((*bounds, float("inf"))):
            running += per.get(i, 0)
            cumulative.append(("+Inf" if bound == float("inf") else repr(bound), running))
        family.add_metric(list(label_values), cumulative, sums.get(label_values, 0.0))
    return family


def counted(r: redis.Redis) -> list[Metric]:
    """The counters and histograms workers (and the run functions) keep in ``nf:metrics``."""
    raw = r.hgetall(keys.METRICS)
    nodes = CounterMetricFamily("nodefarm_node_executions", "Node tasks by class and outcome (success: ran; "
                                "cached: found stored; error, interrupted, pending: asked for lazy inputs, "
                                "expanded, lost_inputs, retried: sent to another worker)",
                                labels=["class_type", "outcome"])
    runs = CounterMetricFamily("nodefarm_runs_finished", "Runs that ended, by outcome", labels=["outcome"])
    cache = CounterMetricFamily("nodefarm_cache_lookups", "Node results looked up in the farm's cache "
                                "(hit: cached at admission or found stored at start; miss: the node ran)",
                                labels=["result"])
    busy = CounterMetricFamily("nodefarm_worker_busy_seconds", "Seconds each worker spent on node tasks",
                               labels=["worker"])
    loads = CounterMetricFamily("nodefarm_model_loads", "Nodes whose result only the worker's memory can hold "
                                "(models, CLIPs, VAEs, ...), by worker and class", labels=["worker", "class_type"])
    durations: dict[tuple[str, ...], dict[int, float]] = defaultdict(dict)
    duration_sums: dict[tuple[str, ...], float] = {}
    waits: dict[tuple[str, ...], dict[int, float]] = defaultdict(dict)
    wait_sums: dict[tuple[str, ...], float] = {}
    seen_runs: set[str] = set()
    for raw_field, raw_value in sorted(raw.items()):
        try:
            parts = json.loads(raw_field)
            value = float(raw_value)
            kind, rest = parts[0], [str(p) for p in parts[1:]]
        except (ValueError, TypeError, IndexError):
            continue  # not ours
        if kind == "node" and len(rest) == 2:
            nodes.add_metric(rest, value)
        elif kind == "runs" and len(rest) == 1:
            runs.add_metric(rest, value)
            seen_runs.add(rest[0])
        elif kind == "cache" and len(rest) == 1:
            cache.add_metric(rest, value)
        elif kind == "busy" and len(rest) == 1:
            busy.add_metric(rest, value)
        elif kind == "loads" and len(rest) == 2:
            loads.add_metric(rest, value)
        elif kind == "dur" and len(rest) == 2:
            durations[(rest[0],)][int(rest[1])] = value
        elif kind == "dur_sum" and len(rest) == 1:
            duration_sums[(rest[0],)] = value
        elif kind == "wait" and len(rest) == 1:
            waits[()][int(rest[0])] = value
        elif kind == "wait_sum" and not rest:
            wait_sums[()] = value
    for outcome in ("success", "error", "interrupted"):  # always shown, so rate() sees the first one
        if outcome not in seen_runs:
            runs.add_metric([outcome], 0.0)
    return [
        runs, nodes, cache, busy, loads,
        _histogram("nodefarm_node_duration_seconds", "Time of the node tasks that ran, by class",
                   ["class_type"], DURATION_BUCKETS, durations, duration_sums),
        _histogram("nodefarm_node_wait_seconds", "Time a node task waited in the broker for a worker",
                   [], WAIT_BUCKETS, waits or {(): {}}, wait_sums),
    ]


def live(r: redis.Redis, results: redis.Redis, heartbeat_s: float) -> list[Metric]:
    """Gauges read from the farm as it is now: runs, queues, workers (VRAM and resident models from
    their heartbeats), the result store's memory."""
    pipe = r.pipeline(transaction=False)
    pipe.zcard(keys.QUEUE)
    pipe.zcard(keys.RUNNING)
    pipe.zcard(keys.HISTORY)
    pipe.llen(keys.SHARED_QUEUE)
    pipe.hlen(keys.KOMBU_UNACKED)
    pipe.zrange(keys.WORKERS, 0, -1, withscores=True)
    queued, running, stored, shared, unacked, beats = pipe.execute()
    workers = [(_s(name), float(beat)) for name, beat in beats]
    pipe = r.pipeline(transaction=False)
    for name, _beat in workers:
        pipe.llen(keys.worker_queue(name))
        pipe.get(keys.worker_info(name))
    per_worker = pipe.execute()

    runs = GaugeMetricFamily("nodefarm_runs", "Runs by state (queued: waiting for admission; running; "
                             "history: ended and kept in the history)", labels=["state"])
    runs.add_metric(["queued"], queued)
    runs.add_metric(["running"], running)
    runs.add_metric(["history"], stored)
    tasks = GaugeMetricFamily("nodefarm_queue_node_tasks", "Node tasks waiting in a broker queue (the shared "
                              "one, or a worker's private one)", labels=["queue"])
    tasks.add_metric([keys.SHARED_QUEUE], shared)
    taken = GaugeMetricFamily("nodefarm_node_tasks_unacked", "Node tasks a worker took from the broker and has "
                              "not finished (running or prefetched)", value=unacked)
    up = GaugeMetricFamily("nodefarm_worker_up", "1 while a worker's heartbeat is recent (3 periods)",
                           labels=["worker"])
    beat_age = GaugeMetricFamily("nodefarm_worker_heartbeat_age_seconds", "Seconds since a worker's last "
                                 "heartbeat", labels=["worker"])
    vram_total = GaugeMetricFamily("nodefarm_vram_total_bytes", "Memory of each worker's device (a CPU worker "
                                   "reports its RAM), from its heartbeat", labels=["worker", "device", "type"])
    vram_free = GaugeMetricFamily("nodefarm_vram_free_bytes", "Free memory of each worker's device, from its "
                                  "heartbeat", labels=["worker", "device", "type"])
    models = GaugeMetricFamily("nodefarm_resident_models", "Results only a worker's memory holds (models, "
                               "CLIPs, VAEs, ...)", labels=["worker"])
    model_bytes = GaugeMetricFamily("nodefarm_resident_model_bytes", "Bytes of the results only a worker's "
                                    "memory holds", labels=["worker"])
    now = time.time()
    for i, (name, beat) in enumerate(workers):
        private, info_raw = per_worker[2 * i], per_worker[2 * i + 1]
        tasks.add_metric([keys.worker_queue(name)], private)
        up.add_metric([name], 1.0 if now - beat < 3 * heartbeat_s else 0.0)
        beat_age.add_metric([name], max(0.0, now - beat))
        try:
            info = json.loads(info_raw) if info_raw else {}
        except ValueError:
            info = {}
        for device in info.get("devices") or []:
            labels = [name, str(device.get("name", "")), str(device.get("type", ""))]
            vram_total.add_metric(labels, float(device.get("vram_total") or 0))
            vram_free.add_metric(labels, float(device.get("vram_free") or 0))
        held = info.get("models") or []
        models.add_metric([name], len(held))
        model_bytes.add_metric([name], float(sum(int(m.get("bytes") or 0) for m in held)))
    memory = results.info("memory")
    store = GaugeMetricFamily("nodefarm_result_store_bytes", "Memory the result store's Redis uses (INFO "
                              "memory used_memory)", value=float(memory.get("used_memory", 0)))
    store_max = GaugeMetricFamily("nodefarm_result_store_max_bytes", "The result store's maxmemory (0: none)",
                                  value=float(memory.get("maxmemory", 0)))
    return [runs, tasks, taken, up, beat_age, vram_total, vram_free, models, model_bytes, store, store_max]


class FarmCollector:
    """A prometheus_client collector of the whole farm's figures (register it, or pass it to
    ``generate_latest`` in a registry of its own)."""

    def __init__(self, r: redis.Redis, results: redis.Redis, heartbeat_s: float) -> None:
        self.r = r
        self.results = results
        self.heartbeat_s = heartbeat_s

    def collect(self) -> Iterator[Metric]:
        yield from counted(self.r)
        yield from live(self.r, self.results, self.heartbeat_s)
