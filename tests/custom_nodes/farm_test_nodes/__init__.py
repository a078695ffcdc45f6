"""Test node pack: slow nodes, a node that kills its worker, marks written to a shared folder."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def _mark(name: str, text: str) -> None:
    folder = os.environ.get("NODEFARM_TEST_MARKS")
    if folder:
        with open(Path(folder) / name, "a") as fh:
            fh.write(text + "\n")


class TestSlowValue:
    """Sleeps, marking its start (worker name and pid) so a test can kill that worker."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("FLOAT", {"default": 1.0}), "seconds": ("FLOAT", {"default": 1.0}),
                             "tag": ("STRING", {"default": "slow"})}}

    RETURN_TYPES = ("FLOAT",)
    FUNCTION = "run"
    CATEGORY = "testing"

    def run(self, value, seconds, tag):
        _mark(tag, f"{os.environ.get('NODEFARM_WORKER_NAME')} {os.getpid()}")
        time.sleep(seconds)
        return (value,)


class TestKillWorker:
    """Kills the process running it, every time."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("FLOAT", {"default": 1.0})}}

    RETURN_TYPES = ("FLOAT",)
    FUNCTION = "run"
    CATEGORY = "testing"

    def run(self, value):
        _mark("killer", str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
        return (value,)


class TestFloatOutput:
    """An output node showing a float (so a run of float nodes has an output)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("FLOAT", {"forceInput": True})}, "optional": {"label": ("STRING", {"default": ""})}}

    RETURN_TYPES = ()
    FUNCTION = "run"
    OUTPUT_NODE = True
    CATEGORY = "testing"

    def run(self, value, label=""):
        return {"ui": {"text": [repr(value)]}}


class TestRaise:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("FLOAT", {"default": 1.0})}}

    RETURN_TYPES = ("FLOAT",)
    FUNCTION = "run"
    CATEGORY = "testing"

    def run(self, value):
        raise ValueError(f"broken on purpose ({value})")


class TestPreview:
    """Reports progress with a PNG preview, like a sampler's latent previews."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("FLOAT", {"default": 1.0})}}

    RETURN_TYPES = ("FLOAT",)
    FUNCTION = "run"
    CATEGORY = "testing"

    def run(self, value):
        import comfy.utils
        from PIL import Image

        bar = comfy.utils.ProgressBar(2)
        bar.update_absolute(1, 2, ("PNG", Image.new("RGB", (32, 16), (255, 0, 0)), 64))
        bar.update_absolute(2, 2)
        return (value,)


class TestOutOfMemory:
    """Runs out of GPU memory on the first ``fail_on`` workers that run it (a mark per try)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("FLOAT", {"default": 1.0}), "tag": ("STRING", {"default": "oom"}),
                             "fail_on": ("INT", {"default": 1})}}

    RETURN_TYPES = ("FLOAT",)
    FUNCTION = "run"
    CATEGORY = "testing"

    def run(self, value, tag, fail_on):
        import torch

        folder = os.environ.get("NODEFARM_TEST_MARKS")
        tries = (Path(folder) / tag).read_text().splitlines() if folder and (Path(folder) / tag).exists() else []
        _mark(tag, str(os.environ.get("NODEFARM_WORKER_NAME")))
        if len(tries) < fail_on:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB (test)")
        return (value,)


class TestBadWorker:
    """Fails only on the worker named ``bad_worker`` (a mark per try): ``kind`` "cuda" raises what a
    broken GPU raises, "value" an error that looks like the prompt's."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("FLOAT", {"default": 1.0}), "bad_worker": ("STRING", {"default": "w0@test"}),
                             "tag": ("STRING", {"default": "bad"}), "kind": (["cuda", "value"],)}}

    RETURN_TYPES = ("FLOAT",)
    FUNCTION = "run"
    CATEGORY = "testing"

    def run(self, value, bad_worker, tag, kind):
        here = str(os.environ.get("NODEFARM_WORKER_NAME"))
        _mark(tag, here)
        if here == bad_worker:
            if kind == "cuda":
                raise RuntimeError("CUDA error: an illegal memory access was encountered (test)")
            raise ValueError(f"broken on {here} only (test)")
        return (value,)


class _Opaque:
    """An object no codec writes: it stays in the memory of the worker that made it."""

    def __init__(self, value, worker):
        self.value, self.worker = value, worker


class TestOpaque:
    """Makes an in-memory-only object (like a MODEL): its consumers are routed to this worker."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("FLOAT", {"default": 1.0}), "tag": ("STRING", {"default": "opaque"})}}

    RETURN_TYPES = ("OPAQUE",)
    FUNCTION = "run"
    CATEGORY = "testing"

    def run(self, value, tag):
        here = str(os.environ.get("NODEFARM_WORKER_NAME"))
        _mark(tag, here)
        return (_Opaque(value, here),)


class TestOpaqueUse:
    """Reads an in-memory-only object (it waits for ``after``, so a test can act in between)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"opaque": ("OPAQUE",), "after": ("FLOAT", {"forceInput": True}),
                             "tag": ("STRING", {"default": "opaque-use"})}}

    RETURN_TYPES = ("FLOAT",)
    FUNCTION = "run"
    CATEGORY = "testing"

    def run(self, opaque, after, tag):
        _mark(tag, f"{os.environ.get('NODEFARM_WORKER_NAME')} made-by {opaque.worker}")
        return (opaque.value + after,)


NODE_CLASS_MAPPINGS = {
    "TestBadWorker": TestBadWorker,
    "TestOpaque": TestOpaque,
    "TestOpaqueUse": TestOpaqueUse,
    "TestOutOfMemory": TestOutOfMemory,
    "TestPreview": TestPreview,
    "TestSlowValue": TestSlowValue,
    "TestKillWorker": TestKillWorker,
    "TestFloatOutput": TestFloatOutput,
    "TestRaise": TestRaise,
}
NODE_DISPLAY_NAME_MAPPINGS = {"TestSlowValue": "Slow value (test)"}
