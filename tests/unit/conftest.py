"""Fixtures of the pure tier."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nodes.boot import install_compat
from nodes.settings import Settings


@pytest.fixture()
def fp(tmp_path: Path) -> Iterator[Any]:
    """ComfyUI's folder_paths configured on a temp base dir, with no farm hooks installed."""
    install_compat()
    from nodes.compat import folder_paths

    folder_paths.configure(Settings(base_dir=tmp_path))
    folder_paths.set_counter_hook(None)
    folder_paths.set_fetch_hook(None)
    yield folder_paths
    folder_paths.set_counter_hook(None)
    folder_paths.set_fetch_hook(None)
