"""What one look of the dashboard costs (its pusher looks every 0.5 s while a page is open), on a big farm.

Queue: 20,000 runs waiting.
20,000 validated runs of a small txt2img workflow (with the editor's workflow in extra_data, as the
editor sends it) are queued in a real redis-server with the farm's Redis Functions, from 4 submitters at
2 priority levels. Each row is the median of REPS calls of ``api.dashboard.queue`` and the size of its
JSON: the baseline reads every pending run's item (what the dashboard did before), the other the head of
the queue in admission order (QUEUE_SHOWN runs) and the count. Same Redis, same run.

Runs and cache figures: the last CACHE_WINDOW finished runs, each carrying the editor's workflow (100 KB,
as a real graph's), read again whenever a run ends. The baseline parses every entry of the window; the
board keeps a digest of each entry (entries never change) and reads the new ones only: one look with no
new run, and one with a new run, are timed.

Run: ``.venv/bin/python bench/dashboard.py``.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from api import dashboard  # noqa: E402
from bench.common import Report, progress, sd15_prompt  # noqa: E402
from nodes.core.item import QueueItem  # noqa: E402
from tests.farm import functions_redis  # noqa: E402
from worker import keys, prompt_queue  # noqa: E402

PENDING = 20_000
REPS = 7


def timed(fn: object) -> tuple[float, int]:
    times, size = [], 0
    for _ in range(REPS):
        t0 = time.perf_counter()
        got = fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
        size = len(json.dumps(got))
    return statistics.median(times) * 1000, size


def main() -> int:
    report = Report("dashboard")
    with tempfile.TemporaryDirectory() as tmp, functions_redis(Path(tmp)) as r:
        workflow = {"nodes": [{"id": i, "type": "X", "widgets_values": ["x" * 40]} for i in range(7)]}
        progress(f"queueing {PENDING} runs")
        for i in range(PENDING):
            extra = {"nodefarm_submitter": f"client-{i % 4}", "priority": i % 2, "create_time": 1_700_000_000_000 + i,
                     "extra_pnginfo": {"workflow": workflow}}
            prompt_queue.enqueue(r, QueueItem(i, str(uuid.uuid4()), sd15_prompt(i), extra, ["9"]))
        base_ms, base_size = timed(lambda: dashboard.queue(r, None))
        head_ms, head_size = timed(lambda: dashboard.queue(r))
        report(f"dashboard queue with {PENDING} pending runs (median of {REPS}; real redis-server)")
        report(f"{'':42} {'ms':>9} {'JSON bytes':>12}")
        report(f"{'baseline: every pending run':42} {base_ms:9.1f} {base_size:12,}")
        report(f"{f'the next {dashboard.QUEUE_SHOWN} and the count':42} {head_ms:9.1f} {head_size:12,}")
        report(f"ratio {base_ms / head_ms:.1f}x less time, {base_size / head_size:.0f}x less data per look "
               f"(the page's pusher looks every {dashboard.PUSH_S} s while a dashboard is open)")
        report()
        runs_and_cache(r, report)
    return report.write()


def finished(r: Any, i: int, workflow: dict) -> None:
    pid = str(uuid.uuid4())
    entry = {"prompt": [i, pid, sd15_prompt(i), {"extra_pnginfo": {"workflow": workflow}}, ["9"]], "outputs": {},
             "status": {"status_str": "success", "completed": True,
                        "messages": [["execution_start", {"timestamp": i}], ["execution_cached", {"nodes": ["4", "5"]}],
                                     ["execution_success", {"timestamp": i + 5}]]}}
    r.set(keys.history_entry(pid), json.dumps(entry))
    r.zadd(keys.HISTORY, {pid: i})


def runs_and_cache(r: Any, report: Report) -> None:
    workflow = {"nodes": [{"id": i, "type": "X", "widgets_values": ["x" * 200]} for i in range(400)]}  # ~100 KB
    for i in range(dashboard.CACHE_WINDOW + 50):
        finished(r, i, workflow)
    base_ms, _ = timed(lambda: dashboard.runs_and_cache(r, r))
    known: dict = {}
    dashboard.runs_and_cache(r, r, known)
    same_ms, _ = timed(lambda: dashboard.runs_and_cache(r, r, known))
    counter = iter(range(10**6, 2 * 10**6))

    def one_new() -> Any:
        finished(r, next(counter), workflow)
        return dashboard.runs_and_cache(r, r, known)

    new_ms, _ = timed(one_new)
    report(f"runs list and cache figures over the last {dashboard.CACHE_WINDOW} runs (100 KB workflow each; median of {REPS})")
    report(f"{'':42} {'ms':>9}")
    report(f"{'baseline: every entry parsed':42} {base_ms:9.1f}")
    report(f"{'digests kept, no new run':42} {same_ms:9.1f}")
    report(f"{'digests kept, one new run (its write too)':42} {new_ms:9.1f}")
    report(f"ratio {base_ms / new_ms:.0f}x less time per look after a run ends")


if __name__ == "__main__":
    sys.exit(main())
