"""Which classes load a model (a patcher goes where its model is), and routing by holder, then placement.
(Where admission places loads, on a real Redis: tests/integration/test_model_spread.py.)"""

from __future__ import annotations

from nodes.core.state import NodeSpec, RunState, route
from worker.admission import loads_model


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
