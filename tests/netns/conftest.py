"""The netns tier: a farm spread over four network namespaces (tests/netns/hosts.py).

Needs root, iproute2 and a kernel that allows ``ip netns add``; where any is missing every test of
the tier is skipped, and one line says why (even under ``-q``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.netns.hosts import NetnsFarm, unavailable


@pytest.fixture(scope="session")
def netns_unavailable(request: pytest.FixtureRequest) -> str | None:
    reason = unavailable()
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reason and reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():  # past the output capture, once per session
            reporter.write_line(f"\n{reason}")
    return reason


@pytest.fixture()
def hosts(tmp_path: Path, netns_unavailable: str | None) -> Iterator[NetnsFarm]:
    """A fresh four-host farm (its own namespaces, bridge and Redis), torn down even on failure."""
    if netns_unavailable:
        pytest.skip(netns_unavailable)
    farm = NetnsFarm(tmp_path)
    try:
        yield farm
    finally:
        farm.stop()
