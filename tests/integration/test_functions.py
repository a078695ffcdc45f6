"""The Redis Functions (worker/functions.lua) against the pure state machine they mirror.

``nf_done`` must leave a run in exactly the state ``nodes.core.state.node_done`` leaves it, send the
same events and dispatch the same nodes with the same sequence numbers; on random graphs (with
identical nodes, lazy-free diamonds, nodes held only in a worker's memory) the two are run side by
side, step by step, against a real redis-server.
"""

from __future__ import annotations

import copy
import json
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from nodes.core import state
from nodes.core.state import NodeSpec, RunState
from tests.farm import functions_redis
from worker import events, functions, keys, runstore

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def r(tmp_path_factory: pytest.TempPathFactory) -> Iterator[redis.Redis]:
    with functions_redis(Path(tmp_path_factory.mktemp("redis-fn"))) as client:
        yield client


def random_run(rng: random.Random, pid: str, n: int) -> RunState:
    nodes: dict[str, NodeSpec] = {}
    for i in range(n):
        inputs: dict[str, Any] = {"v": rng.randint(0, 3)}
        for j, src in enumerate(rng.sample(range(i), k=min(i, rng.randint(0, 3)))):
            inputs[f"in{j}"] = [str(src), 0]
        key = f"k{rng.randint(0, n // 3)}" if rng.random() < 0.3 else f"k-{pid}-{i}"  # some identical nodes
        if rng.random() < 0.1:
            key = "u:" + key
        nodes[str(i)] = NodeSpec("N", inputs, key)
    used = {src for s in nodes.values() for src in s.sources()}
    outputs = [nid for nid in nodes if nid not in used]
    for nid in outputs:
        s = nodes[nid]
        nodes[nid] = NodeSpec(s.class_type, s.inputs, s.key, output=True)
    return RunState(pid, rng.choice(["client-1", None]), outputs, nodes=nodes)


def stored(r: redis.Redis, pid: str) -> dict[str, Any]:
    loaded = runstore.load(r, pid)
    assert loaded is not None
    st = loaded.state
    return {
        "status": st.status, "seq": st.seq, "deps": st.deps, "waiters": st.waiters, "keyq": st.keyq,
        "holders": st.holders, "made": st.made, "near": st.near, "ui": st.ui, "executed": st.executed, "end": st.end,
        "msgs": st.msgs,
        "pending": loaded.values["meta"]["pending"],
    }


def expected(st: RunState) -> dict[str, Any]:
    return {
        "status": st.status, "seq": st.seq, "deps": {k: v for k, v in st.deps.items() if v},
        "waiters": {k: v for k, v in st.waiters.items() if v}, "keyq": st.keyq, "holders": st.holders,
        "made": st.made, "near": st.near, "ui": st.ui, "executed": st.executed, "end": st.end, "msgs": st.msgs,
        "pending": st.pending(),
    }


def run_events(r: redis.Redis, pid: str, after: str) -> tuple[list[tuple[str, Any]], str]:
    out: list[tuple[str, Any]] = []
    last = after
    for entry_id, fields in r.xrange(keys.run_events(pid), min=f"({after}" if after != "0" else "-"):
        ev = events.decode_entry(fields)
        out.append((ev["type"], ev["data"]))
        last = entry_id.decode()
    return out, last


def published(r: redis.Redis, pid: str) -> list[tuple[str, int, str]]:
    """Node tasks of run ``pid`` waiting on any nodefarm queue (taken off them), sorted."""
    out: list[tuple[str, int, str]] = []
    for queue in [keys.SHARED_QUEUE] + [k.decode() for k in r.keys(keys.WORKER_QUEUE_PREFIX + "*")]:
        for raw in reversed(r.lrange(queue, 0, -1)):
            message = json.loads(raw)
            args, kwargs, _embed = json.loads(message["body"])
            assert message["headers"]["task"] == keys.NODE_TASK and kwargs == {}
            assert message["properties"]["delivery_info"]["routing_key"] == queue
            if args[0] == pid:
                out.append((args[1], args[2], queue))
                r.lrem(queue, 1, raw)
    return sorted(out)


def admit(r: redis.Redis, pure: RunState) -> list[str]:
    """Admit ``pure`` (in memory) and a copy of it into Redis, as admission does."""
    r.set(keys.run_item(pure.pid), json.dumps([0, pure.pid, {}, {}, pure.outputs]))
    r.zadd(keys.RUNNING, {pure.pid: 0})
    stored_copy = copy.deepcopy(pure)
    step = state.admit(pure, [], {}, 1)
    pipe = r.pipeline()
    runstore.create(pipe, stored_copy, state.admit(stored_copy, [], {}, 1), 1)
    pipe.execute()
    return list(step.dispatch)


