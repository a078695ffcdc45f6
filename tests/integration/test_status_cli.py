"""The operator's commands against a real farm: ``nodefarm status`` (workers, a busy node, a finished
run), ``nodefarm submit --wait`` piped (plain lines) and on a terminal (a bar per node), and
``nodefarm worker --gpus all`` on a host whose ``nvidia-smi`` is a fake listing two GPUs: two
pinned workers ``gpu0@host``/``gpu1@host`` that run nodes, one of them restarted after a SIGKILL."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import socket
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.farm import ROOT, Farm

pytestmark = pytest.mark.integration

CLI = [sys.executable, "-m", "api.cli.main"]


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def float_prompt(value: float, seconds: float = 0.0) -> dict:
    return {
        "1": {"class_type": "TestSlowValue", "inputs": {"value": value, "seconds": seconds, "tag": "status"}},
        "2": {"class_type": "TestFloatOutput", "inputs": {"value": ["1", 0]}},
    }


def image_prompt(prefix: str) -> dict:
    color = uuid.uuid4().int % 0xFFFFFF
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 4, "batch_size": 1, "color": color}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": prefix}},
    }


def rows(text: str, title: str) -> list[list[str]]:
    """The table rows of one section of ``nodefarm status``'s output, split into cells."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    out: list[list[str]] = []
    for line in lines[start + 2:]:
        if not line.strip():
            break
        out.append(re.split(r"\s{2,}", line.strip()))
    return out


def test_status_shows_both_workers_and_a_finished_run(farm: Farm) -> None:
    pid = farm.submit(float_prompt(time.time()))
    assert farm.wait(pid)["status"]["status_str"] == "success"
    done = cli("status", "--server", farm.url, "--runs", "50")
    assert done.returncode == 0, done.stderr
    assert "\033" not in done.stdout  # piped: plain
    workers = {r[0]: r for r in rows(done.stdout, "WORKERS")}
    assert {"w0@test", "w1@test"} <= set(workers)
    assert all(workers[w][2] == "cpu" and workers[w][3].endswith("GiB") for w in ("w0@test", "w1@test"))
    assert all(re.fullmatch(r"\d+\.\ds", workers[w][5]) for w in ("w0@test", "w1@test"))  # heartbeat age
    recent = {r[0]: r for r in rows(done.stdout, "RECENT RUNS")}
    assert recent[pid][1] == "completed"
    assert recent[pid][5] == "2/0"  # nodes run/cached
    assert re.fullmatch(r"\d+\.\ds", recent[pid][4])  # duration


def test_status_shows_the_node_a_worker_is_busy_with_and_the_running_run(farm: Farm) -> None:
    pid = farm.submit(float_prompt(time.time(), seconds=4.0))
    seen = ""
    deadline = time.time() + 30
    while time.time() < deadline:
        seen = cli("status", "--server", farm.url).stdout
        busy = [r for r in rows(seen, "WORKERS") if f"(run {pid[:8]})" in r[4]]
        if busy:
            assert busy[0][4] == f"1 TestSlowValue (run {pid[:8]})"
            assert ["-", pid, "running"] == rows(seen, "QUEUE")[0][:3]
            break
        time.sleep(0.3)
    else:
        raise AssertionError(f"no worker shown busy with {pid}:\n{seen}")
    farm.wait(pid)


