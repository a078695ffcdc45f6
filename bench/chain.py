"""The run engine's figures (issue 7, points 2), each against a baseline measured in the same run.

* **Per-node cost** of a chain PrimitiveFloat -> (n - 1) x MathOperation(add 1.0) -> TestFloatOutput,
  n = 100, 500 and 2,000, with one ``prefork -c 1`` worker, against a bare Celery chain of n
  self-enqueuing tasks (``bench/bare_chain.py``) on the same state Redis, with the same Celery settings
  and worker flags. Three farm rows per n: no client (timed from POST /prompt to the history entry,
  polled every 5 ms), a ``/ws`` client attached (the editor's protocol: progress as deltas, see
  ``api/live.py``; timed to ``executing`` null) and a Socket.IO client attached (likewise). Reps are
  interleaved with the bare chain's so drift hits both; medians.
* **Flatness**: ms/node at 2,000 against ms/node at 100.
* **Fully cached resubmission** of the 2,000-node chain: POST to history entry.
* **POST /prompt latency** of a new 1,000-node chain (answer time of the request).
* **Websocket bytes** of a 1,001-node fan-out run (PrimitiveFloat -> 1,000 x TestFloatOutput), as
  received by an editor-protocol client and by a plain ComfyUI client (full ``progress_state`` frames).

Prints the tables (also written to bench/results/chain.txt); targets are reported, never asserted.
Run: ``.venv/bin/python bench/chain.py`` (about 5 minutes on 2 cores).
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
import socketio  # noqa: E402
import websocket  # noqa: E402

from bench.common import RUN_TIMEOUT, CpuMeter, Report, environment, progress, wait_history  # noqa: E402
from tests.farm import Farm  # noqa: E402

LENGTHS = (100, 500, 2000)
REPS = 3  # rounds; each runs every length once, in these orders
ROUND_ORDER = ((100, 2000, 500), (2000, 500, 100), (500, 100, 2000))
TARGET = 1.5  # farm ms/node <= TARGET x bare ms/hop
FLAT = 0.10  # ms/node at 2,000 within 10 % of ms/node at 100
CACHED_TARGET_S = 0.150
POST_TARGET_S = 0.050
WS_BYTES_TARGET = 5 * 1024 * 1024
FANOUT = 1000
BARE_QUEUE = "bench.bare"


# ---- prompts ---------------------------------------------------------------------------------------


def chain_prompt(seed: float, length: int) -> dict[str, dict[str, Any]]:
    """PrimitiveFloat(seed) -> (length - 1) x MathOperation(+1.0) -> TestFloatOutput: length + 1 nodes."""
    prompt: dict[str, dict[str, Any]] = {"0": {"class_type": "PrimitiveFloat", "inputs": {"value": seed}}}
    for i in range(1, length):
        prompt[str(i)] = {"class_type": "MathOperation", "inputs": {"a": [str(i - 1), 0], "b": 1.0, "operation": "add"}}
    prompt[str(length)] = {"class_type": "TestFloatOutput", "inputs": {"value": [str(length - 1), 0]}}
    return prompt


def fanout_prompt(seed: float, width: int = FANOUT) -> dict[str, dict[str, Any]]:
    """PrimitiveFloat(seed) -> width x TestFloatOutput (each labelled, so none is identical)."""
    prompt: dict[str, dict[str, Any]] = {"src": {"class_type": "PrimitiveFloat", "inputs": {"value": seed}}}
    for i in range(width):
        prompt[f"o{i}"] = {"class_type": "TestFloatOutput", "inputs": {"value": ["src", 0], "label": str(i)}}
    return prompt


# ---- clients ----------------------------------------------------------------------------------------


class EditorWs:
    """A ``/ws`` client speaking the editor's protocol (progress as deltas), counting bytes received."""

    def __init__(self, url: str, deltas: bool = True) -> None:
        self.client_id = uuid.uuid4().hex
        self.ws = websocket.create_connection(url.replace("http", "ws") + f"/ws?clientId={self.client_id}", timeout=30)
        self.ws.send(json.dumps({"type": "feature_flags", "data": {"supports_preview_metadata": True}}))
        if deltas:
            self.ws.send(json.dumps({"type": "nodefarm.flags", "data": {"progress_delta": True}}))
        self.bytes = 0
        self.frames = 0

    def until_done(self, pid: str, timeout: float = RUN_TIMEOUT) -> None:
        deadline = time.time() + timeout
        end = json.dumps({"node": None, "prompt_id": pid}, separators=(",", ":"))
        while time.time() < deadline:
            self.ws.settimeout(max(0.1, deadline - time.time()))
            raw = self.ws.recv()
            self.frames += 1
            self.bytes += len(raw.encode() if isinstance(raw, str) else raw)
            if isinstance(raw, str) and '"executing"' in raw and end in raw.replace(" ", ""):
                return
        raise RuntimeError(f"run {pid} did not end on the websocket")

    def close(self) -> None:
        self.ws.close()


