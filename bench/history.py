"""Listing the newest 50 of 100,000 stored runs: does the history page through Redis (target < 50 ms)?

100,000 finished runs' history entries are written straight into a real API's state Redis
(``tests.farm.Farm``, no workers), as the run's end writes them: a small workflow (a checkpoint, two
prompts, a sampler, a save) with one saved image, a mix of successes, failures and interruptions,
half with the editor's workflow id. Each row is the median of REPS HTTP answers (round trip included)
for one listing: ``/history?max_items=50`` (ComfyUI's paging), ``/api/jobs?limit=50`` (the newest 50,
the editor's queue panel), filtered by status (one status; two, merged from their indexes), sorted by
duration, a deep page, and one workflow (10,000 runs; by status; by duration, which the API ranks
itself). The first ``/api/jobs`` call indexes every stored run once (a farm does that as each run
ends); its time is shown apart. The baseline row is the listing as it
was before the indexes (every entry read and sorted in Python, in this process), same Redis, same run.

Prints the table (also bench/results/history.txt); the 50 ms target is reported, never asserted.
Run: ``.venv/bin/python bench/history.py``.
"""

from __future__ import annotations

import json
import random
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

import requests  # noqa: E402

from bench.common import Report, progress, sd15_prompt  # noqa: E402
from tests.farm import Farm  # noqa: E402
from worker import history, keys  # noqa: E402

RUNS = 100_000
REPS = 15
TARGET_MS = 50.0
BATCH = 2_000


def entry(i: int, pid: str, rng: random.Random) -> tuple[dict[str, Any], float]:
    """A history entry as functions.lua ``finish`` writes it, and when the run finished (unix s)."""
    began = 1_700_000_000_000 + i * 2_000
    ended = began + 500 + rng.randrange(30_000)
    outcome = rng.choice(("success",) * 8 + ("error", "interrupted"))
    prompt = sd15_prompt(i)
    extra: dict[str, Any] = {"client_id": f"client{i % 7}", "nodefarm_submitter": f"client{i % 7}",
                             "create_time": began - 40}
    if i % 2:
        extra["extra_pnginfo"] = {"workflow": {"id": f"wf-{i % 5}"}}
    last = {"success": "execution_success", "error": "execution_error", "interrupted": "execution_interrupted"}[outcome]
    messages = [["execution_start", {"prompt_id": pid, "timestamp": began}],
                ["execution_cached", {"nodes": [], "prompt_id": pid, "timestamp": began}],
                [last, {"prompt_id": pid, "timestamp": ended}]]
    outputs = {"9": {"images": [{"filename": f"ComfyUI_{i:05d}_.png", "subfolder": "", "type": "output"}]}} \
        if outcome == "success" else {}
    return ({"prompt": [i, pid, prompt, extra, ["9"]], "outputs": outputs,
             "status": {"status_str": "success" if outcome == "success" else "error", "completed": outcome == "success",
                        "messages": messages}, "meta": {}}, ended / 1000)


def store(farm: Farm) -> None:
    rng = random.Random(11)
    for start in range(0, RUNS, BATCH):
        pipe = farm.r.pipeline(transaction=False)
        for i in range(start, min(RUNS, start + BATCH)):
            pid = str(uuid.UUID(int=rng.getrandbits(128)))
            value, finished = entry(i, pid, rng)
            pipe.set(keys.history_entry(pid), json.dumps(value))
            pipe.zadd(keys.HISTORY, {pid: finished})
        pipe.execute()


def answer_ms(farm: Farm, path: str, params: dict[str, Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    res = requests.get(farm.url + path, params=params, timeout=600)
    took = (time.perf_counter() - start) * 1000
    assert res.status_code == 200, res.text[:300]
    return took, res.json()


def old_listing_ms(farm: Farm) -> float:
    """The listing before the indexes: every entry read, made a job and sorted, in this process."""
    from api.routes.jobs import history_job

    start = time.perf_counter()
    finished = history.finish_times(farm.r)
    jobs = [history_job(pid, e, finished_at=finished.get(pid)) for pid, e in history.get(farm.r).items()]
    jobs.sort(key=lambda j: float(j.get("create_time") or 0), reverse=True)
    assert len(jobs[:50]) == 50
    return (time.perf_counter() - start) * 1000


LISTINGS: list[tuple[str, str, dict[str, Any]]] = [
    ("/history newest 50", "/history", {"max_items": 50}),
    ("/api/jobs newest 50", "/api/jobs", {"limit": 50}),
    ("  status=completed", "/api/jobs", {"limit": 50, "status": "completed"}),
    ("  status=failed,cancelled", "/api/jobs", {"limit": 50, "status": "failed,cancelled"}),
    ("  by duration", "/api/jobs", {"limit": 50, "sort_by": "execution_duration"}),
    ("  offset 50,000", "/api/jobs", {"limit": 50, "offset": 50_000}),
    ("  one workflow", "/api/jobs", {"limit": 50, "workflow_id": "wf-1"}),
    ("  one workflow, completed", "/api/jobs", {"limit": 50, "workflow_id": "wf-1", "status": "completed"}),
    ("  one workflow, by duration", "/api/jobs", {"limit": 50, "workflow_id": "wf-1", "sort_by": "execution_duration"}),
]


def main() -> int:
    report = Report("history")
    with tempfile.TemporaryDirectory() as tmp:
        farm = Farm(Path(tmp), workers=0, env={"NODEFARM_LOG_LEVEL": "ERROR", "NODEFARM_HISTORY_SIZE": str(RUNS)})
        try:
            progress(f"storing {RUNS:,} history entries ...")
            t0 = time.perf_counter()
            store(farm)
            report(f"{RUNS:,} history entries stored in {time.perf_counter() - t0:.1f} s "
                   f"({farm.r.info('memory')['used_memory_human']} in the state Redis)")
            first, _ = answer_ms(farm, "/api/jobs", {"limit": 50})
            report(f"first /api/jobs call, indexing all {RUNS:,} runs once: {first / 1000:.1f} s "
                   f"({farm.r.info('memory')['used_memory_human']} with the indexes)")
            report()
            report(f"{'listing':<32}{'median':>10}{'max':>10}{'< 50 ms':>9}")
            for label, path, params in LISTINGS:
                answer_ms(farm, path, params)  # warm-up
                times = []
                for _ in range(REPS):
                    took, body = answer_ms(farm, path, params)
                    times.append(took)
                got = len(body if path == "/history" else body["jobs"])
                assert got == 50, (label, got)
                median = statistics.median(times)
                ok = "yes" if median < TARGET_MS else "NO"
                report(f"{label:<32}{median:>8.1f}ms{max(times):>8.1f}ms{ok:>9}")
            baseline = old_listing_ms(farm)
            report(f"{'baseline: old whole-history sort':<32}{baseline:>8.0f}ms{'':>10}{'':>9}")
        finally:
            farm.stop()
    report(f"(median of {REPS} HTTP answers each; API alone on the host, no workers; "
           "the baseline runs in this process without HTTP)")
    return report.write()


if __name__ == "__main__":
    raise SystemExit(main())