def test_status_watch_redraws_until_interrupted(farm: Farm) -> None:
    proc = subprocess.Popen([*CLI, "status", "--server", farm.url, "--watch", "--interval", "0.3"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(3.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out.count("WORKERS (") >= 2 and "\033" not in out and "Traceback" not in err


def test_submit_wait_piped_prints_plain_lines(farm: Farm, tmp_path: Path) -> None:
    prompt = image_prompt(f"st_{uuid.uuid4().hex[:6]}")
    (tmp_path / "p.json").write_text(json.dumps(prompt))
    done = cli("submit", str(tmp_path / "p.json"), "--wait", "--server", farm.url)
    assert done.returncode == 0, done.stderr
    assert "\033" not in done.stderr
    lines = done.stderr.splitlines()
    assert lines[0].startswith("prompt_id ")
    for expected in ("executing 1 (EmptyImage)", "executing 2 (ImageInvert)", "executing 3 (SaveImage)",
                     "executed 3 (SaveImage): 1 outputs", "execution_success"):
        assert expected in lines, done.stderr
    assert done.stdout.strip().endswith(".png")


def test_submit_wait_on_a_terminal_draws_a_bar_per_node(farm: Farm, tmp_path: Path) -> None:
    prompt = {"1": {"class_type": "SemProgress", "inputs": {"value": time.time(), "steps": 5}},
              "2": {"class_type": "TestFloatOutput", "inputs": {"value": ["1", 0]}}}
    (tmp_path / "p.json").write_text(json.dumps(prompt))
    main, child = pty.openpty()
    proc = subprocess.Popen([*CLI, "submit", str(tmp_path / "p.json"), "--wait", "--server", farm.url], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=child, text=False)
    os.close(child)
    chunks: list[bytes] = []
    deadline = time.time() + 120
    while time.time() < deadline:
        ready, _, _ = select.select([main], [], [], 0.5)
        if ready:
            try:
                data = os.read(main, 65536)
            except OSError:  # the child closed its end
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    proc.wait(30)
    os.close(main)
    shown = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0, shown
    assert "\033[2K" in shown  # drawn in place
    assert re.search(r"1 SemProgress\s+\[#+\] done", shown), shown
    assert re.search(r"2 TestFloatOutput\s+\[#+\] done", shown), shown
    assert "executing 1 (SemProgress)" not in shown  # not the plain lines


# ---- nodefarm worker --gpus ------------------------------------------------------------------

FAKE_SMI = """#!/bin/sh
case "$*" in
  *memory.free*) printf '0, NVIDIA H200, 143771, 140000\\n1, NVIDIA H200, 143771, 120000\\n' ;;
  *) printf '0, NVIDIA H200, 143771 MiB, GPU-aaaa\\n1, NVIDIA H200, 143771 MiB, GPU-bbbb\\n' ;;
esac
"""


def devices_by_worker(farm: Farm) -> dict[str, dict]:
    import requests

    stats = requests.get(farm.url + "/system_stats", timeout=10).json()
    return {d["worker"]: d for d in stats["devices"]}


def wait_for(predicate, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_worker_gpus_all_runs_a_pinned_worker_per_gpu_and_restarts_a_dead_one(tmp_path: Path) -> None:
    farm = Farm(tmp_path, workers=0)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text(FAKE_SMI)
    smi.chmod(smi.stat().st_mode | stat.S_IXUSR)
    env = farm.env(tmp_path / "gpus", PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    env.pop("CUDA_VISIBLE_DEVICES", None)
    log = open(tmp_path / "gpus.log", "wb")
    sup = subprocess.Popen([*CLI, "worker", "--gpus", "all"], cwd=ROOT, env=env, stdout=log,
                           stderr=subprocess.STDOUT, start_new_session=True)
    host = socket.gethostname()
    names = [f"gpu0@{host}", f"gpu1@{host}"]
    try:
        found = wait_for(lambda: (lambda d: d if set(names) <= set(d) else None)(devices_by_worker(farm)), 120,
                         "gpu0 and gpu1 to join:\n" + (tmp_path / "gpus.log").read_text(errors="replace"))
        # each sees only its own GPU (CUDA_VISIBLE_DEVICES=N): as cuda:0, with that GPU's free memory
        assert found[names[0]]["name"] == f"cuda:0 NVIDIA H200 ({names[0]})"
        assert (found[names[0]]["vram_free"], found[names[1]]["vram_free"]) == (140000 * 2**20, 120000 * 2**20)
        shown = cli("status", "--server", farm.url).stdout
        assert {r[0]: r[2] for r in rows(shown, "WORKERS")} == {n: "cuda:0 NVIDIA H200" for n in names}
        assert farm.run(float_prompt(time.time()))["status"]["status_str"] == "success"

        info = json.loads(farm.r.get(f"nf:worker:{names[1]}"))  # its heartbeat: the worker process's pid
        os.kill(info["pid"], signal.SIGKILL)
        wait_for(lambda: devices_by_worker(farm).get(names[1], {}).get("restarts") == 1, 60, "gpu1 to be restarted")
        text = (tmp_path / "gpus.log").read_text(errors="replace")
        assert "gpu1" in text and "exited unexpectedly" in text and "restarted" in text
        assert "2 workers joined the farm" in text
    finally:
        os.killpg(sup.pid, signal.SIGTERM)
        sup.wait(60)
        log.close()
        farm.stop()
    assert sup.returncode == 0
