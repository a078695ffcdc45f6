"""Faults with nothing lost (issue 9): each scenario is repeated and prints its figures.

1. A worker SIGKILLed in a burst of runs: the node it had prefetched (taken from the broker, not
   started) is re-sent at once, like the one it was running (worker/rescue.py).
2. The state Redis SIGKILLed and restarted from its append-only file mid-run: every run completes
   or fails with a clear error; the watchdog (worker/watchdog.py) re-sends what got lost.
3. A node longer than the broker's visibility timeout runs once: its live worker keeps the message
   from being re-delivered.
4. The API SIGKILLed and restarted mid-run: /ws and Socket.IO clients that reconnect get every event
   they missed, once.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.farm import Farm, WsClient, marks

pytestmark = pytest.mark.integration

REPEATS = 3


def figure(line: str) -> None:
    print(f"\n[faults] {line}", flush=True)


def finished(farm: Farm, pids: list[str]) -> int:
    return sum(1 for score in farm.r.zmscore("nf:history", pids) if score is not None)


def wait_finished(farm: Farm, pids: list[str], timeout: float) -> float:
    start = time.time()
    while time.time() - start < timeout:
        if finished(farm, pids) == len(pids):
            return time.time() - start
        time.sleep(0.2)
    raise AssertionError(f"{finished(farm, pids)} of {len(pids)} runs finished within {timeout} s\n"
                         + diagnose(farm, pids) + "\nlogs:\n" + "\n".join(farm.log(n)[-3000:] for n in farm.procs))


def diagnose(farm: Farm, pids: list[str]) -> str:
    """Where the unfinished runs stand: their state, the workers, the queues, kombu's unacked set."""
    r, lines = farm.r, []
    for pid, score in zip(pids, r.zmscore("nf:history", pids), strict=True):
        if score is None:
            lines.append(f"{pid}: meta {r.hgetall(f'nf:run:{{{pid}}}:meta')} status {r.hgetall(f'nf:run:{{{pid}}}:status')}"
                         f" seq {r.hgetall(f'nf:run:{{{pid}}}:seq')}")
    lines.append(f"running {r.zrange('nf:running', 0, -1)} queue {r.zrange('nf:queue', 0, -1)}")
    lines.append(f"suspects {r.hgetall('nf:watchdog:suspects')} workers {r.zrange('nf:workers', 0, -1, withscores=True)}"
                 f" now {time.time()}")
    for w in r.zrange("nf:workers", 0, -1):
        name = w.decode()
        lines.append(f"{name}: running {r.hgetall(f'nf:worker:{name}:running')} reserved {r.hgetall(f'nf:worker:{name}:reserved')}")
    lines.append(f"unacked {r.zrange('unacked_index', 0, -1, withscores=True)}")
    lines.append(f"queues { {k.decode(): r.llen(k) for k in r.scan_iter(match='nf.*', _type='list')} }")
    return "\n".join(lines)


def started_twice(farm: Farm, pids: list[str]) -> list[str]:
    """"pid/node" of the nodes that sent ``executing`` more than once (each start of a live dispatch does)."""
    out = []
    for pid in pids:
        seen: dict[str, int] = {}
        for _id, fields in farm.r.xrange(f"nf:run:{{{pid}}}:events"):
            if fields[b"type"] == b"executing":
                node = json.loads(fields[b"data"]).get("node")
                if node is not None:
                    seen[node] = seen.get(node, 0) + 1
        out += [f"{pid[:8]}/{node}" for node, n in seen.items() if n > 1]
    return out


def worker_logs(farm: Farm) -> list[str]:
    return [p.read_text(errors="replace") for p in farm.tmp.glob("w*.log")]


def history(farm: Farm) -> dict:
    return dict(requests.get(farm.url + "/history", params={"max_items": 100000}, timeout=30).json())


# ---- 1. prefetched nodes of a dead worker --------------------------------------------------------------


