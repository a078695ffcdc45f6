"""Process supervision for ``nodefarm up``: private Redis servers, the API and N workers in one terminal.

Every child runs in its own session (so Ctrl-C reaches only the supervisor, which then stops the
farm in order) and gets ``PR_SET_PDEATHSIG(SIGKILL)``, so a supervisor killed with SIGKILL takes its
children with it and no orphan keeps the port. Each child's output is relayed line by line with a
short prefix (``api | ...``). A worker that exits on its own is started again, after a back-off that
doubles with each quick death (1 s up to 60 s; reset once it has run a minute), and the new process
reports how often it was restarted in its heartbeat (``/system_stats``); its in-flight nodes are
re-sent when it starts (:func:`worker.heartbeat.restarted`). The API or a Redis server that exits
stops the whole farm with exit code 1. ``nodefarm worker --gpus`` runs the same supervisor with
workers only (``FarmPlan.api`` False), one per GPU, named and pinned by :mod:`api.cli.gpus`.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO

PR_SET_PDEATHSIG = 1
STOP_GRACE_S = 10.0
REDIS_START_TIMEOUT_S = 20.0
REDIS_INSTALL_HINT = (
    "redis-server was not found on PATH. nodefarm up starts two private Redis servers; install one with\n"
    "    sudo apt-get install redis-server      (Debian/Ubuntu; `brew install redis` on macOS)\n"
    "or point the farm at a running Redis with --redis-url redis://HOST:6379/0 (or NODEFARM_REDIS_URL)."
)
# Broker + run state: nothing may be evicted and little may be lost (DESIGN.md §4).
BROKER_REDIS_ARGS = ("--appendonly", "yes", "--appendfsync", "everysec", "--maxmemory-policy", "noeviction")
# Result store: a cache; least recently used results go first, nothing is persisted.
RESULT_REDIS_ARGS = ("--save", "", "--appendonly", "no", "--maxmemory", "2gb", "--maxmemory-policy", "allkeys-lru")
# Where `api` and `api.cli.main` live, so children find them whatever their working directory.
PROJECT_ROOT = Path(__file__).resolve().parents[2]


class SupervisorError(Exception):
    """The farm could not be started (missing redis-server, busy port, a child that died at start)."""


@dataclass(frozen=True)
class FarmPlan:
    """What ``nodefarm up`` runs; built by the CLI from ComfyUI-style flags."""

    env: dict[str, str]  # NODEFARM_* variables for every child
    host: str
    port: int
    workers: int
    redis_url: str | None = None  # None: start the two private redis-servers
    gpus: tuple[str, ...] = ()  # CUDA_VISIBLE_DEVICES values, dealt round-robin to the workers
    names: tuple[str, ...] = ()  # worker i's name before "@host" (default w<i>); --gpus: gpu<N> (api/cli/gpus.py)
    api: bool = True  # False: workers only (`nodefarm worker --gpus`), joined to redis_url; no API, no Redis
    worker_args: tuple[str, ...] = ()  # appended to each worker's `nodefarm worker` command line

    def worker_name(self, index: int) -> str:
        return self.names[index] if index < len(self.names) else f"w{index}"


class Output:
    """Writes lines from many threads to one stream, each prefixed with its source's name."""

    COLORS = ("36", "33", "32", "35", "34", "31")

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout
        self.lock = threading.Lock()
        self.color = self.stream.isatty() and not os.environ.get("NO_COLOR")
        self.width = 8

    def line(self, name: str, text: str) -> None:
        prefix = f"{name:<{self.width}}|"
        if self.color:
            code = self.COLORS[sum(map(ord, name)) % len(self.COLORS)]
            prefix = f"\033[{code}m{prefix}\033[0m"
        with self.lock:
            try:
                self.stream.write(f"{prefix} {text}\n")
                self.stream.flush()
            except (OSError, ValueError):  # our stdout is gone: keep draining the children's pipes
                pass


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_is_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def probe_host(host: str) -> str:
    """The address a local client uses to reach a server bound to ``host``."""
    return {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)