@pytest.mark.parametrize("seed", range(12))
def test_nf_done_mirrors_node_done_on_random_graphs(r: redis.Redis, seed: int) -> None:
    rng = random.Random(seed)
    pid = f"run-{seed}"
    pure = random_run(rng, pid, rng.randint(3, 40))
    queued = admit(r, pure)
    assert published(r, pid) == sorted((d, 1, keys.SHARED_QUEUE) for d in queued)
    _, cursor = run_events(r, pid, "0")
    assert stored(r, pid) == expected(pure)
    steps = 0
    while queued:
        nid = queued.pop(rng.randrange(len(queued)))
        seq = pure.seq[nid]
        holder = rng.choice([None, None, "w1@h", "w2@h"])
        ui = {"text": [nid]} if pure.nodes[nid].output else None
        ran = rng.random() < 0.8
        nbytes = rng.choice([0, 100, state.BIG_RESULT])  # w1@h beats no heartbeat: no locality preference here
        step = state.node_done(pure, nid, ui=ui, ran=ran, holder=holder, worker="w1@h", nbytes=nbytes, now_ms=100 + steps)
        got = functions.done(r, pid, nid, seq, "w1@h", 100 + steps, ran=ran, holder=holder, ui=ui, nbytes=nbytes)
        assert got.applied
        assert got.dispatch == [(d, pure.seq[d], state.route(pure, d) or "") for d in step.dispatch]
        assert published(r, pid) == sorted(
            (d, pure.seq[d], keys.worker_queue(h) if (h := state.route(pure, d)) else keys.SHARED_QUEUE) for d in step.dispatch)
        assert got.finished == (step.finish == "success")
        sent, cursor = run_events(r, pid, cursor)
        want = list(step.events)
        if step.finish:
            remaining = r.zcard(keys.QUEUE) + r.zcard(keys.RUNNING)
            want += [("status", events.status_data(remaining)), ("executing", {"node": None, "prompt_id": pid})]
        assert sent == want
        assert stored(r, pid) == expected(pure)
        # a duplicate delivery of the same report changes nothing
        assert not functions.done(r, pid, nid, seq, "w1@h", 0, ran=True, holder=None, ui=None).applied
        queued += step.dispatch
        steps += 1
    assert pure.end == "success"
    entry = json.loads(r.get(keys.history_entry(pid)))
    assert entry["status"]["status_str"] == "success" and entry["status"]["completed"] is True
    assert entry["status"]["messages"] == pure.msgs
    assert entry["outputs"] == pure.ui
    assert entry["meta"] == {n: {"node_id": n, "display_node": n, "parent_node": None, "real_node_id": n} for n in pure.ui}
    assert entry["prompt"] == [0, pid, {}, {}, pure.outputs]
    assert r.zscore(keys.RUNNING, pid) is None and r.zscore(keys.HISTORY, pid) is not None
    assert 0 < r.ttl(keys.run_part(pid, "status")) <= functions.STATE_TTL_S


def test_nf_start_registers_the_attempt_and_sends_the_start_events(r: redis.Redis) -> None:
    pid = "start-run"
    graph = {"a": NodeSpec("N", {"v": 1}, "ka"), "b": NodeSpec("N", {"x": ["a", 0]}, "kb", output=True)}
    pure = RunState(pid, "c1", ["b"], nodes=dict(graph))
    admit(r, pure)
    _, cursor = run_events(r, pid, "0")
    assert functions.start(r, pid, "a", 2, "w1@h", 2) is None  # a stale dispatch
    assert functions.start(r, pid, "b", 1, "w1@h", 2) is None  # not dispatched yet
    got = functions.start(r, pid, "a", 1, "w1@h", 2)
    assert got is not None
    assert got.spec == graph["a"].to_json() and got.client_id == "c1" and got.attempts == 1 and not got.cancelled
    assert not got.computed_elsewhere and got.pending == 2  # a and b: b is not its run's last node
    assert json.loads(r.hget(keys.worker_running("w1@h"), f"{pid} a")) == [pid, "a", 1]
    sent, cursor = run_events(r, pid, cursor)
    assert sent == state.start_events(pure, "a")
    assert functions.start(r, pid, "a", 1, "w1@h", 2).attempts == 2  # type: ignore[union-attr]
    done = functions.done(r, pid, "a", 1, "w1@h", 5, ran=True, holder=None, ui=None)
    assert done.dispatch == [("b", 1, "")]
    assert r.hget(keys.worker_running("w1@h"), f"{pid} a") is None
    got = functions.start(r, pid, "b", 1, "w1@h", 2)
    assert got is not None and got.sources == {"a": ("ka", "d", "w1@h")}
    # another run with a node of the same key learns that it was computed lately: worth a store lookup
    other = RunState("start-run-2", None, ["x"], nodes={"x": NodeSpec("N", {"v": 1}, "ka", output=True)})
    admit(r, other)
    again = functions.start(r, "start-run-2", "x", 1, "w2@h", 2)
    assert again is not None and again.computed_elsewhere
    assert r.zscore(keys.COMPUTED, "ka") is not None and r.zscore(keys.COMPUTED, "kb") is None