@pytest.mark.timeout(600)
def test_a_burst_with_a_worker_sigkilled_loses_no_prefetched_node(tmp_path: Path) -> None:
    """200 small runs, one worker SIGKILLed ~1.5 s in: 200 of 200 finish with the right outputs, each
    once in the history. The watchdog is held back (10 min grace): the rescue of the nodes the dead
    worker held (running and prefetched) is what saves them."""
    farm = Farm(tmp_path, workers=2, env={"NODEFARM_MAX_ACTIVE_RUNS": "40", "NODEFARM_WATCHDOG_GRACE": "600"})
    runs, rescued_total = 200, 0
    logged: dict[str, int] = {}  # "victim kind" -> rescues logged so far
    try:
        for rep in range(REPEATS):
            tag = f"burst{rep}"
            victim = f"w{rep % 2}"
            held: dict[str, int] = {}

            def kill(victim: str = victim, held: dict[str, int] = held) -> None:
                name = f"{victim}@test"
                deadline = time.time() + 5  # the first moment it holds a prefetched node
                while not (n := farm.r.hlen(f"nf:worker:{name}:reserved")) and time.time() < deadline:
                    time.sleep(0.002)
                farm.kill(victim)
                held["reserved"] = n

            start = time.time()
            timer = threading.Timer(1.5, kill)
            timer.start()
            pids, values = [], {}
            for i in range(runs):
                value = rep * 1000 + i + 0.5
                pid = farm.submit({
                    "1": {"class_type": "TestSlowValue", "inputs": {"value": value, "seconds": 0.05, "tag": tag}},
                    "2": {"class_type": "TestFloatOutput", "inputs": {"value": ["1", 0]}},
                })
                pids.append(pid)
                values[pid] = value
            timer.join()
            wait_finished(farm, pids, timeout=180)
            took = time.time() - start
            entries = history(farm)
            assert len(entries) == runs * (rep + 1)  # each run once, nothing extra
            for pid in pids:
                entry = entries[pid]
                assert entry["status"]["status_str"] == "success", entry["status"]
                assert entry["outputs"]["2"] == {"text": [repr(values[pid])]}
            executions = len(marks(farm, tag))
            twice = started_twice(farm, pids)
            rescued = {kind: sum(log.count(f"{victim}@test died {what}") for log in worker_logs(farm))
                       - logged.get(f"{victim} {kind}", 0)  # the logs accumulate: this kill's rescues only
                       for kind, what in (("prefetched", "holding node"), ("running", "while running node"))}
            for kind, n in rescued.items():
                logged[f"{victim} {kind}"] = logged.get(f"{victim} {kind}", 0) + n
            rescued_total += rescued["prefetched"]
            figure(f"burst {rep + 1}: {runs}/{runs} finished in {took:.1f} s; {victim} SIGKILLed at "
                   f"{held['reserved'] and 'a moment it held a prefetched node, ~'}1.5 s in; re-sent "
                   f"{rescued['prefetched']} prefetched + {rescued['running']} running; "
                   f"{executions} executions for {runs} nodes; started twice (killed mid-node, or an input "
                   f"only the dead worker held recomputed): {twice or 'none'}")
            farm.start_worker(rep % 2)
            farm.wait_workers(2)
        assert rescued_total >= 1, "no kill caught a prefetched node: the scenario did not happen"
    finally:
        farm.stop()


@pytest.mark.timeout(300)
def test_a_worker_stopped_cleanly_leaves_its_prefetched_node_to_the_broker_alone(tmp_path: Path) -> None:
    """SIGTERM (warm shutdown) while a worker runs one node and holds another: kombu puts the held one
    back on its queue, so the worker's record of it is cleared and its restart re-sends nothing; every
    node runs once."""
    farm = Farm(tmp_path, workers=1)
    try:
        for rep in range(REPEATS):
            tag = f"term{rep}"
            pids = [farm.submit({
                "1": {"class_type": "TestSlowValue", "inputs": {"value": rep * 10 + i, "seconds": 1.5, "tag": tag}},
                "2": {"class_type": "TestFloatOutput", "inputs": {"value": ["1", 0]}},
            }) for i in range(3)]
            deadline = time.time() + 30
            while not (held := farm.r.hlen("nf:worker:w0@test:reserved")) and time.time() < deadline:
                time.sleep(0.005)
            farm.procs["w0"].send_signal(signal.SIGTERM)  # to the worker alone: Celery's warm shutdown
            farm.procs["w0"].wait(60)
            left = farm.r.hlen("nf:worker:w0@test:reserved")
            farm.start_worker(0)
            took = wait_finished(farm, pids, timeout=90)
            assert (held, left) == (1, 0)
            assert len(marks(farm, tag)) == 3
            figure(f"clean stop {rep + 1}: held {held} prefetched at SIGTERM, {left} left recorded after it; "
                   f"3 runs ended {took:.1f} s after the restart, 3 executions for 3 nodes")
    finally:
        farm.stop()


# ---- 2. the state Redis SIGKILLed (and restarted from its append-only file) mid-run --------------------


