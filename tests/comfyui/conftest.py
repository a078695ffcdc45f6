"""The real-ComfyUI tier: a farm started with ``--comfyui`` on ComfyUI 0.3.64 (``../shared/comfyui``,
or ``NODEFARM_TEST_COMFYUI``) running a tiny SD1.5 checkpoint built at test time.

When that ComfyUI folder is absent the whole tier is skipped, and the session header says why.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.farm import COMFYUI, ROOT, Farm, comfyui_missing

CHECKPOINT = "tiny-sd15.safetensors"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    reason = comfyui_missing()
    if reason is None:
        return
    for item in items:
        if "tests/comfyui/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder holding the tiny checkpoint and TAESD preview weights (every worker host has
    the models installed)."""
    models = Path(tmp_path_factory.mktemp("models"))
    build_checkpoint(models / "checkpoints" / CHECKPOINT, taesd_decoder=models / "vae_approx" / "taesd_decoder.safetensors")
    return models


def build_checkpoint(out: Path, seed: int = 0, taesd_decoder: Path | None = None) -> Path:
    extra = ["--taesd-decoder", str(taesd_decoder)] if taesd_decoder is not None else []
    subprocess.run([sys.executable, "-m", "api.cli.tiny_checkpoint", "--comfyui", str(COMFYUI), "--out", str(out),
                    "--seed", str(seed), *extra], cwd=ROOT, check=True, timeout=300)
    return out


def comfy_farm(tmp: Path, models: Path, workers: int = 2, args: str = "", **env: str) -> Farm:
    return Farm(tmp, workers=workers, env={
        "NODEFARM_COMFYUI": str(COMFYUI),
        "NODEFARM_COMFYUI_ARGS": args,
        "NODEFARM_MODELS_DIR": str(models),
        "NODEFARM_LOG_LEVEL": "WARNING",
        **env,
    })


@pytest.fixture(scope="session")
def cfarm(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[Farm]:
    """API + 2 workers on the real ComfyUI, TAESD latent previews on (shared by the tier; the last test
    of test_txt2img.py kills one of the workers)."""
    f = comfy_farm(Path(tmp_path_factory.mktemp("cfarm")), models_dir, args="--preview-method taesd")
    yield f
    f.stop()
