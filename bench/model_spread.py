"""Runs of one checkpoint on a 2-worker farm: do they sample on both workers (NODEFARM_SPREAD_MODELS=1)
or queue on the worker that loaded the model first (=0, the baseline), and how long does the batch take?

A real ComfyUI (``../shared/comfyui`` or NODEFARM_TEST_COMFYUI) runs a tiny random SD1.5 checkpoint on
CPU workers of one torch thread each (NODEFARM_TORCH_THREADS=1): each worker has a core as a GPU worker
has its device; on 2 cores the two workers can sample side by side. For each setting, a
fresh farm runs one warm-up run (the model is then resident on one worker), then RUNS txt2img runs of
new seeds are submitted at once (a batch of seeds, as a script or the editor's batch count sends them)
and, separately, one every GAP_S seconds. Reported: the wall time from the first submit to the last run's
end, and which worker ran each run's sampler. Same machine, same run, baseline first.

Run: ``.venv/bin/python bench/model_spread.py``.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import Report, progress, wait_history  # noqa: E402
from tests.comfyui.conftest import build_checkpoint, comfy_farm  # noqa: E402
from tests.farm import comfyui_missing  # noqa: E402
from worker import keys  # noqa: E402

RUNS = 8
GAP_S = 1.0
STEPS = 16
SIZE = 192


def prompt(seed: int) -> dict:
    p = json.loads((ROOT / "examples" / "txt2img.json").read_text())
    p["3"]["inputs"].update(seed=seed, steps=STEPS)
    p["5"]["inputs"].update(width=SIZE, height=SIZE)
    return p


def batch(farm: object, seeds: list[int], gap: float) -> tuple[float, Counter]:
    t0 = time.perf_counter()
    pids = []
    for seed in seeds:
        pids.append(farm.submit(prompt(seed)))  # type: ignore[attr-defined]
        if gap:
            time.sleep(gap)
    for pid in pids:
        wait_history(farm, pid)  # type: ignore[arg-type]
    took = time.perf_counter() - t0
    samplers = Counter(str(farm.r.hget(keys.run_part(pid, "made"), "3").decode()) for pid in pids)  # type: ignore[attr-defined]
    return took, samplers


def main() -> int:
    missing = comfyui_missing()
    if missing:
        print(f"model_spread: {missing}")
        return 1
    report = Report("model_spread")
    with tempfile.TemporaryDirectory() as tmp:
        models = Path(tmp) / "models"
        build_checkpoint(models / "checkpoints" / "tiny-sd15.safetensors")
        rows = []
        for spread in ("0", "1"):
            progress(f"NODEFARM_SPREAD_MODELS={spread}")
            # one core per worker, as each GPU worker has a device of its own (2 threads each would share
            # the same 2 cores: a second worker would have nothing of its own to sample on)
            farm = comfy_farm(Path(tmp) / f"farm{spread}", models, NODEFARM_SPREAD_MODELS=spread,
                              NODEFARM_TORCH_THREADS="1")
            try:
                wait_history(farm, farm.submit(prompt(1)))  # warm: the model resident on one worker
                burst = batch(farm, [100 + i for i in range(RUNS)], 0.0)
                spaced = batch(farm, [200 + i for i in range(RUNS)], GAP_S)
            finally:
                farm.stop()
            rows.append((spread, burst, spaced))
        report(f"{RUNS} txt2img runs of one checkpoint ({SIZE}x{SIZE}, {STEPS} steps), 2 CPU workers, model resident on one")
        report(f"{'NODEFARM_SPREAD_MODELS':24} {'batch s':>8} {'samplers':>22} {f'1 per {GAP_S:g} s':>10} {'samplers':>22}")
        for spread, (bt, bs), (st, ss) in rows:
            report(f"{spread:24} {bt:8.1f} {dict(sorted(bs.items()))!s:>22} {st:10.1f} {dict(sorted(ss.items()))!s:>22}")
        (_, (b0, _), (s0, _)), (_, (b1, _), (s1, _)) = rows
        report(f"spread / baseline: batch {b1 / b0:.2f}x the time, spaced {s1 / s0:.2f}x")
    return report.write()


if __name__ == "__main__":
    sys.exit(main())
