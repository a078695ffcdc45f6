"""Speed-up of a wide graph of CPU-bound nodes with 1 and 2 workers on one host.

The prompt: BRANCHES independent branches, each EmptyImage(SIZE x SIZE, its own colour) ->
BLURS x ImageBlur(radius RADIUS) -> SemShow (an output node from the test pack). Every branch is
distinct (its colour), so no two share a cache key; each rep shifts every colour, so nothing is cached.

Rows (three ``tests.farm.Farm`` instances kept up side by side; after a warm-up each, REPS rounds run
every row once, interleaved, so drift of the machine hits all alike; medians):

* in-process, 1 thread: the same nodes called one after another in this process (the compute
  alone, no farm), the ideal 1-worker time; half of it is the ideal 2-worker time;
* 1 worker and 2 workers, each worker pinned to one torch thread (``NODEFARM_TORCH_THREADS=1``):
  the speed-up the farm gives by spreading branches;
* 2 workers with the automatic split (``NODEFARM_TORCH_THREADS`` unset, ``NODEFARM_HOST_WORKERS=2``
  as ``nodefarm up`` sets it): each takes cores / 2 threads (``worker/cores.py``);
* 2 plain processes, no farm: the same compute split over two forked processes, one thread each:
  the speed-up the machine itself gives (on a shared 2-core VM it is well short of 2).

Timed from POST /prompt to the run's history entry (polled, as bench/chain.py does). The CPU each
worker process used is shown (from /proc) so one sees both workers did work. Prints the table (also
written to bench/results/wide.txt); the target is reported, never asserted.
Run: ``.venv/bin/python bench/wide.py``.
"""

from __future__ import annotations

import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from bench.common import CpuMeter, Report, environment, wait_history  # noqa: E402
from tests.farm import Farm  # noqa: E402
from worker.cores import available_cores, threads_for  # noqa: E402

BRANCHES = 8
SIZE = 320  # EmptyImage width and height: a 1-worker run of ~6 s, the size of the workload issue 7 measured (6.4 s)
BLURS = 3  # ImageBlur nodes per branch
RADIUS = 31  # the largest ImageBlur allows: a 63 x 63 kernel
REPS = 5
TARGET = 1.8  # speed-up at 2 workers


def wide_prompt(colors: list[int]) -> dict[str, dict[str, Any]]:
    """One branch per colour: EmptyImage -> BLURS x ImageBlur -> SemShow."""
    prompt: dict[str, dict[str, Any]] = {}
    for b, color in enumerate(colors):
        base = 100 * (b + 1)
        prompt[str(base)] = {"class_type": "EmptyImage",
                             "inputs": {"width": SIZE, "height": SIZE, "batch_size": 1, "color": color}}
        for j in range(1, BLURS + 1):
            prompt[str(base + j)] = {"class_type": "ImageBlur",
                                     "inputs": {"image": [str(base + j - 1), 0], "blur_radius": RADIUS, "sigma": 1.0}}
        prompt[str(base + BLURS + 1)] = {"class_type": "SemShow", "inputs": {"value": [str(base + BLURS), 0]}}
    return prompt


class Colors:
    """Fresh branch colours for every run of this bench (so no run hits the cache)."""

    def __init__(self) -> None:
        self.next = 1

    def take(self) -> list[int]:
        out = list(range(self.next, self.next + BRANCHES))
        self.next += BRANCHES
        return out


def run_once(farm: Farm, colors: list[int]) -> float:
    """POST the wide prompt, wait for its history entry, check every branch ran uncached."""
    prompt = wide_prompt(colors)
    t0 = time.perf_counter()
    res = farm.post(prompt)
    if res.status_code != 200:
        raise RuntimeError(f"POST /prompt failed: {res.status_code} {res.text[:500]}")
    pid = str(res.json()["prompt_id"])
    wait_history(farm, pid)
    elapsed = time.perf_counter() - t0
    entry = farm.wait(pid, 10)
    status = entry.get("status", {})
    if not status.get("completed"):
        raise RuntimeError(f"wide run {pid} failed: {status}")
    cached = sum(len(d.get("nodes", [])) for name, d in status.get("messages", []) if name == "execution_cached")
    shown = [entry["outputs"].get(str(100 * (b + 1) + BLURS + 1), {}).get("text") for b in range(BRANCHES)]
    if cached or shown != [[f"Tensor[1, {SIZE}, {SIZE}, 3]"]] * BRANCHES:
        raise RuntimeError(f"wide run {pid}: {cached} nodes cached, outputs {shown}")
    return elapsed


class Row:
    def __init__(self, label: str, workers: int, threads: str, times: list[float], cpu: str = "") -> None:
        self.label, self.workers, self.threads, self.times, self.cpu = label, workers, threads, times, cpu

    @property
    def median(self) -> float:
        return statistics.median(self.times)


