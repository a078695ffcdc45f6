"""`nodefarm up` as a process tree: it comes up, and however it ends, no child outlives it.

Each farm runs on free ports with its own temp dir. Every process of the tree inherits a unique
NODEFARM_TEST_TAG, so survivors are found by scanning /proc whatever their parent is now.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from api.cli.supervisor import free_port, port_is_free

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]

REPO = Path(__file__).resolve().parents[2]
UP_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    started: int  # clock ticks after boot: tells a pid from its reuse
    environ: bytes


def process_table() -> dict[int, Proc]:
    """Every live (non-zombie) process on the machine."""
    table: dict[int, Proc] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z":
            table[int(entry.name)] = Proc(int(entry.name), int(fields[1]), int(fields[19]), environ)
    return table


@dataclass
class RunningFarm:
    proc: subprocess.Popen[bytes]
    port: int
    tag: str
    log: Path
    tmpdir: Path
    seen: dict[int, Proc] = field(default_factory=dict)  # every child ever listed, for the teardown

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def children(self) -> dict[int, Proc]:
        """The supervisor's live descendants, plus any process carrying this farm's tag wherever it
        now hangs (redis-server rewrites its environ for its process title, so both are needed)."""
        table = process_table()
        found: dict[int, Proc] = {}
        needle = f"NODEFARM_TEST_TAG={self.tag}".encode()
        for proc in table.values():
            if needle in proc.environ.split(b"\0"):
                found[proc.pid] = proc
        frontier = [self.proc.pid]
        while frontier:
            parent = frontier.pop()
            for proc in table.values():
                if proc.ppid == parent and proc.pid not in found:
                    found[proc.pid] = proc
                    frontier.append(proc.pid)
        found.pop(self.proc.pid, None)
        self.seen.update(found)
        return found

    def survivors(self, before: dict[int, Proc]) -> dict[int, Proc]:
        """Processes of ``before`` still alive (same pid and start time), and any tagged process."""
        table = process_table()
        alive = {pid: p for pid, p in before.items() if pid in table and table[pid].started == p.started}
        return {**alive, **self.children()}


def wait_for(condition: object, timeout: float, interval: float = 0.1) -> bool:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return bool(condition())


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


@pytest.fixture
def farm(tmp_path: Path) -> Iterator[RunningFarm]:
    port, tag = free_port(), uuid.uuid4().hex
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NODEFARM_")}
    env.update(
        NODEFARM_TEST_TAG=tag,
        TMPDIR=str(tmpdir),
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p),
    )
    log = tmp_path / "farm.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "api.cli.main", "up", "--port", str(port), "--workers", "1", "--cpu",
             "--base-directory", str(tmp_path / "base")],
            cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
        )
    running = RunningFarm(proc, port, tag, log, tmpdir)
    try:
        up = wait_for(lambda: proc.poll() is not None or http_ok(f"http://127.0.0.1:{port}/system_stats"), UP_TIMEOUT_S)
        assert up and proc.poll() is None, f"farm did not come up:\n{running.output()[-4000:]}"
        assert wait_for(lambda: "nodefarm is up: " in running.output(), 10), running.output()[-4000:]
        yield running
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in running.survivors(running.seen):  # leave nothing behind, even when an assertion failed
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def wait_for_worker_pool(farm: RunningFarm) -> None:
    """Give the worker time to fork its pool child, so that grandchildren are part of the tree too."""
    def has_grandchild() -> bool:
        tree = farm.children()
        return any(p.ppid in tree for p in tree.values())

    wait_for(has_grandchild, 30, interval=0.2)


def test_up_announces_itself_and_runs_two_redis_an_api_and_a_worker(farm: RunningFarm) -> None:
    assert f"nodefarm is up: http://127.0.0.1:{farm.port}/ (1 workers)" in farm.output()
    direct = [pid for pid, p in farm.children().items() if p.ppid == farm.proc.pid]
    assert len(direct) == 4, farm.output()[-4000:]
    assert len(list(farm.tmpdir.glob("nodefarm-*"))) == 1


def test_sigkill_of_the_supervisor_takes_every_child_with_it(farm: RunningFarm) -> None:
    wait_for_worker_pool(farm)
    before = farm.children()
    assert len(before) >= 4
    farm.proc.send_signal(signal.SIGKILL)
    farm.proc.wait()
    deadline = time.monotonic() + 10
    assert wait_for(lambda: not farm.survivors(before), 10), f"orphans: {farm.survivors(before)}"
    # The kernel may release a dead process's listening socket a moment after the process is gone.
    assert wait_for(lambda: port_is_free("127.0.0.1", farm.port), deadline - time.monotonic())


def test_ctrl_c_stops_the_farm_cleanly(farm: RunningFarm) -> None:
    wait_for_worker_pool(farm)
    before = farm.children()
    farm.proc.send_signal(signal.SIGINT)
    assert farm.proc.wait(timeout=40) == 0, farm.output()[-4000:]
    assert farm.survivors(before) == {}
    assert list(farm.tmpdir.glob("nodefarm-*")) == []  # the private Redis data dir is removed
    assert wait_for(lambda: port_is_free("127.0.0.1", farm.port), 5)


def test_a_child_that_dies_stops_the_farm_with_an_error(farm: RunningFarm) -> None:
    before = farm.children()
    api = [pid for pid in before if b"api.cli.main\0api\0" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    assert len(api) == 1
    os.kill(api[0], signal.SIGKILL)
    assert farm.proc.wait(timeout=40) == 1
    assert f"api (pid {api[0]}) exited unexpectedly" in farm.output()
    assert farm.survivors(before) == {}


def test_a_worker_that_dies_is_restarted_and_the_farm_keeps_serving(farm: RunningFarm) -> None:
    import json
    import urllib.request

    wait_for_worker_pool(farm)
    before = farm.children()
    workers = [pid for pid in before if b"api.cli.main\0worker\0" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    main = [pid for pid in workers if before[pid].ppid not in workers]  # not its pool child
    assert len(main) == 1
    os.kill(main[0], signal.SIGKILL)
    assert wait_for(lambda: "w0 restarted" in farm.output(), timeout=30), farm.output()[-2000:]
    assert "restarting it in 1 s (restart 1)" in farm.output()
    assert farm.proc.poll() is None  # the farm did not stop

    def restarted_beat() -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{farm.port}/system_stats", timeout=5) as res:
            return any(d.get("restarts") == 1 for d in json.loads(res.read())["devices"])

    assert wait_for(restarted_beat, timeout=40)
    prompt = {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
              "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "after_restart"}}}
    req = urllib.request.Request(f"http://127.0.0.1:{farm.port}/prompt", data=json.dumps({"prompt": prompt}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as res:
        pid = json.loads(res.read())["prompt_id"]

    def finished() -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{farm.port}/history/{pid}", timeout=5) as res:
            entry = json.loads(res.read()).get(pid)
        return bool(entry) and entry["status"]["status_str"] == "success"

    assert wait_for(finished, timeout=60)
