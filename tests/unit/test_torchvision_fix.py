"""torchvision imports in every farm process, even where its C++ operators cannot load."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from tests.farm import ROOT


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_torchvision_imports_after_the_fix() -> None:
    if importlib.util.find_spec("torchvision") is None:  # `make venv` installs it
        pytest.skip("torchvision is not installed here")
    got = run("from nodes import torchvision_fix; torchvision_fix.without_ops()\n"
              "import torchvision.transforms as T, torchvision.ops\nprint('ok', T.Resize.__name__)")
    assert got.returncode == 0, got.stderr
    assert "ok Resize" in got.stdout
    plain = run("import torchvision")
    if plain.returncode != 0:  # this environment has the broken pair: the fix is what made it work
        assert "torchvision::nms" in plain.stderr