def compute(cs: list[int]) -> float:
    """The branches of ``cs`` computed one after another in this process, one torch thread: seconds."""
    from nodes.boot import install_compat

    install_compat()
    from nodes.builtin.image import EmptyImage
    from nodes.builtin.postprocessing import ImageBlur

    torch.set_num_threads(1)
    empty, blur = EmptyImage(), ImageBlur()
    t0 = time.perf_counter()
    for color in cs:
        (image,) = empty.generate(SIZE, SIZE, 1, color)
        for _ in range(BLURS):
            (image,) = blur.blur(image, RADIUS, 1.0)
    return time.perf_counter() - t0


def two_processes(pool: Any, cs: list[int]) -> float:
    """The branches split over two plain processes (no farm), one torch thread each: seconds."""
    t0 = time.perf_counter()
    pool.map(compute, [cs[0::2], cs[1::2]])
    return time.perf_counter() - t0


def main() -> int:
    started = time.perf_counter()
    out = Report("wide")

    colors = Colors()
    pinned = {"NODEFARM_TORCH_THREADS": "1", "NODEFARM_HOST_WORKERS": ""}
    auto = {"NODEFARM_TORCH_THREADS": "", "NODEFARM_HOST_WORKERS": "2"}
    cores = available_cores()
    sides = [("farm, 1 worker", 1, "1", pinned), ("farm, 2 workers", 2, "1 each", pinned),
             ("farm, 2 workers, automatic split", 2, f"{threads_for(cores, 2, 0)} each", auto)]
    times: dict[str, list[float]] = {label: [] for label, *_ in sides}
    times["in-process, no farm"], times["2 plain processes, no farm"] = [], []
    farms: dict[str, Farm] = {}
    meters: dict[str, CpuMeter] = {}
    with tempfile.TemporaryDirectory(prefix="nf-bench-wide-") as tmpdir, \
            multiprocessing.get_context("fork").Pool(2) as pool:
        tmp = Path(tmpdir)
        try:
            for i, (label, workers, _threads, env) in enumerate(sides):
                farms[label] = Farm(tmp / f"farm{i}", workers=workers, env=env)
                meters[label] = CpuMeter({f"w{k}": farms[label].procs[f"w{k}"].pid for k in range(workers)})
                run_once(farms[label], colors.take())  # warm-up
            env_line = environment(farms[sides[0][0]])
            compute(colors.take()[:1])
            pool.map(compute, [colors.take()[:1]] * 2)
            # every round runs every side once, so drift of the machine hits all sides alike
            for _ in range(REPS):
                for label, *_rest in sides:
                    meters[label].start()
                    times[label].append(run_once(farms[label], colors.take()))
                    meters[label].stop()
                times["in-process, no farm"].append(compute(colors.take()))
                times["2 plain processes, no farm"].append(two_processes(pool, colors.take()))
        finally:
            for farm in farms.values():
                farm.stop()
    rows = [Row(label, workers, threads, times[label],
                " / ".join(f"{meters[label].used[f'w{k}'] / REPS:.2f}" for k in range(workers)))
            for label, workers, threads, _env in sides]
    inproc = Row("in-process, no farm", 1, "1", times["in-process, no farm"])
    hardware = Row("2 plain processes, no farm", 2, "1 each", times["2 plain processes, no farm"])

    base = rows[0].median
    nodes = len(wide_prompt(colors.take()))
    out(f"nodefarm bench/wide.py  ({time.strftime('%Y-%m-%d %H:%M:%S')})")
    out("environment: " + env_line)
    out(f"prompt: {BRANCHES} independent branches of EmptyImage({SIZE}x{SIZE}) -> {BLURS} x ImageBlur(radius "
        f"{RADIUS}) -> SemShow = {nodes} nodes; new colours every run (nothing cached). 1 warm-up each, then {REPS} interleaved rounds "
        "(median), timed from POST /prompt to the history entry. Farm workers: prefork -c 1; torch threads "
        f"per worker as shown ({cores} cores here).")
    out()
    out(f"{'row':<34}{'workers':>8}{'threads':>10}{'median s':>10}{'speed-up':>10}   "
        f"{'worker CPU s/run':<18}raw reps (s)")
    for r in [*rows, inproc, hardware]:
        out(f"{r.label:<34}{r.workers:>8}{r.threads:>10}{r.median:>10.3f}{base / r.median:>10.2f}   "
            f"{r.cpu or '-':<18}" + " ".join(f"{t:.3f}" for t in r.times))
    speedup = base / rows[1].median
    out(f"ideal 2-worker time from the in-process compute: {inproc.median / 2:.3f} s; farm cost over the "
        f"in-process compute at 1 worker: {(base - inproc.median) / nodes * 1000:.1f} ms/node")
    machine = inproc.median / hardware.median
    out(f"the machine itself, same compute in 2 plain processes: speed-up {machine:.2f} over 1 process; the farm's "
        f"2-worker speed-up is {speedup / machine:.0%} of it")
    out(f"target: speed-up at 2 workers >= {TARGET}: " + ("MET" if speedup >= TARGET else "NOT MET")
        + f" ({speedup:.2f}; automatic split {base / rows[2].median:.2f})")
    out(f"bench wall time: {time.perf_counter() - started:.1f} s")

    return out.write()


if __name__ == "__main__":
    sys.exit(main())
