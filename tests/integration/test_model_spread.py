"""Where admission places a run's model loads (worker/admission.py place_model_loads), on a real Redis
holding worker heartbeats, their running and queued tasks, the models each holds and the blocklist:
a new load goes to an idle worker with room; a model a busy worker holds is loaded again on an idle
worker of the same kind of device (one still holding it first), with what was made from it there."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import redis

from nodes.core.state import NodeSpec, RunState
from tests.farm import functions_redis
from tests.unit.test_model_placement import CheckpointLoader, ImageInvert, LoraLoader
from worker import keys
from worker.admission import place_model_loads, roomiest_worker

GIB = 2**30


@pytest.fixture()
def r(tmp_path: Path) -> Iterator[redis.Redis]:
    with functions_redis(tmp_path / "redis") as client:
        yield client


def worker(r: redis.Redis, name: str, free: int, kind: str = "cuda", models: list[int] = (), beat: float | None = None,  # type: ignore[assignment]
           running: int = 0, queued: int = 0) -> None:
    r.zadd(keys.WORKERS, {name: time.time() if beat is None else beat})
    r.set(keys.worker_info(name), json.dumps({"devices": [{"type": kind, "vram_free": free}],
                                              "models": [{"bytes": b} for b in models]}))
    for i in range(running):
        r.hset(keys.worker_running(name), f"other {i}", "1")
    for i in range(queued):
        r.rpush(keys.worker_queue(name), f"task {i}")


def farm(r: redis.Redis, spread: bool = True) -> Any:
    classes = {"CheckpointLoader": CheckpointLoader, "LoraLoader": LoraLoader, "ImageInvert": ImageInvert}
    return SimpleNamespace(r=r, settings=SimpleNamespace(heartbeat_s=2.0, spread_models=spread),
                           registry=SimpleNamespace(get=classes.get))


def run() -> RunState:
    """A checkpoint (4), a LoRA on it (10), a sampler-like consumer (3)."""
    return RunState("p", None, ["3"], nodes={
        "4": NodeSpec("CheckpointLoader", {"ckpt_name": "a"}, "k4"),
        "10": NodeSpec("LoraLoader", {"model": ["4", 0], "clip": ["4", 1], "lora_name": "l"}, "k10"),
        "3": NodeSpec("ImageInvert", {"image": ["10", 0]}, "k3"),
    })


def test_the_worker_with_the_most_memory_to_spare(r: redis.Redis) -> None:
    worker(r, "gpu0", 20 * GIB)
    worker(r, "gpu1", 8 * GIB)
    assert roomiest_worker(farm(r)) == "gpu0"
    worker(r, "gpu0", 9 * GIB, models=[3 * GIB])  # holding models counts against it
    assert roomiest_worker(farm(r)) == "gpu1"
    r.zadd(keys.WORKERS, {"gpu1": time.time() - 60})  # a dead worker is no choice; one live: no choice at all
    assert roomiest_worker(farm(r)) is None


def test_a_new_load_goes_to_an_idle_worker_before_a_roomier_busy_one(r: redis.Redis) -> None:
    worker(r, "w0", 20 * GIB, running=1)
    worker(r, "w1", 8 * GIB)
    st = run()
    assert place_model_loads(farm(r), st, []) == []
    assert st.placed == {"4": "w1"}
    r.delete(keys.worker_running("w0"))  # both idle: the roomiest
    st = run()
    place_model_loads(farm(r), st, [])
    assert st.placed == {"4": "w0"}


def test_a_model_a_busy_worker_holds_is_loaded_again_on_an_idle_one_with_what_was_made_from_it(r: redis.Redis) -> None:
    worker(r, "w0", 20 * GIB, running=1)
    worker(r, "w1", 8 * GIB)
    worker(r, "w2", 30 * GIB, kind="cpu")  # idle, roomy, but another kind of device: never for a GPU's model
    st = run()
    st.holders.update({"4": "w0", "10": "w0"})
    assert place_model_loads(farm(r), st, ["4", "10"]) == []  # neither is cached any more: both made on w1
    assert st.placed == {"4": "w1"} and st.holders == {}
    st = run()  # NODEFARM_SPREAD_MODELS=0: the run queues on the holder
    st.holders.update({"4": "w0", "10": "w0"})
    assert place_model_loads(farm(r, spread=False), st, ["4", "10"]) == ["4", "10"] and st.placed == {}


def test_a_model_an_idle_worker_holds_stays_a_cache_hit(r: redis.Redis) -> None:
    worker(r, "w0", 20 * GIB)
    worker(r, "w1", 8 * GIB)
    st = run()
    st.holders.update({"4": "w0", "10": "w0"})
    assert place_model_loads(farm(r), st, ["4", "10"]) == ["4", "10"]
    assert st.placed == {} and st.holders == {"4": "w0", "10": "w0"}


def test_no_spare_worker_of_the_kind_keeps_the_run_on_the_holder(r: redis.Redis) -> None:
    worker(r, "w0", 20 * GIB, queued=2)
    worker(r, "w1", 8 * GIB, running=1)
    worker(r, "cpu0", 30 * GIB, kind="cpu")
    st = run()
    st.holders.update({"4": "w0", "10": "w0"})
    assert place_model_loads(farm(r), st, ["4", "10"]) == ["4", "10"] and st.placed == {}


def test_an_idle_worker_still_holding_the_model_is_preferred_and_a_blocklisted_one_is_skipped(r: redis.Redis) -> None:
    worker(r, "w0", 20 * GIB, running=1)
    worker(r, "w1", 16 * GIB)
    worker(r, "w2", 4 * GIB)
    worker(r, "w3", 30 * GIB)
    r.hset(keys.worker_models("w2"), "k4", json.dumps({"objects": ["ModelPatcher"], "bytes": GIB}))
    until = time.time() + 600
    r.hset(keys.BLOCKLIST, "w3", json.dumps({"since": time.time(), "until": until, "reason": "test", "failures": 3}))
    st = run()
    st.holders.update({"4": "w0", "10": "w0"})
    assert place_model_loads(farm(r), st, ["4", "10"]) == []
    assert st.placed == {"4": "w2"}  # its load is a hit in its own memory
