"""Where admission places a run's model loads (worker/admission.py place_model_loads), on a real Redis
holding worker heartbeats, their running and queued tasks, the models each holds and the blocklist:
a new load goes to the worker with the shortest queue of model runs; a model a busy worker holds is
loaded again on a worker of the same kind of device with a shorter queue (one still holding it first),
with what was made from it there; a batch of one model's runs alternates between two workers."""

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
from worker.admission import place_model_loads

GIB = 2**30


@pytest.fixture()
def r(tmp_path: Path) -> Iterator[redis.Redis]:
    with functions_redis(tmp_path / "redis") as client:
        yield client


def worker(r: redis.Redis, name: str, free: int, kind: str = "cuda", models: list[int] = (),  # type: ignore[assignment]
           beat: float | None = None) -> None:
    r.zadd(keys.WORKERS, {name: time.time() if beat is None else beat})
    r.set(keys.worker_info(name), json.dumps({"devices": [{"type": kind, "vram_free": free}],
                                              "models": [{"bytes": b} for b in models]}))


def farm(r: redis.Redis, spread: bool = True) -> Any:
    classes = {"CheckpointLoader": CheckpointLoader, "LoraLoader": LoraLoader, "ImageInvert": ImageInvert}
    return SimpleNamespace(r=r, settings=SimpleNamespace(heartbeat_s=2.0, spread_models=spread),
                           registry=SimpleNamespace(get=classes.get))


def run(pid: str = "p") -> RunState:
    """A checkpoint (4), a LoRA on it (10), a sampler-like consumer (3)."""
    return RunState(pid, None, ["3"], nodes={
        "4": NodeSpec("CheckpointLoader", {"ckpt_name": "a"}, "k4"),
        "10": NodeSpec("LoraLoader", {"model": ["4", 0], "clip": ["4", 1], "lora_name": "l"}, "k10"),
        "3": NodeSpec("ImageInvert", {"image": ["10", 0]}, "k3"),
    })


def test_without_spreading_a_new_load_goes_to_the_worker_with_the_most_memory_to_spare(r: redis.Redis) -> None:
    def placed() -> dict[str, str]:
        st = run()
        place_model_loads(farm(r, spread=False), st, [])
        return st.placed

    worker(r, "gpu0", 20 * GIB)
    worker(r, "gpu1", 8 * GIB)
    assert placed() == {"4": "gpu0"}
    worker(r, "gpu0", 9 * GIB, models=[3 * GIB])  # holding models counts against it
    assert placed() == {"4": "gpu1"}
    r.zadd(keys.WORKERS, {"gpu1": time.time() - 60})  # a dead worker is no choice; one live: no choice at all
    assert placed() == {}


def assigned(r: redis.Redis, name: str, pid: str, key: str = "k4", running: bool = True) -> None:
    """A run admission gave ``name`` the model work of (still running, or ended)."""
    r.zadd(keys.worker_runs(name), {f"{pid} {key}": time.time()})
    if running:
        r.zadd(keys.RUNNING, {pid: 1})


def placed_on(r: redis.Redis, pid: str, held_by: str | None) -> tuple[str, list[str]]:
    """Admit run ``pid`` (its checkpoint cached on ``held_by``, or new): where its model work goes."""
    st = run(pid)
    cached = ["4", "10"] if held_by else []
    if held_by:
        st.holders.update({"4": held_by, "10": held_by})
    r.zadd(keys.RUNNING, {pid: 1})
    left = place_model_loads(farm(r), st, cached)
    return st.placed.get("4", held_by or ""), left


def test_a_new_load_goes_to_the_worker_with_the_shortest_queue_then_the_roomiest(r: redis.Redis) -> None:
    worker(r, "w0", 20 * GIB)
    worker(r, "w1", 8 * GIB)
    assigned(r, "w0", "other")
    assert placed_on(r, "p1", None) == ("w1", [])
    r.delete(keys.worker_runs("w0"), keys.worker_runs("w1"))  # both free: the roomiest
    assert placed_on(r, "p2", None) == ("w0", [])
    assert r.zrange(keys.worker_runs("w0"), 0, -1) == [b"p2 k4"]  # the run is on w0's queue now


