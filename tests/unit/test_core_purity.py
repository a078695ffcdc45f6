"""The pure core (nodes/core/) imports no I/O library: it is unit-tested with plain data and can be
read without knowing Redis, Celery, Flask or torch."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import nodes.core

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("redis", "celery", "kombu", "flask", "flask_socketio", "socketio", "torch", "numpy", "PIL", "worker", "api")


def core_modules() -> list[str]:
    return sorted(f"nodes.core.{m.name}" for m in pkgutil.iter_modules(nodes.core.__path__))


def test_the_core_has_the_modules_its_docstring_lists() -> None:
    listed = {line.split(":mod:`")[1].split("`")[0] for line in (nodes.core.__doc__ or "").splitlines() if ":mod:`" in line}
    assert listed == set(core_modules())


def test_no_core_module_imports_an_io_library() -> None:
    """Every core module imported in a fresh interpreter: none of FORBIDDEN gets loaded."""
    code = (
        "import importlib, json, sys\n"
        f"for name in {core_modules()!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_the_check_would_catch_an_import() -> None:
    """The same probe on a module that does import torch reports it (the test above can fail)."""
    code = "import sys, worker.codec; print([m for m in sys.modules if m.split('.')[0] == 'torch'][:1])"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert "torch" in result.stdout