class SioClient:
    """A Socket.IO client (the dashboard's protocol: progress as deltas) waiting for a run's end."""

    def __init__(self, url: str) -> None:
        self.client_id = uuid.uuid4().hex
        self.ended: dict[str, threading.Event] = {}
        self.sio = socketio.Client()

        @self.sio.on("executing")
        def on_executing(data: Any) -> None:
            if isinstance(data, dict) and data.get("node") is None:
                self.ended.setdefault(str(data.get("prompt_id")), threading.Event()).set()

        self.sio.connect(f"{url}?clientId={self.client_id}", auth={"clientId": self.client_id, "progress_delta": True},
                         wait_timeout=10)

    def until_done(self, pid: str, timeout: float = RUN_TIMEOUT) -> None:
        if not self.ended.setdefault(pid, threading.Event()).wait(timeout):
            raise RuntimeError(f"run {pid} did not end on Socket.IO")

    def close(self) -> None:
        self.sio.disconnect()


# ---- farm side ----------------------------------------------------------------------------------


@dataclass
class FarmRun:
    total: float  # seconds from POST to the end
    post: float  # seconds the POST took
    cached: int  # nodes in execution_cached
    value: str | None  # what the output node showed


def run_farm(farm: Farm, prompt: dict[str, dict[str, Any]], client: EditorWs | SioClient | None = None,
             output: str | None = None) -> FarmRun:
    """POST the prompt, wait for its end (history entry, or ``executing`` null on the client), check it."""
    t0 = time.perf_counter()
    res = farm.post(prompt, **({"client_id": client.client_id} if client is not None else {}))
    t_post = time.perf_counter() - t0
    if res.status_code != 200:
        raise RuntimeError(f"POST /prompt failed: {res.status_code} {res.text[:500]}")
    pid = str(res.json()["prompt_id"])
    if client is None:
        wait_history(farm, pid)
    else:
        client.until_done(pid)
    total = time.perf_counter() - t0
    entry = farm.wait(pid, 30)
    status = entry.get("status", {})
    if not status.get("completed"):
        raise RuntimeError(f"farm run {pid} failed: {status}")
    cached = sum(len(data.get("nodes", [])) for name, data in status.get("messages", []) if name == "execution_cached")
    out = entry.get("outputs", {}).get(output or str(len(prompt) - 1), {})
    text = out.get("text") if isinstance(out, dict) else None
    return FarmRun(total, t_post, cached, text[0] if text else None)


def uncached_chain(farm: Farm, seed: float, length: int, client: EditorWs | SioClient | None = None) -> FarmRun:
    run = run_farm(farm, chain_prompt(seed, length), client)
    expected = repr(seed + (length - 1))
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
        self.r = redis.Redis.from_url(broker_url, socket_timeout=None)  # BLPOP waits longer than 5 s

    def run(self, hops: int, timeout: float = RUN_TIMEOUT) -> float:
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


# ---- report --------------------------------------------------------------------------------------


def med(values: list[float]) -> float:
    return statistics.median(values)


def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


