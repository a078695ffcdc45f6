"""comfy.model_management, comfy.utils and node_helpers as custom nodes use them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from nodes.boot import install_compat


@pytest.fixture()
def mm() -> Iterator[Any]:
    install_compat()
    from nodes.compat.comfy import model_management

    model_management.interrupt_current_processing(False)
    model_management.set_interrupt_probe(None)
    yield model_management
    model_management.interrupt_current_processing(False)
    model_management.set_interrupt_probe(None)
    model_management.configure(False)


@pytest.fixture()
def cu() -> Iterator[Any]:
    install_compat()
    from nodes.compat.comfy import utils

    yield utils
    utils.set_progress_bar_global_hook(None)


def test_comfyui_names_alias_the_compat_modules(mm: Any, cu: Any) -> None:
    import comfy.model_management  # type: ignore[import-not-found]
    import comfy.utils  # type: ignore[import-not-found]

    assert comfy.model_management is mm and comfy.utils is cu


def test_devices(mm: Any) -> None:
    mm.configure(True)
    assert mm.cpu_mode() and mm.get_torch_device() == torch.device("cpu")
    assert mm.vae_device() == torch.device("cpu") and mm.text_encoder_device() == torch.device("cpu")
    assert mm.intermediate_device() == torch.device("cpu") == mm.unet_offload_device()
    mm.configure(False)
    assert not mm.cpu_mode()
    assert mm.get_torch_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert mm.is_device_cuda(torch.device("cuda", 0)) and not mm.is_device_cuda(torch.device("cpu"))
    assert mm.get_free_memory(torch.device("cpu")) > 0
    total, torch_total = mm.get_total_memory(torch.device("cpu"), torch_total_too=True)
    assert total >= mm.get_free_memory(torch.device("cpu")) and torch_total > 0
    assert mm.OOM_EXCEPTION is torch.cuda.OutOfMemoryError and mm.DISABLE_SMART_MEMORY is False
    assert mm.load_models_gpu([object()]) is None
    mm.soft_empty_cache()
    mm.unload_all_models()


def test_interrupt_flag_raises_once_and_resets(mm: Any) -> None:
    mm.throw_exception_if_processing_interrupted()
    mm.interrupt_current_processing()
    assert mm.processing_interrupted()
    with pytest.raises(mm.InterruptProcessingException):
        mm.throw_exception_if_processing_interrupted()
    assert not mm.processing_interrupted()
    mm.throw_exception_if_processing_interrupted()


def test_interrupt_probe(mm: Any) -> None:
    answers = [False, True]
    mm.set_interrupt_probe(lambda: answers.pop(0))
    mm.throw_exception_if_processing_interrupted()
    with pytest.raises(mm.InterruptProcessingException):
        mm.throw_exception_if_processing_interrupted()
    assert answers == []


def test_progress_bar_reports_to_the_hook(cu: Any) -> None:
    calls: list[tuple[Any, ...]] = []
    cu.set_progress_bar_global_hook(lambda v, t, p, node_id=None: calls.append((v, t, p, node_id)))
    bar = cu.ProgressBar(10, node_id="7")
    bar.update(3)
    bar.update(4)
    bar.update_absolute(50, total=20, preview="img")
    bar.update_absolute(99)
    assert calls == [(3, 10, None, "7"), (7, 10, None, "7"), (20, 20, "img", "7"), (20, 20, None, "7")]
    cu.set_progress_bar_global_hook(None)
    cu.ProgressBar(2).update(1)  # no hook: nothing happens
    assert len(calls) == 4


def test_common_upscale_and_helpers(cu: Any) -> None:
    x = torch.rand(2, 3, 8, 12, generator=torch.Generator().manual_seed(0))
    for method in ("nearest-exact", "bilinear", "area", "bicubic", "lanczos", "bislerp"):
        assert cu.common_upscale(x, 6, 4, method, "disabled").shape == (2, 3, 4, 6), method
    assert cu.common_upscale(x, 4, 4, "nearest-exact", "center").shape == (2, 3, 4, 4)
    assert torch.allclose(cu.lanczos(x, 12, 8), torch.round(x * 255) / 255, atol=1 / 255 + 1e-6)
    assert cu.repeat_to_batch_size(torch.arange(3), 7).tolist() == [0, 1, 2, 0, 1, 2, 0]
    assert cu.repeat_to_batch_size(torch.arange(3), 2).tolist() == [0, 1]
    mask = cu.reshape_mask(torch.ones(1, 4, 4), (3, 2, 8, 8))
    assert mask.shape == (3, 2, 8, 8) and float(mask.min()) == 1.0


def test_load_torch_file_and_header(cu: Any, tmp_path: Path) -> None:
    import safetensors.torch

    sd = {"w": torch.arange(4, dtype=torch.float32)}
    safetensors.torch.save_file(sd, str(tmp_path / "m.safetensors"), metadata={"k": "v"})
    torch.save({"state_dict": sd}, str(tmp_path / "m.ckpt"))
    assert torch.equal(cu.load_torch_file(str(tmp_path / "m.safetensors"))["w"], sd["w"])
    assert torch.equal(cu.load_torch_file(str(tmp_path / "m.ckpt"))["w"], sd["w"])
    _, meta = cu.load_torch_file(str(tmp_path / "m.safetensors"), return_metadata=True)
    assert meta == {"k": "v"}
    assert b'"w"' in cu.safetensors_header(str(tmp_path / "m.safetensors"))
    assert cu.safetensors_header(str(tmp_path / "m.safetensors"), max_size=4) is None


def test_node_helpers(tmp_path: Path) -> None:
    install_compat()
    from nodes.compat import node_helpers

    cond = [[torch.zeros(1), {"a": [1]}]]
    out = node_helpers.conditioning_set_values(cond, {"a": [2], "b": 3}, append=True)
    assert out[0][1] == {"a": [1, 2], "b": 3} and cond[0][1] == {"a": [1]}
    assert node_helpers.conditioning_set_values(cond, {"a": [2]})[0][1] == {"a": [2]}
    assert node_helpers.hasher()(b"x").hexdigest() == __import__("hashlib").sha256(b"x").hexdigest()
    assert node_helpers.string_to_torch_dtype("bf16") is torch.bfloat16
    dest, src = node_helpers.image_alpha_fix(torch.zeros(1, 2, 2, 4), torch.zeros(1, 2, 2, 3))
    assert src.shape[-1] == 4 and float(src[..., 3].min()) == 1.0
    dest, src = node_helpers.image_alpha_fix(torch.zeros(1, 2, 2, 3), torch.zeros(1, 2, 2, 4))
    assert src.shape[-1] == 3
    # a truncated PNG loads on the retry with LOAD_TRUNCATED_IMAGES, which is restored afterwards
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "t.png")
    data = (tmp_path / "t.png").read_bytes()
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])

    def load(p: Path) -> Image.Image:
        return Image.open(p).convert("RGB")

    with pytest.raises(OSError, match="truncated"):
        load(tmp_path / "t.png")
    img = node_helpers.pillow(load, tmp_path / "t.png")
    assert img.size == (64, 64) and ImageFile.LOAD_TRUNCATED_IMAGES is False