def chain(value: float, tag: str) -> dict:
    return {
        "1": {"class_type": "TestSlowValue", "inputs": {"value": value, "seconds": 1.0, "tag": tag}},
        "2": {"class_type": "MathOperation", "inputs": {"a": ["1", 0], "b": 10.0, "operation": "add"}},
        "3": {"class_type": "TestSlowValue", "inputs": {"value": ["2", 0], "seconds": 0.5, "tag": tag}},
        "4": {"class_type": "TestFloatOutput", "inputs": {"value": ["3", 0]}},
    }


@pytest.mark.timeout(600)
def test_the_state_redis_killed_mid_run_leaves_no_run_running_for_ever(tmp_path: Path) -> None:
    """The state Redis (AOF everysec) is SIGKILLed while runs are in flight and restarted 2 s later
    from its append-only file (the last second of writes may be lost), three times, then shut down
    cleanly and restarted: every run ends within a bound, with its right output or a clear error;
    nothing stays running; workers, the API's relay and admission carry on."""
    farm = Farm(tmp_path, workers=2, aof=True, env={"NODEFARM_WATCHDOG_GRACE": "4"})
    try:
        for rep in range(REPEATS + 1):
            clean = rep == REPEATS
            tag = f"aof{rep}"
            ws = WsClient(farm.url)
            pids = {farm.submit(chain(rep * 100 + i, tag), client_id=ws.client_id): rep * 100 + i for i in range(6)}
            deadline = time.time() + 30
            while len(marks(farm, tag)) < 2 and time.time() < deadline:
                time.sleep(0.05)
            if clean:
                farm.state.shutdown_and_restart(down_s=2.0)
            else:
                farm.state.kill_and_restart(down_s=2.0)
            took = wait_finished(farm, list(pids), timeout=120)
            outcomes: dict[str, int] = {}
            for pid, value in pids.items():
                entry = farm.wait(pid, timeout=10)
                status = entry["status"]["status_str"]
                outcomes[status] = outcomes.get(status, 0) + 1
                if status == "success":
                    assert entry["outputs"]["4"] == {"text": [repr(value + 10.0)]}
                else:
                    error = next(m[1] for m in entry["status"]["messages"] if m[0] == "execution_error")
                    assert error["exception_type"] == "nodefarm.RunStateLost", error
                    assert "cannot go on" in error["exception_message"]
            assert farm.r.zcard("nf:running") == 0
            # the API's relay followed the restarted Redis: the client hears the end of every run
            ended: set[str] = set()

            def all_ended(m: object, ended: set[str] = ended, pids: dict = pids) -> bool:
                if isinstance(m, dict) and m.get("type") == "executing" and m["data"].get("node") is None:
                    ended.add(m["data"].get("prompt_id"))
                return ended >= set(pids)

            if not any(all_ended(m) for m in ws.messages):
                ws.until(all_ended, timeout=30)
            ws.close()
            if clean:
                assert outcomes == {"success": len(pids)}, outcomes  # a clean shutdown loses nothing
            figure(f"state Redis {'SIGTERM' if clean else 'SIGKILL'} {rep + 1}: {len(pids)} runs ended {took:.1f} s "
                   f"after the restart: {outcomes}; executions {len(marks(farm, tag))} for {2 * len(pids)} slow nodes")
        # the farm still works afterwards
        entry = farm.run(chain(999.0, "after"), timeout=60)
        assert entry["outputs"]["4"] == {"text": [repr(1009.0)]}
    finally:
        farm.stop()


@pytest.mark.timeout(300)
def test_a_dispatched_node_whose_task_vanished_is_sent_again(tmp_path: Path) -> None:
    """A node's task message taken off its queue by hand (what a restart from an append-only file
    that lost a second of writes can do): after the grace period the watchdog sends it again; every
    run succeeds and each node runs once."""
    farm = Farm(tmp_path, workers=1, env={"NODEFARM_WATCHDOG_GRACE": "3"})
    try:
        for rep in range(REPEATS):
            tag = f"vanish{rep}"
            pids = [farm.submit({
                "1": {"class_type": "TestSlowValue", "inputs": {"value": rep * 10 + i, "seconds": 1.0, "tag": tag}},
                "2": {"class_type": "TestFloatOutput", "inputs": {"value": ["1", 0]}},
            }) for i in range(4)]
            deadline = time.time() + 30
            taken: list[bytes] = []
            while not taken and time.time() < deadline:  # the worker runs one, holds one: the others wait here
                message = farm.r.rpop("nf.nodes")
                if message is not None:
                    taken.append(message)
                else:
                    time.sleep(0.01)
            assert taken, "no task waited in the shared queue"
            took = wait_finished(farm, pids, timeout=60)
            for i, pid in enumerate(pids):
                assert farm.wait(pid)["outputs"]["2"] == {"text": [repr(float(rep * 10 + i))]}
            assert len(marks(farm, tag)) == 4
            figure(f"vanished task {rep + 1}: sent again, 4 runs ended {took:.1f} s after it was taken "
                   f"(grace 3 s), 4 executions for 4 nodes")
    finally:
        farm.stop()