def can_connect(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def redis_ping(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def pdeathsig_preexec() -> Callable[[], None]:
    """A preexec_fn that makes the child die with SIGKILL when this process dies (Linux only)."""
    if not sys.platform.startswith("linux"):
        return lambda: None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved here: the forked child only calls it
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


RESTART_BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 60.0)
STABLE_AFTER_S = 60.0  # a worker that ran this long starts its back-off from the beginning again


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    reader: threading.Thread | None = None
    argv: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    restarts: int = 0  # how often this child was started again after dying
    quick_deaths: int = 0  # deaths in a row within STABLE_AFTER_S of a start
    due: float | None = None  # when a dead worker is started again

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def send(self, signum: int, group: bool = False) -> None:
        try:
            if group:
                os.killpg(self.proc.pid, signum)  # its own session: pgid == pid, grandchildren too
            elif self.alive():
                self.proc.send_signal(signum)
        except (ProcessLookupError, PermissionError):
            pass


def spawn(name: str, argv: Sequence[str], env: dict[str, str], out: Output) -> Child:
    proc = subprocess.Popen(
        list(argv),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=pdeathsig_preexec(),
    )
    child = Child(name, proc, argv=tuple(argv), env=dict(env))
    child.reader = threading.Thread(target=_relay, args=(child, out), name=f"relay-{name}", daemon=True)
    child.reader.start()
    return child


def _relay(child: Child, out: Output) -> None:
    stream = child.proc.stdout
    assert stream is not None
    with stream:
        for raw in iter(stream.readline, b""):
            out.line(child.name, raw.decode("utf-8", "replace").rstrip("\r\n"))


def start_redis(name: str, workdir: Path, role_args: Sequence[str], out: Output, stop: threading.Event) -> tuple[Child, int]:
    """Start one private redis-server on a free port and wait until it answers PING."""
    workdir.mkdir(parents=True, exist_ok=True)
    for _attempt in range(3):  # the free port may be taken between probe and bind
        port = free_port()
        argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir),
                "--daemonize", "no", "--loglevel", "warning", *role_args]
        child = spawn(name, argv, dict(os.environ), out)
        deadline = time.monotonic() + REDIS_START_TIMEOUT_S
        while child.alive() and not stop.is_set() and time.monotonic() < deadline:
            if redis_ping(port):
                return child, port
            time.sleep(0.05)
        if child.alive():
            child.send(signal.SIGKILL)
            child.proc.wait()
            if not stop.is_set():
                raise SupervisorError(f"{name}: redis-server did not answer PING within {REDIS_START_TIMEOUT_S:.0f} s")
        if stop.is_set():
            raise SupervisorError("interrupted while starting Redis")
    raise SupervisorError(f"{name}: redis-server exited at start (code {child.proc.returncode}); see its output above")


def cuda_devices() -> tuple[str, ...]:
    """The GPUs a worker may be pinned to, without initialising CUDA in this process.

    An inherited CUDA_VISIBLE_DEVICES wins; else ``nvidia-smi -L`` (MIG slices by UUID); else, when
    NVIDIA device nodes exist but nvidia-smi does not, torch is asked in a throwaway subprocess.
    """
    inherited = os.environ.get("CUDA_VISIBLE_DEVICES")
    if inherited is not None:
        return tuple(d.strip() for d in inherited.split(",") if d.strip() and d.strip() != "-1")
    if shutil.which("nvidia-smi"):
        try:
            listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout
        except (OSError, subprocess.SubprocessError):
            return ()
        return parse_nvidia_smi(listing)
    if Path("/dev/nvidia0").exists():
        probe = "import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)"
        try:
            done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
            return tuple(str(i) for i in range(int(done.stdout.strip() or 0)))
        except (OSError, ValueError, subprocess.SubprocessError):
            return ()
    return ()


def parse_nvidia_smi(listing: str) -> tuple[str, ...]:
    """``nvidia-smi -L`` -> device ids: the GPU index, or its MIG devices' UUIDs when it is partitioned."""
    gpus: list[tuple[str, list[str]]] = []
    for raw in listing.splitlines():
        text = raw.strip()
        if text.startswith("GPU ") and ":" in text:
            gpus.append((text[4:text.index(":")].strip(), []))
        elif text.startswith("MIG ") and gpus and "(UUID: " in text:
            gpus[-1][1].append(text.split("(UUID: ", 1)[1].rstrip(")").strip())
    return tuple(dev for index, migs in gpus for dev in (migs or [index]))


