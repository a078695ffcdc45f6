"""What the benchmarks share: the CPU meter, the environment line, waiting for a run, the report.

Every bench prints its table and writes it to ``bench/results/<name>.txt`` (:class:`Report`).
"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

import celery
import redis

from tests.farm import Farm
from worker import keys

ROOT = Path(__file__).resolve().parents[1]
RUN_TIMEOUT = 300.0
POLL_S = 0.005  # history poll interval: one Redis EXISTS (far cheaper for the farm than a GET /history)


def wait_history(farm: Farm, pid: str, timeout: float = RUN_TIMEOUT) -> None:
    """Poll the state Redis for the run's history entry (the key GET /history/<id> reads)."""
    key = keys.history_entry(pid)
    deadline = time.perf_counter() + timeout
    while not farm.r.exists(key):
        if time.perf_counter() > deadline:
            raise RuntimeError(f"farm run {pid} did not finish; logs:\n" + "\n".join(farm.log(n) for n in farm.procs))
        time.sleep(POLL_S)


# ---- CPU accounting (Linux /proc; contention-proof, unlike wall time) ----------------------------


def _proc_table() -> dict[int, tuple[int, float]]:
    """pid -> (ppid, cpu seconds) of every process we can read."""
    tick = os.sysconf("SC_CLK_TCK")
    table: dict[int, tuple[int, float]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        table[int(name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    return table


class CpuMeter:
    """CPU seconds used by labelled process trees (a root pid and its descendants) between snapshots.

    The root of this process is counted alone (its descendants are the farm's processes).
    """

    def __init__(self, roots: dict[str, int]) -> None:
        self.roots = roots
        self.me = os.getpid()
        self.used: dict[str, float] = {label: 0.0 for label in roots}
        self._start: dict[str, float] = {}

    def _snapshot(self) -> dict[str, float]:
        if not os.path.isdir("/proc"):
            return {}
        table = _proc_table()
        out: dict[str, float] = {}
        for label, root in self.roots.items():
            tree, frontier = {root}, ([] if root == self.me else [root])
            while frontier:
                parent = frontier.pop()
                for pid, (ppid, _) in table.items():
                    if ppid == parent and pid not in tree:
                        tree.add(pid)
                        frontier.append(pid)
            out[label] = sum(table[p][1] for p in tree if p in table)
        return out

    def start(self) -> None:
        self._start = self._snapshot()

    def stop(self) -> None:
        end = self._snapshot()
        for label, value in end.items():
            self.used[label] += value - self._start.get(label, value)

    def summary(self, units: int) -> str:
        parts = [f"{label} {self.used[label] / units * 1000:.2f}" for label in self.roots]
        return ", ".join(parts) + f"  (total {sum(self.used.values()) / units * 1000:.2f})"


def environment(farm: Farm) -> str:
    redis_version = farm.r.info("server").get("redis_version", "?")
    return (f"{os.cpu_count()} cores, python {platform.python_version()}, celery {celery.__version__}, "
            f"redis-py {redis.__version__}, redis-server {redis_version}, {platform.platform()}")


class Report:
    """Lines printed as they come and written to ``bench/results/<name>.txt`` at the end."""

    def __init__(self, name: str) -> None:
        self.path = ROOT / "bench" / "results" / f"{name}.txt"
        self.lines: list[str] = []
        self.started = time.perf_counter()

    def __call__(self, line: str = "") -> None:
        print(line, flush=True)
        self.lines.append(line)

    def write(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("\n".join(self.lines) + "\n")
        print(f"(written to {self.path.relative_to(ROOT)})")
        return 0


def progress(line: str) -> None:
    """A progress line on stderr (the report goes to stdout)."""
    print(line, file=sys.stderr, flush=True)


def sd15_prompt(i: int) -> dict:
    """An SD1.5 txt2img workflow (a checkpoint, two prompts, a sampler, a save), the i-th of a series."""
    return {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": f"a photo of a cat number {i}", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
        "3": {"class_type": "KSampler", "inputs": {"seed": i, "steps": 20, "cfg": 8.0, "sampler_name": "euler",
                                                    "scheduler": "normal", "denoise": 1.0, "model": ["4", 0],
                                                    "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 1}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}},
    }
