"""Per-node overhead of the farm on a chain of 200 trivial nodes, against a bare Celery chain.

Both sides run in one process, on one state Redis, each with one ``prefork -c 1`` consumer:

* farm: ``tests.farm.Farm`` with one worker (then a second one added). The prompt is
  PrimitiveFloat -> 199 x MathOperation(add 1.0) -> TestFloatOutput (200 compute nodes + 1 output
  node). Timed from POST /prompt until its history entry exists (the Redis key GET /history reads,
  polled every 5 ms: a websocket client costs the farm and this 2-core box far more, so it gets its
  own row, timed to ``executing`` with ``node: null``).
* bare: ``bench/bare_chain.py``, a Celery app with the farm's settings whose task enqueues the next
  hop itself; its worker is started with the same ``celery worker`` flags as the farm's.

Each side: one warm-up, then REPS timed repetitions (a new seed each, so nothing is cached); the
median is reported, with the CPU each process used per node (from /proc). Then the last farm prompt
is resubmitted unchanged (fully cached). Prints the tables (also written to
bench/results/chain.txt); the target is reported, never asserted. Run: ``.venv/bin/python bench/chain.py``.
"""

from __future__ import annotations

import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import celery  # noqa: E402
import redis  # noqa: E402

from tests.farm import Farm, WsClient  # noqa: E402
from worker import keys  # noqa: E402

CHAIN = 200  # compute nodes of the farm prompt, hops of the bare chain
REPS = 3
TARGET = 1.5
BARE_QUEUE = "bench.bare"
RUN_TIMEOUT = 120.0
POLL_S = 0.005  # history poll interval: one Redis EXISTS (far cheaper for the farm than a GET /history)
BUDGET_S = 140.0  # optional rows are skipped past this (the whole bench must stay under 3 minutes)
RESULTS = ROOT / "bench" / "results" / "chain.txt"


# ---- farm side -----------------------------------------------------------------------------------


def chain_prompt(seed: float, length: int = CHAIN) -> dict[str, dict[str, Any]]:
    """PrimitiveFloat(seed) -> (length - 1) x MathOperation(+1.0) -> TestFloatOutput."""
    prompt: dict[str, dict[str, Any]] = {"0": {"class_type": "PrimitiveFloat", "inputs": {"value": seed}}}
    for i in range(1, length):
        prompt[str(i)] = {
            "class_type": "MathOperation",
            "inputs": {"a": [str(i - 1), 0], "b": 1.0, "operation": "add"},
        }
    prompt[str(length)] = {"class_type": "TestFloatOutput", "inputs": {"value": [str(length - 1), 0]}}
    return prompt


class FarmRun:
    """One timed farm run: total seconds, POST latency, nodes cached at admission, the shown value."""

    def __init__(self, total: float, post: float, cached: int, value: str | None) -> None:
        self.total = total
        self.post = post
        self.cached = cached
        self.value = value


def wait_history(farm: Farm, pid: str, timeout: float = RUN_TIMEOUT) -> None:
    """Poll the state Redis for the run's history entry (the key GET /history/<id> reads)."""
    key = keys.history_entry(pid)
    deadline = time.perf_counter() + timeout
    while not farm.r.exists(key):
        if time.perf_counter() > deadline:
            raise RuntimeError(f"farm run {pid} did not finish; logs:\n" + "\n".join(farm.log(n) for n in farm.procs))
        time.sleep(POLL_S)


def run_farm(farm: Farm, prompt: dict[str, dict[str, Any]], ws: WsClient | None = None) -> FarmRun:
    """POST the prompt, wait for its end (history entry, or ``executing`` null on ``ws``), check it."""
    t0 = time.perf_counter()
    if ws is None:
        res = farm.post(prompt)
    else:
        ws.messages = []
        res = farm.post(prompt, client_id=ws.client_id)
    t_post = time.perf_counter() - t0
    if res.status_code != 200:
        raise RuntimeError(f"POST /prompt failed: {res.status_code} {res.text[:500]}")
    pid = str(res.json()["prompt_id"])
    if ws is None:
        wait_history(farm, pid)
    else:
        ws.until_done(pid, RUN_TIMEOUT)
    total = time.perf_counter() - t0
    entry = farm.wait(pid, 10)
    status = entry.get("status", {})
    if not status.get("completed"):
        raise RuntimeError(f"farm run {pid} failed: {status}")
    cached = sum(len(data.get("nodes", [])) for name, data in status.get("messages", []) if name == "execution_cached")
    out = entry.get("outputs", {}).get(str(len(prompt) - 1), {})
    text = out.get("text") if isinstance(out, dict) else None
    return FarmRun(total, t_post, cached, text[0] if text else None)


