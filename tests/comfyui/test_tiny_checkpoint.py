"""``nodefarm tiny-checkpoint`` (api/cli/tiny_checkpoint.py) on the real ComfyUI: the same seed gives
the same file, byte for byte, and ComfyUI's checkpoint loader takes it for SD1.5 and samples with it.

Building and loading run in subprocesses, so ComfyUI's globals stay out of the pytest process.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors import safe_open

from api.cli import tiny_checkpoint
from tests.farm import COMFYUI, ROOT, comfyui_missing

MISSING = comfyui_missing()
pytestmark = [
    pytest.mark.skipif(MISSING is not None, reason=MISSING or ""),
    pytest.mark.timeout(120),
]


def tiny(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "api.cli.tiny_checkpoint", "--comfyui", str(COMFYUI), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=100)


def build(out: Path, seed: int = 0) -> str:
    done = tiny("--out", str(out), "--seed", str(seed))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(out.resolve())
    return hashlib.sha256(out.read_bytes()).hexdigest()


def test_same_seed_same_bytes_and_comfyui_loads_it_as_sd15(tmp_path: Path) -> None:
    first, again = tmp_path / "a" / "tiny.safetensors", tmp_path / "b.safetensors"
    assert build(first, seed=7) == build(again, seed=7)
    with safe_open(str(first), "pt") as f:
        assert json.loads(f.metadata()["nodefarm.tiny_checkpoint"])["seed"] == 7

    done = tiny("--out", str(first), "--check", "--seed", "7")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["model_config"] == "SD15"
    assert report["vae"] == "TAESD"
    assert report["parameters"] == {"unet": 18_733_124, "clip": 123_060_480, "vae": 2_445_065}
    assert report["file_bytes"] < 300_000_000
    assert report["cond_shape"] == [1, 77, 768] and report["cond_finite"]
    assert report["image_shape"] == [1, 64, 64, 3] and report["image_finite"]
    assert report["image_std"] > 0.05  # visible noise, not a black square
    assert "clip missing" not in done.stderr  # the text encoder's keys are the ones ComfyUI expects


def test_usage_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("NODEFARM_COMFYUI", raising=False)
    with pytest.raises(SystemExit) as exc:
        tiny_checkpoint.main(["--out", str(tmp_path / "x.safetensors")])
    assert exc.value.code == 2 and "--comfyui DIR is required" in capsys.readouterr().err

    assert tiny_checkpoint.main(["--comfyui", str(tmp_path), "--out", str(tmp_path / "x.safetensors")]) == 1
    assert "not a ComfyUI checkout" in capsys.readouterr().err
    assert not (tmp_path / "x.safetensors").exists()
