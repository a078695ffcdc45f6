"""Hosts without a shared filesystem, for real: one network namespace per host, joined by a bridge.

tests/farm.py runs every process on 127.0.0.1, so nothing there proves that the farm works across
machines: a worker that quietly read a file on the API host, or dialled 127.0.0.1, would pass. Here
each host is its own network namespace (``ip netns``) with its own address and its own base
directory, and the only way between hosts is the network:

    root namespace (the test client)       10.77.N.254  bridge nfbr<id>
      ├─ veth ── nf-<id>-redis   10.77.N.1   state + result redis-servers
      ├─ veth ── nf-<id>-api     10.77.N.2   the API
      ├─ veth ── nf-<id>-w0      10.77.N.3   worker w0@hostA
      └─ veth ── nf-<id>-w1      10.77.N.4   worker w1@hostB

Cutting a host's link is ``ip link set <its veth> down`` on the bridge side: its packets go
nowhere and its TCP connections hang, as when a cable is pulled (no reset, no clean close).
Every name carries a random id, so parallel or leftover runs never collide, and
:meth:`Network.teardown` removes processes, namespaces, veths and the bridge even after a failure.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
import requests

from tests.farm import API_CMD, ROOT, TEST_NODES, WORKER_CMD
from worker import keys

REDIS_STATE_PORT = 7101  # each host has its own namespace: these ports are free there, whatever the machine runs
REDIS_RESULT_PORT = 7102
API_PORT = 8188


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=check)


def unavailable() -> str | None:
    """Why namespaces cannot be used here (one line for pytest.skip), or None."""
    if os.geteuid() != 0:
        return "netns tier skipped: needs root for ip netns (CI runs it as root)"
    if shutil.which("ip") is None:
        return "netns tier skipped: no `ip` command (install iproute2)"
    if shutil.which("redis-server") is None:
        return "netns tier skipped: no redis-server"
    probe = f"nf-probe-{secrets.token_hex(3)}"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"netns tier skipped: `ip netns add` failed: {made.stderr.strip() or made.returncode}"
    _ip("netns", "del", probe, check=False)
    return None


@dataclass
class Host:
    name: str  # redis, api, w0, w1
    ns: str  # the namespace
    ip: str
    veth: str  # its link's end on the bridge (root namespace): cut it there


class Network:
    """A bridge in the root namespace and one namespace per host, each with a veth into it."""

    def __init__(self) -> None:
        self.id = secrets.token_hex(3)
        self.bridge = f"nfbr{self.id}"
        self.subnet = self._free_subnet()
        self.hosts: dict[str, Host] = {}
        self.procs: list[subprocess.Popen[bytes]] = []
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.subnet}.254/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")

    @staticmethod
    def _free_subnet() -> str:
        """A 10.77.N.0/24 no interface of this machine uses (a leftover or parallel run keeps its own)."""
        used = set(re.findall(r"inet 10\.77\.(\d+)\.", _ip("-4", "-o", "addr").stdout))
        free = [n for n in range(256) if str(n) not in used]
        if not free:
            raise RuntimeError("no free 10.77.N.0/24 subnet")
        return f"10.77.{secrets.choice(free)}"

    def add_host(self, name: str) -> Host:
        n = len(self.hosts) + 1
        host = Host(name=name, ns=f"nf-{self.id}-{name}", ip=f"{self.subnet}.{n}", veth=f"nfv{self.id}{n}")
        peer = f"nfp{self.id}{n}"
        _ip("netns", "add", host.ns)
        self.hosts[name] = host
        _ip("link", "add", host.veth, "type", "veth", "peer", "name", peer)
        _ip("link", "set", peer, "netns", host.ns)
        _ip("link", "set", host.veth, "master", self.bridge, "up")
        _ip("-n", host.ns, "link", "set", peer, "name", "eth0")
        _ip("-n", host.ns, "addr", "add", f"{host.ip}/24", "dev", "eth0")
        _ip("-n", host.ns, "link", "set", "eth0", "up")
        _ip("-n", host.ns, "link", "set", "lo", "up")
        return host

    def cut(self, name: str) -> None:
        """Pull the host's cable: its veth goes down on the bridge side."""
        _ip("link", "set", self.hosts[name].veth, "down")

    def restore(self, name: str) -> None:
        _ip("link", "set", self.hosts[name].veth, "up")

    def spawn(self, host: Host, argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        """Start ``argv`` on ``host`` (inside its namespace), output to ``log``, in its own process group."""
        with open(log, "ab") as out:
            proc = subprocess.Popen(["ip", "netns", "exec", host.ns, *argv], cwd=ROOT, env=env, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(proc)
        return proc

    def teardown(self) -> None:
        """Stop every process started here, then remove the namespaces, their veths and the bridge."""
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(5)
        for host in self.hosts.values():
            # anything still inside our own namespace was started by us (a pool child that left its group)
            for pid in _ip("netns", "pids", host.ns, check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            _ip("netns", "del", host.ns, check=False)  # its eth0 goes with it, and so does the veth's other end
            _ip("link", "del", host.veth, check=False)
        _ip("link", "del", self.bridge, check=False)


class NetnsFarm:
    """A farm of four hosts: Redis, API, and workers w0@hostA and w1@hostB, each with its own base
    directory under ``tmp`` and nothing shared but the network."""

    WORKERS = {"w0": "w0@hostA", "w1": "w1@hostB"}

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.net = Network()
        try:
            self._start()
        except BaseException:
            self.net.teardown()
            raise

    def _start(self) -> None:
        net = self.net
        self.redis_host = net.add_host("redis")
        self.api_host = net.add_host("api")
        self.worker_hosts = {w: net.add_host(w) for w in self.WORKERS}
        self.state_url = f"redis://{self.redis_host.ip}:{REDIS_STATE_PORT}/0"
        self.result_url = f"redis://{self.redis_host.ip}:{REDIS_RESULT_PORT}/0"
        self.url = f"http://{self.api_host.ip}:{API_PORT}"
        self.base = {name: self.tmp / name for name in ("redis", "api", *self.WORKERS)}
        for path in self.base.values():
            path.mkdir(parents=True, exist_ok=True)
        self._redis(REDIS_STATE_PORT, "state")
        self._redis(REDIS_RESULT_PORT, "results", "--maxmemory", "512mb", "--maxmemory-policy", "allkeys-lru")
        self.r = redis.Redis.from_url(self.state_url, socket_timeout=10)
        self._wait_redis(self.r)
        self._wait_redis(redis.Redis.from_url(self.result_url, socket_timeout=10))
        net.spawn(self.api_host, [sys.executable, "-c", API_CMD], self.env("api", NODEFARM_HOST=self.api_host.ip),
                  self.tmp / "api.log")
        self._wait_api()
        for w in self.WORKERS:
            net.spawn(self.worker_hosts[w], [sys.executable, "-c", WORKER_CMD],
                      self.env(w, NODEFARM_WORKER_NAME=self.WORKERS[w]), self.tmp / f"{w}.log")
        self.wait_workers(set(self.WORKERS.values()))

    def _redis(self, port: int, name: str, *args: str) -> None:
        folder = self.base["redis"] / name
        folder.mkdir(exist_ok=True)
        argv = [str(shutil.which("redis-server")), "--port", str(port), "--bind", self.redis_host.ip,
                "--protected-mode", "no", "--dir", str(folder), "--save", "", "--appendonly", "no", *args]
        self.net.spawn(self.redis_host, argv, dict(os.environ), self.tmp / f"redis-{name}.log")

    @staticmethod
    def _wait_redis(client: redis.Redis, timeout: float = 20) -> None:
        deadline = time.time() + timeout
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)

    def env(self, host: str, **extra: str) -> dict[str, str]:
        """A host's environment: Farm.env's settings, with addresses on the bridge and its own base
        directory (no NODEFARM_TEST_MARKS: that would be a shared folder)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("NODEFARM_")}
        env.update(
            NODEFARM_REDIS_URL=self.state_url,
            NODEFARM_RESULT_REDIS_URL=self.result_url,
            NODEFARM_PORT=str(API_PORT),
            NODEFARM_API_URL=self.url,
            NODEFARM_BASE_DIR=str(self.base[host]),
            NODEFARM_CUSTOM_NODES=str(TEST_NODES),
            NODEFARM_HEARTBEAT="0.5",
            NODEFARM_LOG_LEVEL="WARNING",
            PYTHONUNBUFFERED="1",
        )
        env.update(extra)
        return env

    def _wait_api(self, timeout: float = 60) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if requests.get(self.url + "/system_stats", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError("API did not start:\n" + self.log("api"))

    def live_workers(self) -> set[str]:
        return {n.decode() for n in self.r.zrange(keys.WORKERS, 0, -1)}

    def wait_workers(self, names: set[str], timeout: float = 90) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if names <= self.live_workers():
                time.sleep(1.0)  # let the consumers attach to their queues
                return
            time.sleep(0.2)
        raise RuntimeError("workers did not start:\n" + "\n".join(self.log(w) for w in self.WORKERS))

    def log(self, name: str) -> str:
        path = self.tmp / f"{name}.log"
        return f"--- {name}.log\n" + (path.read_text(errors="replace")[-5000:] if path.exists() else "")

    def logs(self) -> str:
        return "\n".join(self.log(n) for n in ("api", *self.WORKERS))

    def stop(self) -> None:
        self.net.teardown()

    # ---- client side (the root namespace, through the bridge) -------------------------------------
    def submit(self, prompt: dict[str, Any]) -> str:
        res = requests.post(self.url + "/prompt", json={"prompt": prompt}, timeout=30)
        assert res.status_code == 200, res.text
        return str(res.json()["prompt_id"])

    def wait(self, pid: str, timeout: float = 90) -> dict[str, Any]:
        deadline = time.time() + timeout
        while time.time() < deadline:
            entry = requests.get(f"{self.url}/history/{pid}", timeout=10).json()
            if pid in entry:
                return dict(entry[pid])
            time.sleep(0.1)
        raise AssertionError(f"run {pid} did not finish in {timeout} s; logs:\n{self.logs()}")

    def made(self, pid: str) -> dict[str, str]:
        """Node id -> the worker that computed it, from the run's state on the Redis host (kept an
        hour after the run ends; a node taken from the cache has no entry)."""
        raw = self.r.hgetall(keys.run_part(pid, "made"))
        return {k.decode(): v.decode() for k, v in raw.items()}

    def running_on(self, worker: str) -> list[str]:
        """``"<pid> <nid>"`` of the nodes a worker has started and not finished (its running hash)."""
        return [k.decode() for k in self.r.hkeys(keys.worker_running(worker))]

    def system_stats_workers(self) -> set[str]:
        """Worker names in /system_stats devices (``"cpu (w0@hostA)"`` -> ``w0@hostA``)."""
        stats = requests.get(self.url + "/system_stats", timeout=10).json()
        return {d["name"].rsplit("(", 1)[1].rstrip(")") for d in stats["devices"] if "(" in d["name"]}