def test_nf_start_of_an_ephemeral_node_names_its_display_and_real_nodes(r: redis.Redis) -> None:
    pid = "eph-run"
    pure = RunState(pid, None, ["e"], nodes={"e": NodeSpec("Expand", {}, "ke", output=True)})
    admit(r, pure)
    new = {"e.0.0.1": state.ephemeral_spec(pure, "e", {}, None, class_type="M", inputs={}, key="k1")}
    got = runstore.transact(r, pid, lambda st: state.node_expanded(st, "e", new, [[["e.0.0.1", 0]]]), 2)
    assert got is not None and got[1].dispatch == ["e.0.0.1"]
    state.node_expanded(pure, "e", new, [[["e.0.0.1", 0]]])
    _, cursor = run_events(r, pid, "0")
    assert functions.start(r, pid, "e.0.0.1", 1, "w", 2) is not None
    sent, _ = run_events(r, pid, cursor)
    assert sent == state.start_events(pure, "e.0.0.1")
    assert sent[0][1]["nodes"]["e.0.0.1"]["display_node_id"] == "e"
    assert sent[0][1]["nodes"]["e.0.0.1"]["parent_node_id"] == "e"


def test_a_run_ended_by_a_python_step_is_finished_by_nf_finish(r: redis.Redis) -> None:
    pid = "fail-run"
    specs = {"a": NodeSpec("N", {"v": 1}, "ka", output=True)}
    pure = RunState(pid, "c9", ["a"], nodes=dict(specs))
    admit(r, pure)
    error = state.ErrorInfo("boom\n", "ValueError", ["tb"], {"v": [1]})
    got = runstore.transact(r, pid, lambda st: state.node_failed(st, "a", error, 7), 7)
    assert got is not None and got[1].finish == "error"
    entry = json.loads(r.get(keys.history_entry(pid)))
    assert entry["status"]["status_str"] == "error" and entry["status"]["completed"] is False
    assert [m[0] for m in entry["status"]["messages"]] == ["execution_start", "execution_cached", "execution_error"]
    sent, _ = run_events(r, pid, "0")
    assert [t for t, _ in sent][-3:] == ["execution_error", "status", "executing"]
    assert not functions.done(r, pid, "a", 1, "w", 8, ran=True, holder=None, ui=None).applied


def test_consumers_of_a_big_result_prefer_the_live_worker_that_holds_it(r: redis.Redis) -> None:
    """Locality: a big result draws one consumer to its worker's queue (while that queue is empty and
    the worker alive); the others of a fan-out go to the shared queue, so no worker idles."""
    pid = "near-run"
    nodes = {"src": NodeSpec("N", {"v": 1}, "k-src")}
    for i in range(3):
        nodes[f"c{i}"] = NodeSpec("N", {"x": ["src", 0], "i": i}, f"k-c{i}", output=True)
    pure = RunState(pid, None, [f"c{i}" for i in range(3)], nodes=nodes)
    admit(r, pure)
    published(r, pid)
    r.zadd(keys.WORKERS, {"big@h": time.time(), "other@h": time.time()})
    got = functions.done(r, pid, "src", 1, "big@h", 5, ran=True, holder=None, ui=None, nbytes=state.BIG_RESULT,
                         alive_after=time.time() - 10)
    assert [h for _n, _s, h in got.dispatch] == ["big@h", "", ""]
    first = got.dispatch[0][0]
    assert published(r, pid) == sorted((f"c{i}", 1, keys.worker_queue("big@h") if f"c{i}" == first else keys.SHARED_QUEUE)
                                       for i in range(3))
    # a worker whose heartbeat is stale gets no preference (and neither does the only live worker:
    # every queue leads to it)
    other = RunState("near-run-2", None, ["d"], nodes={"s2": NodeSpec("N", {"v": 2}, "k-s2"),
                                                      "d": NodeSpec("N", {"x": ["s2", 0]}, "k-d", output=True)})
    admit(r, other)
    published(r, "near-run-2")
    r.zadd(keys.WORKERS, {"old@h": time.time() - 60, "other@h": time.time() - 60})
    got = functions.done(r, "near-run-2", "s2", 1, "old@h", 5, ran=True, holder=None, ui=None, nbytes=state.BIG_RESULT,
                         alive_after=time.time() - 10)
    assert got.dispatch == [("d", 1, "")]