def farm_series(farm: Farm, seeds: list[float], ws: WsClient | None = None, warm: bool = True) -> list[FarmRun]:
    """One warm-up (seeds[0], unless ``warm`` is False) then one timed run per remaining seed."""
    if warm:
        run_farm(farm, chain_prompt(seeds[0]), ws)
    return [check_uncached(run_farm(farm, chain_prompt(seed), ws), seed) for seed in seeds[1:]]


def check_uncached(run: FarmRun, seed: float) -> FarmRun:
    expected = repr(seed + (CHAIN - 1))
    if run.cached or run.value != expected:
        raise RuntimeError(f"uncached run was cached ({run.cached} nodes) or wrong ({run.value} != {expected})")
    return run


# ---- bare Celery side ----------------------------------------------------------------------------


class BareChain:
    """The bare Celery worker process (``bench/bare_chain.py``) and a driver for its chains."""

    def __init__(self, broker_url: str, logdir: Path) -> None:
        self.broker_url = broker_url
        env = dict(os.environ, BENCH_BROKER_URL=broker_url, BENCH_QUEUE=BARE_QUEUE, PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        self.log = logdir / "bare-worker.log"
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "bench.bare_chain", "worker", "-P", "prefork", "-c", "1",
                 "--without-gossip", "--without-mingle", "-Q", BARE_QUEUE, "-l", "WARNING"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        from bench import bare_chain

        self.mod = bare_chain
        self.app = bare_chain.app
        self.app.conf.broker_url = broker_url
        self.r = redis.Redis.from_url(broker_url)

    def run(self, hops: int = CHAIN, timeout: float = RUN_TIMEOUT) -> float:
        """Send step(1, hops) and wait for the last hop: seconds for ``hops`` tasks."""
        tag = uuid.uuid4().hex
        t0 = time.perf_counter()
        self.app.send_task("bench.step", args=[1, hops, tag], queue=BARE_QUEUE)
        got = self.r.blpop([self.mod.done_key(tag)], timeout=timeout)
        elapsed = time.perf_counter() - t0
        if got is None:
            raise RuntimeError("bare chain did not finish; worker log:\n" + self.log.read_text(errors="replace")[-3000:])
        return elapsed

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


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


# ---- report --------------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def environment(farm: Farm) -> str:
    redis_version = farm.r.info("server").get("redis_version", "?")
    return (f"{os.cpu_count()} cores, python {platform.python_version()}, celery {celery.__version__}, "
            f"redis-py {redis.__version__}, redis-server {redis_version}, {platform.platform()}")


def row(label: str, units: int, times: list[float], bare_per: float | None) -> str:
    med = statistics.median(times)
    per = med / units
    ratio = f"{per / bare_per:>7.2f}" if bare_per else f"{'':>7}"
    return f"{label:<36}{units:>6}{med:>10.3f}{per * 1000:>9.2f}{ratio}   " + " ".join(f"{t:.3f}" for t in times)


def main() -> int:
    started = time.perf_counter()
    lines: list[str] = []

    def out(line: str = "") -> None:
        print(line, flush=True)
        lines.append(line)

    def in_budget() -> bool:
        return time.perf_counter() - started < BUDGET_S

    nodes = len(chain_prompt(0.0))
    base = float(int(time.time()) % 100000) + 0.25
    seeds = [[base + 1000.0 * (REPS + 1) * k + 1000.0 * i for i in range(REPS + 1)] for k in range(3)]
    farm2: list[FarmRun] = []
    farm_ws: list[FarmRun] = []

    with tempfile.TemporaryDirectory(prefix="nf-bench-") as tmpdir:
        tmp = Path(tmpdir)
        farm: Farm | None = None
        bare: BareChain | None = None
        ws: WsClient | None = None
        try:
            farm = Farm(tmp, workers=1)
            bare = BareChain(farm.state.url, tmp)
            env_line = environment(farm)
            boot = time.perf_counter() - started

            # warm-ups (the bare one also waits for its worker to come up), then interleaved reps
            bare.run()
            run_farm(farm, chain_prompt(seeds[0][0]))
            bare_times: list[float] = []
            farm1: list[FarmRun] = []
            farm_cpu = CpuMeter({
                "worker": farm.procs["w0"].pid, "API": farm.procs["api"].pid, "state redis": farm.state.proc.pid,
                "result redis": farm.results.proc.pid, "driver": os.getpid(),
            })
            bare_cpu = CpuMeter({"worker": bare.proc.pid, "state redis": farm.state.proc.pid, "driver": os.getpid()})
            for seed in seeds[0][1:]:
                bare_cpu.start()
                bare_times.append(bare.run())
                bare_cpu.stop()
                farm_cpu.start()
                farm1.append(check_uncached(run_farm(farm, chain_prompt(seed)), seed))
                farm_cpu.stop()

            # the last uncached prompt again, unchanged: every node is cached at admission
            cached = [run_farm(farm, chain_prompt(seeds[0][-1])) for _ in range(REPS)]
            for c in cached:
                if c.cached != nodes:
                    raise RuntimeError(f"resubmission cached only {c.cached} of {nodes} nodes")

            if in_budget():  # the same runs with a websocket client attached (the browser's view)
                ws = WsClient(farm.url)
                farm_ws = farm_series(farm, seeds[1], ws, warm=False)
                ws.close()
                ws = None
            if in_budget():
                farm.start_worker(1)
                farm.wait_workers(2)
                farm2 = farm_series(farm, seeds[2])
        finally:
            if ws is not None:
                ws.close()
            if bare is not None:
                bare.stop()
            if farm is not None:
                farm.stop()

    bare_per = statistics.median(bare_times) / CHAIN
    f1 = [r.total for r in farm1]
    ratio = statistics.median(f1) / nodes / bare_per

    out(f"nodefarm bench/chain.py  ({time.strftime('%Y-%m-%d %H:%M:%S')})")
    out("environment: " + env_line)
    out(f"farm prompt: PrimitiveFloat -> {CHAIN - 1} x MathOperation(add) -> TestFloatOutput = {nodes} nodes "
        f"({CHAIN} compute + 1 output); bare chain: {CHAIN} self-enqueuing tasks. Both: one prefork -c 1 "
        f"consumer, same state Redis; 1 warm-up + {REPS} timed reps (median); farm timed from POST /prompt "
        "to its history entry, bare from send_task to the last hop's BLPOP.")
    out()
    out(f"{'side':<36}{'units':>6}{'median s':>10}{'ms/unit':>9}{'ratio':>7}   raw reps (s)")
    out(row("bare Celery chain", CHAIN, bare_times, bare_per))
    out(row("farm, 1 worker", nodes, f1, bare_per))
    if farm_ws:
        out(row("farm, 1 worker, ws client attached", nodes, [r.total for r in farm_ws], bare_per))
    else:
        out(f"{'farm, 1 worker, ws client attached':<36}  skipped (time budget)")
    if farm2:
        out(row("farm, 2 workers", nodes, [r.total for r in farm2], bare_per))
    else:
        out(f"{'farm, 2 workers':<36}  skipped (time budget)")
    out(f"target: farm (1 worker) ms/node <= {TARGET} x bare ms/hop; ratio {ratio:.2f}: "
        + ("MET" if ratio <= TARGET else "NOT MET"))
    out("POST /prompt latency, farm 1 worker (ms, included above): " + " ".join(ms(r.post) for r in farm1))
    out(f"CPU ms per hop, bare:           {bare_cpu.summary(CHAIN * REPS)}")
    out(f"CPU ms per node, farm 1 worker: {farm_cpu.summary(nodes * REPS)}")
    out()
    ct = [r.total for r in cached]
    out(f"{'farm, 1 worker, same prompt':<36}{'run':>6}{'median s':>10}{'ms/node':>9}{'x':>7}   raw reps (s)")
    out(f"{'uncached (new seed)':<36}{nodes:>6}{statistics.median(f1):>10.3f}"
        f"{statistics.median(f1) / nodes * 1000:>9.2f}{1.0:>7.3f}   " + " ".join(f"{t:.3f}" for t in f1))
    out(f"{'fully cached resubmission':<36}{nodes - cached[0].cached:>6}{statistics.median(ct):>10.3f}"
        f"{statistics.median(ct) / nodes * 1000:>9.2f}{statistics.median(ct) / statistics.median(f1):>7.3f}   "
        + " ".join(f"{t:.3f}" for t in ct))
    out(f"(resubmission: {cached[0].cached}/{nodes} nodes in execution_cached; POST ms: "
        + " ".join(ms(r.post) for r in cached) + ")")
    out(f"bench wall time: {time.perf_counter() - started:.1f} s (boot {boot:.1f} s)")

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print(f"(written to {RESULTS.relative_to(ROOT)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