def main() -> int:
    out = Report("chain")
    started = out.started

    seeds = iter(float(int(time.time()) % 100000) + 0.25 + 1000.0 * i for i in range(10**6))
    bare_t: dict[int, list[float]] = {n: [] for n in LENGTHS}
    farm_t: dict[tuple[int, str], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="nf-bench-") as tmpdir:
        tmp = Path(tmpdir)
        farm = Farm(tmp, workers=1)
        bare = BareChain(farm.state.url, tmp)
        ws: EditorWs | None = None
        sio: SioClient | None = None
        try:
            env_line = environment(farm)
            ws, sio = EditorWs(farm.url), SioClient(farm.url)
            clients: dict[str, EditorWs | SioClient | None] = {"no client": None, "/ws client": ws, "Socket.IO client": sio}
            bare.run(50)  # warm-ups (the bare one also waits for its worker to come up)
            for client in clients.values():
                uncached_chain(farm, next(seeds), 50, client)
            cpu = {n: (CpuMeter({"worker": bare.proc.pid, "state redis": farm.state.proc.pid}),
                       CpuMeter({"worker": farm.procs["w0"].pid, "API": farm.procs["api"].pid,
                                 "state redis": farm.state.proc.pid, "result redis": farm.results.proc.pid}))
                   for n in LENGTHS}
            for rep in range(REPS):  # every round runs every length, so drift of the machine hits all alike
                for n in ROUND_ORDER[rep % len(ROUND_ORDER)]:
                    meters = cpu[n]
                    meters[0].start()
                    bare_t[n].append(bare.run(n))
                    meters[0].stop()
                    progress(f"round {rep}, n={n}: bare {bare_t[n][-1]:.2f} s")
                    for label, client in clients.items():
                        if client is None:
                            meters[1].start()
                        farm_t.setdefault((n, label), []).append(uncached_chain(farm, next(seeds), n, client).total)
                        if client is None:
                            meters[1].stop()
                        progress(f"round {rep}, n={n}: farm, {label} {farm_t[(n, label)][-1]:.2f} s")
            # the last 2,000-node chain again, unchanged: every node is cached at admission
            last = chain_prompt(next(seeds), 2000)
            run_farm(farm, last)
            cached = [run_farm(farm, last) for _ in range(3)]
            if any(c.cached != len(last) for c in cached):
                raise RuntimeError(f"resubmission cached only {[c.cached for c in cached]} of {len(last)} nodes")
            posts = [uncached_chain(farm, next(seeds), 1000).post for _ in range(3)]
            fan_editor = EditorWs(farm.url)
            fan_plain = EditorWs(farm.url, deltas=False)
            fan_seed = next(seeds)
            pid_prompt = fanout_prompt(fan_seed)
            t0 = time.perf_counter()
            res = farm.post(pid_prompt, client_id=fan_editor.client_id)
            fan_editor.until_done(str(res.json()["prompt_id"]))
            fan_editor_s = time.perf_counter() - t0
            fan_editor.close()
            res = farm.post(fanout_prompt(next(seeds)), client_id=fan_plain.client_id)
            fan_plain.until_done(str(res.json()["prompt_id"]))
            fan_plain.close()
        finally:
            for c in (ws, sio):
                if c is not None:
                    c.close()
            bare.stop()
            farm.stop()

    out(f"nodefarm bench/chain.py  ({time.strftime('%Y-%m-%d %H:%M:%S')})")
    out("environment: " + env_line)
    out("chain: PrimitiveFloat -> (n-1) x MathOperation(add) -> TestFloatOutput (n+1 nodes); bare: n self-enqueuing "
        "Celery tasks. Both one prefork -c 1 consumer on the same state Redis; medians of 3 rounds, each running "
        "every length and side once, interleaved.")
    out()
    out(f"{'n':>5}  {'side':<28}{'median s':>10}{'ms/node':>9}{'x hop':>7}   raw reps (s)")
    ratios: dict[tuple[int, str], float] = {}
    for n in LENGTHS:
        hop = med(bare_t[n]) / n
        out(f"{n:>5}  {'bare Celery hop':<28}{med(bare_t[n]):>10.3f}{hop * 1000:>9.2f}{1.0:>7.2f}   "
            + " ".join(f"{t:.3f}" for t in bare_t[n]))
        for label in ("no client", "/ws client", "Socket.IO client"):
            times = farm_t[(n, label)]
            per = med(times) / (n + 1)
            ratios[(n, label)] = per / hop
            out(f"{n:>5}  {'farm, ' + label:<28}{med(times):>10.3f}{per * 1000:>9.2f}{per / hop:>7.2f}   "
                + " ".join(f"{t:.3f}" for t in times))
        out(f"       CPU ms per hop, bare:  {cpu[n][0].summary(n * REPS)}")
        out(f"       CPU ms per node, farm: {cpu[n][1].summary((n + 1) * REPS)}")
    worst = max(ratios.values())
    out(f"target: farm ms/node <= {TARGET} x bare ms/hop at every n, with and without clients; worst {worst:.2f}: "
        + verdict(worst <= TARGET))
    flat = (med(farm_t[(2000, 'no client')]) / 2001) / (med(farm_t[(100, 'no client')]) / 101)
    out(f"target: ms/node at 2,000 within {FLAT:.0%} of ms/node at 100; ratio {flat:.3f}: " + verdict(abs(flat - 1) <= FLAT))
    out()
    ct = [c.total for c in cached]
    out(f"fully cached resubmission, 2,001 nodes: median {med(ct) * 1000:.1f} ms (reps " + " ".join(f"{t * 1000:.1f}" for t in ct)
        + f"; uncached run of the same chain {med(farm_t[(2000, 'no client')]):.2f} s); target < {CACHED_TARGET_S * 1000:.0f} ms: "
        + verdict(med(ct) < CACHED_TARGET_S))
    out(f"POST /prompt, new 1,001-node chain: median {med(posts) * 1000:.1f} ms (reps " + " ".join(f"{t * 1000:.1f}" for t in posts)
        + f"); target < {POST_TARGET_S * 1000:.0f} ms: " + verdict(med(posts) < POST_TARGET_S))
    out(f"websocket bytes, 1,001-node fan-out run: editor protocol {fan_editor.bytes / 1e6:.2f} MB in {fan_editor.frames} frames "
        f"(run {fan_editor_s:.2f} s); plain ComfyUI client (full progress_state frames) {fan_plain.bytes / 1e6:.2f} MB in "
        f"{fan_plain.frames} frames; target editor < {WS_BYTES_TARGET / 1e6:.1f} MB: " + verdict(fan_editor.bytes < WS_BYTES_TARGET))
    out(f"bench wall time: {time.perf_counter() - started:.1f} s")
    return out.write()


if __name__ == "__main__":
    sys.exit(main())