@pytest.mark.timeout(300)
def test_a_run_whose_state_is_lost_or_damaged_fails_with_a_clear_error(tmp_path: Path) -> None:
    """A running run's state deleted, a node's spec gone, a status garbled (what a restore from an
    old file or a hand edit leaves): the watchdog fails the run within its grace period, with an
    execution_error naming the problem and a history entry; the client hears the end; nothing stays
    running, and the next runs go on."""
    farm = Farm(tmp_path, workers=1, env={"NODEFARM_WATCHDOG_GRACE": "3"})
    damages = {
        "state deleted": lambda pid: farm.r.delete(*[k for k in farm.r.scan_iter(match=f"nf:run:{{{pid}}}:*")
                                                   if not k.endswith(b":item") and not k.endswith(b":events")]),
        "spec gone": lambda pid: farm.r.hdel(f"nf:run:{{{pid}}}:spec", "2"),
        "status garbled": lambda pid: farm.r.hset(f"nf:run:{{{pid}}}:status", "2", "?"),
    }
    try:
        for what, damage in damages.items():
            tag = f"damage-{len(what)}"
            ws = WsClient(farm.url)
            pid = farm.submit(chain(len(what), tag), client_id=ws.client_id)
            deadline = time.time() + 30
            while not marks(farm, tag) and time.time() < deadline:
                time.sleep(0.05)
            damage(pid)
            start = time.time()
            messages = ws.until_done(pid, timeout=60)
            took = time.time() - start
            ws.close()
            entry = farm.wait(pid, timeout=10)
            assert entry["status"]["status_str"] == "error"
            error = next(m[1] for m in entry["status"]["messages"] if m[0] == "execution_error")
            assert error["exception_type"] == "nodefarm.RunStateLost"
            assert "cannot go on" in error["exception_message"], error
            assert [m for m in messages if m["type"] == "execution_error"][-1]["data"]["prompt_id"] == pid
            assert farm.r.zscore("nf:running", pid) is None
            figure(f"damaged state ({what}): failed {took:.1f} s later: {error['exception_message'].strip()[:110]}")
        entry = farm.run(chain(7.0, "after"), timeout=60)
        assert entry["outputs"]["4"] == {"text": [repr(17.0)]}
    finally:
        farm.stop()


# ---- 3. a node longer than the broker's visibility timeout -------------------------------------------


@pytest.mark.timeout(300)
def test_a_node_longer_than_the_visibility_timeout_runs_once(tmp_path: Path) -> None:
    """Visibility timeout 3 s (kombu looks for expired messages every second), nodes of 8 s: three
    at once on two workers, so one also waits 8 s prefetched. Each runs exactly once (its live
    worker keeps re-scoring the messages it holds), and nothing runs again afterwards."""
    farm = Farm(tmp_path, workers=2, env={"NODEFARM_VISIBILITY_TIMEOUT": "3"})
    try:
        for rep in range(REPEATS):
            tags = [f"long{rep}-{i}" for i in range(3)]
            start = time.time()
            pids = [farm.submit({
                "1": {"class_type": "TestSlowValue", "inputs": {"value": rep * 10 + i, "seconds": 8.0, "tag": tag}},
                "2": {"class_type": "TestFloatOutput", "inputs": {"value": ["1", 0]}},
            }) for i, tag in enumerate(tags)]
            wait_finished(farm, pids, timeout=120)
            took = time.time() - start
            time.sleep(4)  # a redelivery would have started by now
            counts = [len(marks(farm, tag)) for tag in tags]
            for i, pid in enumerate(pids):
                entry = farm.wait(pid, timeout=10)
                assert entry["outputs"]["2"] == {"text": [repr(float(rep * 10 + i))]}
            assert counts == [1, 1, 1], counts
            figure(f"visibility 3 s, nodes of 8 s {rep + 1}: 3 runs in {took:.1f} s, executions per node {counts}")
    finally:
        farm.stop()


# ---- 4. the API SIGKILLed and restarted mid-run: clients resume --------------------------------------


