"""What a worker's heartbeat says about its GPUs, read with nvidia-smi (a fake one here)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from worker import heartbeat


def fake_smi(tmp_path: Path, csv: str) -> None:
    script = tmp_path / "nvidia-smi"
    script.write_text(f"#!/bin/sh\ncat <<'EOF'\n{csv}\nEOF\n")
    script.chmod(0o755)


def test_devices_report_vram_and_utilisation_of_the_visible_gpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_smi(tmp_path, "0, NVIDIA H200, 143771, 140000, 37\n1, NVIDIA H200, 143771, 100000, [N/A]")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    (only,) = heartbeat.gpu_devices()
    assert only["name"] == "cuda:0 NVIDIA H200" and only["utilization"] is None  # [N/A] on this board
    assert only["vram_free"] == 100000 * 1024 * 1024
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    first, second = heartbeat.gpu_devices()
    assert first["utilization"] == 37.0 and first["vram_total"] == 143771 * 1024 * 1024
    assert second["name"] == "cuda:1 NVIDIA H200"
