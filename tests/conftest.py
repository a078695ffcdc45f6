from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.farm import COMFYUI, Farm, comfyui_missing


def pytest_sessionstart(session: pytest.Session) -> None:
    """One visible line (even with -q) saying whether the real-ComfyUI tier runs, and why not."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(comfyui_missing() or f"real-ComfyUI tier: ComfyUI at {COMFYUI}")


@pytest.fixture(scope="session")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    """One farm (API + 2 workers) shared by the integration tests that do not kill anything."""
    f = Farm(Path(tmp_path_factory.mktemp("farm")), workers=2)
    yield f
    f.stop()
