"""Time to answer an invalid prompt, by size: is validation linear, and is 20,000 nodes under 1 s?

Each prompt kind is sent to a real API (``tests.farm.Farm``, no workers: nothing runs) with
``POST /prompt`` at 5,000, 10,000 and 20,000 nodes; the row shows the median of REPS answers (HTTP
round trip included: parsing, the schema check, validation, the 400 with every node error) and the
ratio 20k / 10k (2.0 is linear, 4.0 quadratic). The kinds are the shapes that were slow before:

* missing: N output nodes each missing a required input (N node errors);
* dangling: N outputs each linked to a node that does not exist (N exceptions with tracebacks);
* chain: one bad source, N nodes linked in a chain to one output;
* shared-source: N outputs all fed by one bad node.

Prints the table (also bench/results/validation.txt); the 1 s target is reported, never asserted.
Run: ``.venv/bin/python bench/validation.py``.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from bench.common import Report  # noqa: E402
from tests.farm import Farm  # noqa: E402

SIZES = (5_000, 10_000, 20_000)
REPS = 3
TARGET_S = 1.0
BAD_SOURCE = {"class_type": "EmptyImage", "inputs": {"width": "bad", "height": 8, "batch_size": 1, "color": 0}}


def prompt(kind: str, n: int) -> dict[str, Any]:
    save = {"class_type": "SaveImage", "inputs": {"filename_prefix": "x"}}
    if kind == "missing":
        return {str(i): save for i in range(n)}
    if kind == "dangling":
        return {str(i): {"class_type": "SaveImage", "inputs": {"images": [f"m{i}", 0], "filename_prefix": "x"}}
                for i in range(n)}
    out: dict[str, Any] = {"0": BAD_SOURCE}
    for i in range(1, n):
        source = str(i - 1) if kind == "chain" else "0"
        cls = "ImageInvert" if kind == "chain" else "SaveImage"
        out[str(i)] = {"class_type": cls, "inputs": {"image" if kind == "chain" else "images": [source, 0]}}
        if cls == "SaveImage":
            out[str(i)]["inputs"]["filename_prefix"] = "x"
    if kind == "chain":
        out[str(n)] = {"class_type": "SaveImage", "inputs": {"images": [str(n - 1), 0], "filename_prefix": "x"}}
    return out


def answer_s(farm: Farm, body: bytes) -> float:
    start = time.perf_counter()
    res = requests.post(farm.url + "/prompt", data=body, headers={"Content-Type": "application/json"}, timeout=300)
    took = time.perf_counter() - start
    assert res.status_code == 400, res.text[:300]
    return took


def main() -> int:
    import json

    report = Report("validation")
    with tempfile.TemporaryDirectory() as tmp:
        farm = Farm(Path(tmp), workers=0, env={"NODEFARM_LOG_LEVEL": "ERROR"})
        try:
            report(f"{'prompt':<14}" + "".join(f"{n:>10,}" for n in SIZES) + f"{'20k/10k':>10}{'< 1 s':>8}")
            for kind in ("missing", "dangling", "chain", "shared-source"):
                times: dict[int, float] = {}
                for n in SIZES:
                    body = json.dumps({"prompt": prompt(kind, n)}).encode()
                    answer_s(farm, body)  # warm-up
                    times[n] = statistics.median(answer_s(farm, body) for _ in range(REPS))
                ratio = times[20_000] / times[10_000]
                ok = "yes" if times[20_000] < TARGET_S else "NO"
                report(f"{kind:<14}" + "".join(f"{times[n]:>9.3f}s" for n in SIZES) + f"{ratio:>10.2f}{ok:>8}")
        finally:
            farm.stop()
    report(f"(median of {REPS} answers each, HTTP round trip included; API alone on the host, no workers)")
    return report.write()


if __name__ == "__main__":
    raise SystemExit(main())
