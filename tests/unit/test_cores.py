"""Workers on one host split its cores: torch threads = cores / workers unless set explicitly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nodes.settings import Settings
from worker.cores import threads_for

ROOT = Path(__file__).resolve().parents[2]


# --- the split (pure) -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cores", "workers", "expected"),
    [(16, 1, 16), (16, 4, 4), (16, 3, 5), (2, 2, 1), (2, 4, 1), (1, 1, 1), (8, 0, 8)],
)
def test_automatic_split_gives_each_worker_its_share_of_the_cores_and_at_least_one(
    cores: int, workers: int, expected: int
) -> None:
    assert threads_for(cores, workers, 0) == expected


@pytest.mark.parametrize(("cores", "workers", "explicit"), [(16, 4, 3), (2, 2, 8), (4, 1, 1)])
def test_an_explicit_count_wins_whatever_the_cores_and_workers(cores: int, workers: int, explicit: int) -> None:
    assert threads_for(cores, workers, explicit) == explicit


def test_settings_read_torch_threads_and_host_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [k for k in os.environ if k.startswith("NODEFARM_")]:
        monkeypatch.delenv(name)
    defaults = Settings.from_env()
    assert (defaults.torch_threads, defaults.host_workers) == (0, 1)
    monkeypatch.setenv("NODEFARM_TORCH_THREADS", "3")
    monkeypatch.setenv("NODEFARM_HOST_WORKERS", "4")
    s = Settings.from_env()
    assert (s.torch_threads, s.host_workers) == (3, 4)


# --- apply() in a fresh process (torch's thread pools are per process) -------------------------

PROBE = """
import json, os, sys, torch
from nodes.settings import Settings
from worker import cores
torch.set_num_threads(7)  # anything but the expected count, so a no-op apply() is caught
if sys.argv[1] == "interop-used":
    torch.set_num_interop_threads(2)  # a second call raises: apply() must keep going
children = int(sys.argv[2])
n = cores.apply(Settings.from_env(), children)
print(json.dumps({"returned": n, "torch": torch.get_num_threads(),
                  "omp": os.environ["OMP_NUM_THREADS"], "mkl": os.environ["MKL_NUM_THREADS"]}))
"""


def probe(env: dict[str, str], mode: str = "fresh", children: int = 1) -> dict[str, object]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("NODEFARM_")}
    full.update(env, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", PROBE, mode, str(children)], cwd=ROOT, env=full,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def test_apply_sets_torch_threads_and_the_omp_mkl_variables_to_the_explicit_count() -> None:
    got = probe({"NODEFARM_TORCH_THREADS": "3", "NODEFARM_HOST_WORKERS": "8"})
    assert got == {"returned": 3, "torch": 3, "omp": "3", "mkl": "3"}


def test_apply_splits_this_process_cores_between_the_host_workers() -> None:
    cores = len(os.sched_getaffinity(0))  # the probe inherits this process's affinity
    expected = max(1, cores // 2)
    got = probe({"NODEFARM_HOST_WORKERS": "2"})
    assert got == {"returned": expected, "torch": expected, "omp": str(expected), "mkl": str(expected)}


def test_apply_counts_every_pool_child_of_a_worker() -> None:
    cores = len(os.sched_getaffinity(0))
    expected = max(1, cores // 6)
    got = probe({"NODEFARM_HOST_WORKERS": "2"}, children=3)
    assert got["torch"] == expected


def test_apply_survives_an_interop_pool_that_is_already_sized() -> None:
    got = probe({"NODEFARM_TORCH_THREADS": "2"}, mode="interop-used")
    assert got == {"returned": 2, "torch": 2, "omp": "2", "mkl": "2"}
