"""Test harness: a real farm on free ports — two redis-servers, the API and Celery workers, each a
separate process with its own folders (no shared filesystem between API and workers)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
import websocket

ROOT = Path(__file__).resolve().parents[1]
TEST_NODES = ROOT / "tests" / "custom_nodes"
# the ComfyUI of the real-ComfyUI tier (tests/comfyui): ComfyUI 0.3.64 beside the project in CI
COMFYUI = Path(os.environ.get("NODEFARM_TEST_COMFYUI") or ROOT.parent / "shared" / "comfyui").resolve()


def comfyui_missing() -> str | None:
    """Why the real-ComfyUI tier cannot run here, or None."""
    if not (COMFYUI / "nodes.py").is_file():
        return f"real-ComfyUI tier skipped: no ComfyUI at {COMFYUI} (set NODEFARM_TEST_COMFYUI)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require_redis() -> str:
    path = shutil.which("redis-server")
    if path is None:
        pytest.fail("redis-server is not installed; install it with `apt-get install redis-server`")
    return path


class RedisServer:
    def __init__(self, workdir: Path, *args: str) -> None:
        self.port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir, self.args = workdir, args
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._start()

    def kill_and_restart(self, down_s: float) -> None:
        """SIGKILL it, stay down ``down_s``, start it again on the same port and folder: with
        ``appendonly yes`` (:data:`AOF`) it loads its append-only file, less the last second or so."""
        self.proc.kill()
        self.proc.wait(10)
        time.sleep(down_s)
        self._start()

    def shutdown_and_restart(self, down_s: float) -> None:
        """A clean SIGTERM (Redis SHUTDOWN: the append-only file is flushed), then the same start."""
        self.stop()
        time.sleep(down_s)
        self._start()

    def restart(self, down_s: float) -> None:
        """Stop it (its data is gone: no persistence), stay down ``down_s``, start it on the same port."""
        self.stop()
        time.sleep(down_s)
        self._start()

    def _start(self) -> None:
        self.proc = subprocess.Popen(
            [require_redis(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.workdir),
             "--save", "", "--appendonly", "no", *self.args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# RedisServer(..., *AOF): the state Redis as production runs it (DESIGN section 4)
AOF = ("--appendonly", "yes", "--appendfsync", "everysec")

@contextmanager
def functions_redis(workdir: Path) -> Iterator[redis.Redis]:
    """A private redis-server with the farm's Redis Functions loaded: the Redis side alone, no workers."""
    from worker import functions

    server = RedisServer(workdir)
    client = redis.Redis.from_url(server.url)
    functions.load(client)
    try:
        yield client
    finally:
        server.stop()


API_CMD = "from nodes.settings import Settings; from api.cli.server import serve; serve(Settings.from_env())"
WORKER_CMD = "from nodes.settings import Settings; from worker.main import run_worker; run_worker(Settings.from_env(), None, 1, 'prefork')"


