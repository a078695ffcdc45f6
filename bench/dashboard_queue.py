"""The dashboard's queue with 20,000 runs waiting: what one look costs (the page's pusher looks every 0.5 s).

20,000 validated runs of a small txt2img workflow (with the editor's workflow in extra_data, as the
editor sends it) are queued in a real redis-server with the farm's Redis Functions, from 4 submitters at
2 priority levels. Each row is the median of REPS calls of ``api.dashboard.queue`` and the size of its
JSON: the baseline reads every pending run's item (what the dashboard did before), the other the head of
the queue in admission order (QUEUE_SHOWN runs) and the count. Same Redis, same run.

Run: ``.venv/bin/python bench/dashboard_queue.py``.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from api import dashboard  # noqa: E402
from bench.common import Report, progress  # noqa: E402
from nodes.core.item import QueueItem  # noqa: E402
from tests.farm import functions_redis  # noqa: E402
from worker import prompt_queue  # noqa: E402

PENDING = 20_000
REPS = 7


def prompt(i: int) -> dict:
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


def timed(fn: object) -> tuple[float, int]:
    times, size = [], 0
    for _ in range(REPS):
        t0 = time.perf_counter()
        got = fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
        size = len(json.dumps(got))
    return statistics.median(times) * 1000, size


def main() -> int:
    report = Report("dashboard_queue")
    with tempfile.TemporaryDirectory() as tmp, functions_redis(Path(tmp)) as r:
        workflow = {"nodes": [{"id": i, "type": "X", "widgets_values": ["x" * 40]} for i in range(7)]}
        progress(f"queueing {PENDING} runs")
        for i in range(PENDING):
            extra = {"nodefarm_submitter": f"client-{i % 4}", "priority": i % 2, "create_time": 1_700_000_000_000 + i,
                     "extra_pnginfo": {"workflow": workflow}}
            prompt_queue.enqueue(r, QueueItem(i, str(uuid.uuid4()), prompt(i), extra, ["9"]))
        base_ms, base_size = timed(lambda: dashboard.queue(r, None))
        head_ms, head_size = timed(lambda: dashboard.queue(r))
        report(f"dashboard queue with {PENDING} pending runs (median of {REPS}; real redis-server)")
        report(f"{'':42} {'ms':>9} {'JSON bytes':>12}")
        report(f"{'baseline: every pending run':42} {base_ms:9.1f} {base_size:12,}")
        report(f"{f'the next {dashboard.QUEUE_SHOWN} and the count':42} {head_ms:9.1f} {head_size:12,}")
        report(f"ratio {base_ms / head_ms:.1f}x less time, {base_size / head_size:.0f}x less data per look "
               f"(the page's pusher looks every {dashboard.PUSH_S} s while a dashboard is open)")
    return report.write()


if __name__ == "__main__":
    sys.exit(main())
