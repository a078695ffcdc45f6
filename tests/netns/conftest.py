"""The netns tier: a farm spread over four network namespaces (tests/netns/hosts.py).

Needs root, iproute2 and a kernel that allows ``ip netns add``; where any is missing every test of
the tier is skipped, and one line says why (even under ``-q``)."""

from __future__ import annotations

from collections.abc import Iterator

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


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory, netns_unavailable: str | None) -> Iterator[NetnsFarm]:
    """A four-host farm of the module's own (namespaces, bridge, Redis: booting one costs ~15 s), torn
    down even on failure. The test that cuts a link comes last and leaves it restored."""
    if netns_unavailable:
        pytest.skip(netns_unavailable)
    farm = NetnsFarm(tmp_path_factory.mktemp("netns"))
    try:
        yield farm
    finally:
        farm.stop()