def worker_env(plan: FarmPlan, env: dict[str, str], index: int, host: str) -> dict[str, str]:
    """The environment of worker ``index``: its name, its GPU (round-robin over ``plan.gpus``) and
    NODEFARM_HOST_WORKERS, how many worker processes this supervisor starts on this host (they share its cores)."""
    out = {**env, "NODEFARM_WORKER_NAME": f"{plan.worker_name(index)}@{host}", "NODEFARM_HOST_WORKERS": str(plan.workers)}
    if plan.gpus:
        out["CUDA_VISIBLE_DEVICES"] = plan.gpus[index % len(plan.gpus)]
    return out


@dataclass
class Farm:
    """Runs a :class:`FarmPlan` in the foreground until a signal or a child's death."""

    plan: FarmPlan
    out: Output = field(default_factory=Output)
    stop: threading.Event = field(default_factory=threading.Event)
    hurry: threading.Event = field(default_factory=threading.Event)
    redis: list[Child] = field(default_factory=list)
    apps: list[Child] = field(default_factory=list)
    tmpdir: Path | None = None

    def say(self, text: str) -> None:
        for line in text.splitlines():
            self.out.line("nodefarm", line)

    def run(self) -> int:
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        try:
            try:
                self._start()
            except SupervisorError as exc:
                if not self.stop.is_set():
                    self.say(f"error: {exc}")
                    return 1
                return 0
            return self._watch()
        finally:
            self._shutdown()
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.stop.is_set():
            self.hurry.set()  # second Ctrl-C: kill now
        self.stop.set()

    def _start(self) -> None:
        plan = self.plan
        if not plan.api and plan.redis_url is None:
            raise SupervisorError("workers without an API need the farm's Redis: --redis-url URL or NODEFARM_REDIS_URL")
        if plan.redis_url is None and shutil.which("redis-server") is None:
            raise SupervisorError(REDIS_INSTALL_HINT)
        if plan.api and not port_is_free(plan.host, plan.port):
            raise SupervisorError(f"port {plan.port} on {plan.host} is in use (another ComfyUI or nodefarm?); pick one with --port")
        env = {**os.environ, **plan.env, "PYTHONUNBUFFERED": "1"}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p)
        if plan.redis_url is None:
            self.tmpdir = Path(tempfile.mkdtemp(prefix="nodefarm-"))
            child, port = start_redis("redis", self.tmpdir / "redis", BROKER_REDIS_ARGS, self.out, self.stop)
            self.redis.append(child)
            env["NODEFARM_REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
            child, port = start_redis("cache", self.tmpdir / "cache", RESULT_REDIS_ARGS, self.out, self.stop)
            self.redis.append(child)
            env["NODEFARM_RESULT_REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
            self.say(f"private Redis in {self.tmpdir}: state {env['NODEFARM_REDIS_URL']}, results {env['NODEFARM_RESULT_REDIS_URL']}")
        else:
            env["NODEFARM_REDIS_URL"] = plan.redis_url
        cli = [sys.executable, "-m", "api.cli.main"]
        if plan.api:
            env["NODEFARM_HOST"], env["NODEFARM_PORT"] = plan.host, str(plan.port)
            self.apps.append(spawn("api", [*cli, "api"], env, self.out))
        host = socket.gethostname()
        for i in range(plan.workers):
            self.apps.append(spawn(plan.worker_name(i), [*cli, "worker", *plan.worker_args],
                                   worker_env(plan, env, i, host), self.out))
        self._wait_until_up(env["NODEFARM_REDIS_URL"], [f"{plan.worker_name(i)}@{host}" for i in range(plan.workers)])

    def _wait_until_up(self, redis_url: str, workers: list[str]) -> None:
        """Until the API accepts connections and every worker has sent a heartbeat since we started."""
        import redis

        from worker import keys

        since, probe = time.time(), probe_host(self.plan.host)
        api_up, waiting = not self.plan.api, set(workers)
        try:
            client = redis.Redis.from_url(redis_url, socket_timeout=2.0)
        except ValueError as exc:
            raise SupervisorError(f"bad Redis URL {redis_url!r}: {exc}") from exc
        try:
            while not self.stop.is_set() and self._dead_child() is None:
                api_up = api_up or can_connect(probe, self.plan.port)
                if waiting:
                    try:
                        beats = client.zmscore(keys.WORKERS, sorted(waiting))
                    except redis.RedisError:
                        beats = []
                    waiting -= {name for name, beat in zip(sorted(waiting), beats, strict=False) if beat and beat >= since}
                if api_up and not waiting and not self.plan.api:
                    self.say(f"{len(workers)} workers joined the farm: {', '.join(workers)}")
                    return
                if api_up and not waiting:
                    shown = f"[{probe}]" if ":" in probe else probe
                    self.say(f"nodefarm is up: http://{shown}:{self.plan.port}/ ({len(workers)} workers)")
                    return
                self.stop.wait(0.1)
        finally:
            client.close()
        dead = self._dead_child()
        if dead is not None and not self.stop.is_set():  # a worker too: one that cannot start is not restarted
            raise SupervisorError(f"{dead.name} exited while the farm was starting (code {dead.proc.returncode}); "
                                  "see its output above")

    def _dead_child(self, *, workers: bool = True) -> Child | None:
        """A dead child (``workers=False``: only one the farm cannot do without, Redis or the API)."""
        return next((c for c in (*self.redis, *self.apps) if not c.alive() and (workers or not self._is_worker(c))), None)

    def _watch(self) -> int:
        while not self.stop.is_set():
            dead = self._dead_child(workers=False)
            if dead is not None:
                self.say(f"error: {dead.name} (pid {dead.pid}) exited unexpectedly with code {dead.proc.returncode}; stopping the farm")
                return 1
            for child in list(self.apps):
                if self._is_worker(child) and not child.alive():
                    self._restart_later(child)
            self.stop.wait(0.2)
        return 0

    def _is_worker(self, child: Child) -> bool:
        return child in self.apps and child.name != "api"

    def _restart_later(self, child: Child) -> None:
        """A worker died: schedule its restart (back-off), then start it when due."""
        now = time.monotonic()
        if child.due is None:
            lived = now - child.started
            child.quick_deaths = 0 if lived >= STABLE_AFTER_S else child.quick_deaths + 1
            wait = RESTART_BACKOFF_S[min(max(child.quick_deaths - 1, 0), len(RESTART_BACKOFF_S) - 1)]
            child.due = now + wait
            self.say(f"{child.name} (pid {child.pid}) exited unexpectedly with code {child.proc.returncode} after "
                     f"{lived:.0f} s; restarting it in {wait:.0f} s (restart {child.restarts + 1})")
            return
        if now < child.due:
            return
        env = {**child.env, "NODEFARM_RESTARTS": str(child.restarts + 1)}
        fresh = spawn(child.name, child.argv, env, self.out)
        fresh.restarts, fresh.quick_deaths = child.restarts + 1, child.quick_deaths
        self.apps[self.apps.index(child)] = fresh
        self.say(f"{child.name} restarted (pid {fresh.pid}, restart {fresh.restarts})")

    def _shutdown(self) -> None:
        self.stop.set()
        if any(c.alive() for c in (*self.apps, *self.redis)):
            self.say("stopping")
        # Workers and API first (they may still talk to Redis), then Redis, which flushes its AOF on SIGTERM.
        for group in (self.apps, self.redis):
            for child in group:
                child.send(signal.SIGTERM)
            deadline = time.monotonic() + STOP_GRACE_S
            while any(c.alive() for c in group) and time.monotonic() < deadline and not self.hurry.is_set():
                time.sleep(0.05)
            for child in group:
                if child.alive():
                    self.say(f"{child.name} did not stop in {STOP_GRACE_S:.0f} s; killing it")
                child.send(signal.SIGKILL, group=True)
                child.proc.wait()
        for child in (*self.apps, *self.redis):
            if child.reader is not None:
                child.reader.join(timeout=2.0)
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)


def run_farm(plan: FarmPlan, out: Output | None = None) -> int:
    """Start the farm described by ``plan`` and block until it stops. Returns the exit code."""
    return Farm(plan, out or Output()).run()