class Farm:
    def __init__(self, tmp: Path, workers: int = 2, env: dict[str, str] | None = None, token: str | None = None,
                 aof: bool = False) -> None:
        self.tmp = tmp
        # a farm with tokens (NODEFARM_AUTH_TOKEN_FILE in env): the token post/submit/wait/image send
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.state = RedisServer(tmp / "redis-state", *(AOF if aof else ()))
        self.results = RedisServer(tmp / "redis-results", "--maxmemory", "512mb", "--maxmemory-policy", "allkeys-lru")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env_extra = env or {}
        self.procs: dict[str, subprocess.Popen] = {}
        self.r = redis.Redis.from_url(self.state.url)
        self.marks = tmp / "marks"
        self.marks.mkdir(parents=True, exist_ok=True)
        self.start_api()
        for i in range(workers):
            self.start_worker(i)
        self.wait_workers(workers)

    def env(self, base: Path, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            NODEFARM_REDIS_URL=self.state.url,
            NODEFARM_RESULT_REDIS_URL=self.results.url,
            NODEFARM_PORT=str(self.port),
            NODEFARM_BASE_DIR=str(base),
            NODEFARM_CUSTOM_NODES=str(TEST_NODES),
            NODEFARM_HEARTBEAT="0.5",
            NODEFARM_TEST_MARKS=str(self.marks),
            NODEFARM_LOG_LEVEL="WARNING",
            PYTHONUNBUFFERED="1",
        )
        env.update(self.env_extra)
        env.update(extra)
        return env

    def _spawn(self, name: str, code: str, env: dict[str, str]) -> None:
        log = open(self.tmp / f"{name}.log", "ab")
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-c", code], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def start_api(self) -> None:
        self.api_dir = self.tmp / "api"
        self._spawn("api", API_CMD, self.env(self.api_dir))
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if requests.get(self.url + "/system_stats", timeout=1, headers=self.headers).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if self.procs["api"].poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError("API did not start:\n" + self.log("api"))

    def start_worker(self, i: int) -> None:
        self._spawn(f"w{i}", WORKER_CMD, self.env(self.tmp / f"w{i}", NODEFARM_WORKER_NAME=f"w{i}@test"))

    def wait_workers(self, n: int, timeout: float = 90) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if len(self.r.zrange("nf:workers", 0, -1)) >= n:
                time.sleep(1.0)  # let the consumers attach to their queues
                return
            time.sleep(0.2)
        raise RuntimeError("workers did not start:\n" + "\n".join(self.log(n) for n in self.procs if n != "api"))

    def log(self, name: str) -> str:
        path = self.tmp / f"{name}.log"
        return path.read_text(errors="replace")[-5000:] if path.exists() else ""

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        os.killpg(self.procs[name].pid, sig)
        self.procs[name].wait(10)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for proc in self.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        self.state.stop()
        self.results.stop()

    # ---- client side --------------------------------------------------------------------------
    def post(self, prompt: dict, **body: Any) -> requests.Response:
        return requests.post(self.url + "/prompt", json={"prompt": prompt, **body}, timeout=30, headers=self.headers)

    def submit(self, prompt: dict, **body: Any) -> str:
        res = self.post(prompt, **body)
        assert res.status_code == 200, res.text
        return str(res.json()["prompt_id"])

    def wait(self, pid: str, timeout: float = 60) -> dict:
        deadline = time.time() + timeout
        while time.time() < deadline:
            entry = requests.get(f"{self.url}/history/{pid}", timeout=5, headers=self.headers).json()
            if pid in entry:
                return dict(entry[pid])
            time.sleep(0.1)
        raise AssertionError(f"run {pid} did not finish; logs:\n" + "\n".join(self.log(n) for n in self.procs))

    def run(self, prompt: dict, timeout: float = 60, **body: Any) -> dict:
        return self.wait(self.submit(prompt, **body), timeout)

    def image(self, info: dict) -> bytes:
        res = requests.get(self.url + "/view", params=info, timeout=10, headers=self.headers)
        assert res.status_code == 200, res.text
        return res.content


class WsClient:
    """A ComfyUI /ws client that records every message."""

    def __init__(self, url: str, client_id: str | None = None, token: str | None = None) -> None:
        self.client_id = client_id or uuid.uuid4().hex
        header = [f"Authorization: Bearer {token}"] if token else None
        self.ws = websocket.create_connection(url.replace("http", "ws") + f"/ws?clientId={self.client_id}", timeout=30,
                                              header=header)
        self.messages: list[Any] = []

    def until(self, predicate: Any, timeout: float = 60) -> list[Any]:
        deadline = time.time() + timeout
        while time.time() < deadline:
            self.ws.settimeout(max(0.1, deadline - time.time()))
            raw = self.ws.recv()
            msg = json.loads(raw) if isinstance(raw, str) else raw
            self.messages.append(msg)
            if predicate(msg):
                return self.messages
        raise AssertionError(f"timed out; got {self.messages}")

    def until_done(self, pid: str, timeout: float = 60) -> list[dict]:
        self.until(
            lambda m: isinstance(m, dict) and m["type"] == "executing" and m["data"].get("node") is None
            and m["data"].get("prompt_id") == pid,
            timeout,
        )
        return [m for m in self.messages if isinstance(m, dict) and m.get("data", {}).get("prompt_id") in (pid, None)]

    def close(self) -> None:
        self.ws.close()


# ---- reading what a run produced (shared by the integration tests) ---------------------------------


def executing(messages: list[dict]) -> list[str]:
    """Node ids of the ``executing`` frames, in order (the final ``node: null`` left out)."""
    return [m["data"]["node"] for m in messages if m["type"] == "executing" and m["data"]["node"] is not None]


def frames(messages: list[dict], kind: str) -> list[dict]:
    return [m["data"] for m in messages if m["type"] == kind]


def marks(farm: Farm, tag: str) -> list[str]:
    """Lines a test node wrote to its mark file (one per execution)."""
    path = farm.marks / tag
    return path.read_text().splitlines() if path.exists() else []


def texts(entry: dict, node: str) -> list[str]:
    return list(entry["outputs"][node]["text"])


def assert_success(entry: dict) -> None:
    assert entry["status"]["status_str"] == "success", entry["status"]
    assert entry["status"]["completed"] is True


def run_ws(farm: Farm, prompt: dict, **body: Any) -> tuple[str, list[dict], dict]:
    """Submit with a fresh websocket client; return (prompt id, its messages, its history entry)."""
    ws = WsClient(farm.url)
    try:
        pid = farm.submit(prompt, client_id=ws.client_id, **body)
        messages = ws.until_done(pid)
    finally:
        ws.close()
    return pid, messages, farm.wait(pid)