def test_a_model_a_busy_worker_holds_is_loaded_again_on_a_free_one_with_what_was_made_from_it(r: redis.Redis) -> None:
    worker(r, "w0", 20 * GIB)
    worker(r, "w1", 8 * GIB)
    worker(r, "w2", 30 * GIB, kind="cpu")  # free, roomy, but another kind of device: never for a GPU's model
    assigned(r, "w0", "other")
    st = run("p")
    st.holders.update({"4": "w0", "10": "w0"})
    r.zadd(keys.RUNNING, {"p": 1})
    assert place_model_loads(farm(r), st, ["4", "10"]) == []  # neither is cached any more: both made on w1
    assert st.placed == {"4": "w1"} and st.holders == {}
    st = run("q")  # NODEFARM_SPREAD_MODELS=0: the run queues on the holder
    st.holders.update({"4": "w0", "10": "w0"})
    assert place_model_loads(farm(r, spread=False), st, ["4", "10"]) == ["4", "10"] and st.placed == {}


def test_a_model_a_free_worker_holds_stays_a_cache_hit(r: redis.Redis) -> None:
    worker(r, "w0", 20 * GIB)
    worker(r, "w1", 8 * GIB)
    assert placed_on(r, "p", "w0") == ("w0", ["4", "10"])


def test_no_shorter_queue_of_the_kind_keeps_the_run_on_the_holder(r: redis.Redis) -> None:
    worker(r, "w0", 20 * GIB)
    worker(r, "w1", 8 * GIB)
    worker(r, "cpu0", 30 * GIB, kind="cpu")
    for name in ("w0", "w1"):
        assigned(r, name, f"a-{name}", key="other-model")
        assigned(r, name, f"b-{name}", key="other-model")
    assert placed_on(r, "p", "w0") == ("w0", ["4", "10"])  # 2 runs each: w1 would add a load


def test_a_free_worker_still_holding_the_model_is_preferred_and_a_blocklisted_one_is_skipped(r: redis.Redis) -> None:
    worker(r, "w0", 20 * GIB)
    worker(r, "w1", 16 * GIB)
    worker(r, "w2", 4 * GIB)
    worker(r, "w3", 30 * GIB)
    assigned(r, "w0", "other")
    r.hset(keys.worker_models("w2"), "k4", json.dumps({"objects": ["ModelPatcher"], "bytes": GIB}))
    r.hset(keys.BLOCKLIST, "w3", json.dumps({"since": time.time(), "until": time.time() + 600, "reason": "test",
                                             "failures": 3}))
    assert placed_on(r, "p", "w0") == ("w2", [])  # its load is a hit in its own memory


def test_ended_runs_leave_the_queues(r: redis.Redis) -> None:
    worker(r, "w0", 20 * GIB)
    worker(r, "w1", 8 * GIB)
    assigned(r, "w0", "ended", running=False)
    assert placed_on(r, "p", "w0") == ("w0", ["4", "10"])
    assert r.zrange(keys.worker_runs("w0"), 0, -1) == [b"p k4"]


def test_a_batch_of_one_models_runs_alternates_between_two_workers(r: redis.Redis) -> None:
    worker(r, "w0", 20 * GIB)
    worker(r, "w1", 20 * GIB)
    where = [placed_on(r, f"run{i}", "w0")[0] for i in range(6)]  # admitted one after another, none ended
    assert where == ["w0", "w1", "w0", "w1", "w0", "w1"]


def test_a_second_copy_goes_only_where_it_fits(r: redis.Redis) -> None:
    worker(r, "w0", 20 * GIB)
    worker(r, "w1", 4 * GIB)  # free, but the model is 6 GiB
    worker(r, "w2", 7 * GIB)
    assigned(r, "w0", "other")
    r.hset(keys.worker_models("w0"), "k4", json.dumps({"objects": ["ModelPatcher"], "bytes": 6 * GIB}))
    assert placed_on(r, "p", "w0") == ("w2", [])
    r.delete(keys.worker_info("w2"))  # without w2, no worker takes a copy: the run stays with the holder
    assert placed_on(r, "q", "w0") == ("w0", ["4", "10"])