def slow_chain(value: float, tag: str, n: int = 4, seconds: float = 1.0) -> dict:
    prompt: dict = {"1": {"class_type": "TestSlowValue", "inputs": {"value": value, "seconds": seconds, "tag": tag}}}
    for i in range(2, n + 1):
        prompt[str(i)] = {"class_type": "TestSlowValue", "inputs": {"value": [str(i - 1), 0], "seconds": seconds, "tag": tag}}
    prompt[str(n + 1)] = {"class_type": "TestFloatOutput", "inputs": {"value": [str(n), 0]}}
    return prompt


def run_events(messages: list, pid: str) -> list[tuple[str, str | None]]:
    """(type, node) of the run's execution_* / executing / executed events, in order."""
    kinds = ("execution_start", "execution_cached", "executing", "executed", "execution_success", "execution_error")
    return [(m["type"], m["data"].get("node")) for m in messages
            if isinstance(m, dict) and m.get("type") in kinds and m["data"].get("prompt_id") == pid]


EXPECTED = [("execution_start", None), ("execution_cached", None),
            ("executing", "1"), ("executing", "2"), ("executing", "3"), ("executing", "4"), ("executing", "5"),
            ("executed", "5"), ("execution_success", None), ("executing", None)]


def kill_api_once_running(farm: Farm, tag: str, nodes_started: int = 2) -> float:
    deadline = time.time() + 30
    while len(marks(farm, tag)) < nodes_started and time.time() < deadline:
        time.sleep(0.02)
    farm.kill("api")
    start = time.time()
    farm.start_api()
    return time.time() - start


def drain(ws: WsClient) -> None:
    """Read what a socket still holds until the server's end closes it."""
    try:
        while True:
            ws.ws.settimeout(10)
            raw = ws.ws.recv()
            if not raw:
                return
            ws.messages.append(json.loads(raw) if isinstance(raw, str) else raw)
    except Exception:
        return


@pytest.mark.timeout(600)
def test_ws_clients_reconnecting_after_an_api_restart_get_every_missed_event_once(tmp_path: Path) -> None:
    farm = Farm(tmp_path, workers=1)
    try:
        for rep in range(REPEATS):
            tag = f"ws{rep}"
            first = WsClient(farm.url)
            pid = farm.submit(slow_chain(rep + 0.5, tag), client_id=first.client_id)
            down = kill_api_once_running(farm, tag)
            drain(first)
            before = run_events(first.messages, pid)
            second = WsClient(farm.url, client_id=first.client_id)  # a ComfyUI client reconnects with its clientId
            second.until_done(pid, timeout=60)
            second.close()
            after = run_events(second.messages, pid)
            assert before + after == EXPECTED, (before, after)
            figure(f"/ws resume {rep + 1}: API down {down:.1f} s after node 2 started; {len(before)} events before "
                   f"the kill, {len(after)} after the reconnect (replayed + live), each once, in order")
            assert farm.wait(pid)["outputs"]["5"] == {"text": [repr(rep + 0.5)]}
    finally:
        farm.stop()


@pytest.mark.timeout(600)
def test_socketio_clients_reconnecting_after_an_api_restart_get_every_missed_event_once(tmp_path: Path) -> None:
    import socketio

    farm = Farm(tmp_path, workers=1)
    try:
        for rep in range(REPEATS):
            tag = f"sio{rep}"
            client_id = f"sio-client-{rep}"
            got: list[dict] = []
            connects: list[float] = []
            sio = socketio.Client(reconnection_delay=0.2, reconnection_delay_max=0.5)
            sio.on("*", lambda event, data=None, got=got: got.append({"type": event, "data": data}))
            sio.on("connect", lambda connects=connects: connects.append(time.time()))
            sio.connect(farm.url, auth={"client_id": client_id}, transports=["websocket"], wait_timeout=10)
            try:
                pid = farm.submit(slow_chain(rep + 0.25, tag), client_id=client_id)
                down = kill_api_once_running(farm, tag)
                deadline = time.time() + 60
                while time.time() < deadline and not any(
                        m["type"] == "executing" and isinstance(m["data"], dict) and m["data"].get("node") is None
                        and m["data"].get("prompt_id") == pid for m in got):
                    time.sleep(0.1)
                time.sleep(0.5)  # anything sent twice would be here by now
            finally:
                sio.disconnect()
            events = run_events(got, pid)
            assert len(connects) >= 2, "the client did not reconnect"
            assert events == EXPECTED, events
            figure(f"Socket.IO resume {rep + 1}: API down {down:.1f} s after node 2 started; {len(events)} run events, "
                   f"each once, in order, over {len(connects)} connections")
    finally:
        farm.stop()
