"""New model loads go to the worker with the most memory to spare; patchers go where their model is."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace
from typing import Any

from nodes.core.state import NodeSpec, RunState, route
from worker import keys
from worker.admission import loads_model, roomiest_worker


class CheckpointLoader:
    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {"required": {"ckpt_name": (["a.safetensors"],)}}

    RETURN_TYPES = ("MODEL", "CLIP", "VAE")


class LoraLoader:
    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {"required": {"model": ("MODEL",), "clip": ("CLIP",), "lora_name": (["l.safetensors"],)}}

    RETURN_TYPES = ("MODEL", "CLIP")


class ImageInvert:
    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {"required": {"image": ("IMAGE",)}}

    RETURN_TYPES = ("IMAGE",)


def test_a_loader_makes_a_model_from_constants_a_patcher_does_not() -> None:
    assert loads_model(CheckpointLoader)
    assert not loads_model(LoraLoader)
    assert not loads_model(ImageInvert)
    assert not loads_model(None)


class FakeRedis:
    """The two reads roomiest_worker makes (unit tier: no server)."""

    def __init__(self, infos: dict[str, dict], beats: dict[str, float]) -> None:
        self.infos, self.beats = infos, beats

    def zrangebyscore(self, key: str, low: float, high: Any) -> list[bytes]:
        assert key == keys.WORKERS
        return [n.encode() for n, t in self.beats.items() if t >= low]

    def mget(self, names: list[str]) -> list[bytes | None]:
        by_key = {keys.worker_info(n): json.dumps(i).encode() for n, i in self.infos.items()}
        return [by_key.get(k) for k in names]


def farm(infos: dict[str, dict], beats: dict[str, float]) -> Any:
    return SimpleNamespace(r=FakeRedis(infos, beats), settings=SimpleNamespace(heartbeat_s=2.0))


def info(free: int, models: list[int] = ()) -> dict:  # type: ignore[assignment]
    return {"devices": [{"vram_free": free}], "models": [{"bytes": b} for b in models]}


def test_the_worker_with_the_most_memory_to_spare_gets_the_load() -> None:
    now = time.time()
    gib = 2**30
    # gpu0 has more free VRAM; on a shared CPU host (equal free RAM) the one holding fewer models wins
    assert roomiest_worker(farm({"gpu0": info(20 * gib), "gpu1": info(8 * gib)}, {"gpu0": now, "gpu1": now})) == "gpu0"
    assert roomiest_worker(farm({"w0": info(16 * gib, [3 * gib]), "w1": info(16 * gib)}, {"w0": now, "w1": now})) == "w1"
    # a dead worker is no choice, and with one live worker there is no choice to make
    assert roomiest_worker(farm({"w0": info(1), "w1": info(99)}, {"w0": now, "w1": now - 60})) is None


def test_route_follows_a_held_input_first_then_the_placement() -> None:
    st = RunState("p", None, ["3"], nodes={
        "4": NodeSpec("CheckpointLoader", {"ckpt_name": "a"}, "k4"),
        "3": NodeSpec("KSampler", {"model": ["4", 0]}, "k3"),
    })
    st.placed["4"] = "w1"
    assert route(st, "4") == "w1"
    st.holders["4"] = "w1"
    assert route(st, "3") == "w1"
    assert route(RunState("p", None, ["4"], nodes={"4": st.nodes["4"]}), "4") is None
