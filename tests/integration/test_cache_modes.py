"""ComfyUI's cache modes besides the farm-wide cache: classic and none (and LRU)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.farm import Farm, WsClient

pytestmark = pytest.mark.integration


def chain(value: float) -> dict:
    return {
        "1": {"class_type": "PrimitiveFloat", "inputs": {"value": value}},
        "2": {"class_type": "MathOperation", "inputs": {"a": ["1", 0], "b": 1.0, "operation": "add"}},
        "3": {"class_type": "TestFloatOutput", "inputs": {"value": ["2", 0]}},
    }


def ran(farm: Farm, prompt: dict) -> list[str]:
    ws = WsClient(farm.url)
    pid = farm.submit(prompt, client_id=ws.client_id)
    nodes = [m["data"]["node"] for m in ws.until_done(pid) if m["type"] == "executing" and m["data"]["node"]]
    ws.close()
    return sorted(nodes)


@pytest.mark.parametrize(
    ("mode", "env", "expect_a_again"),
    [
        ("farm", {}, []),  # every result stays shared
        ("classic", {"NODEFARM_CACHE": "classic"}, ["1", "2", "3"]),  # B evicted what A had
        ("lru", {"NODEFARM_CACHE": "lru", "NODEFARM_CACHE_LRU": "3"}, ["1", "2", "3"]),  # 3 entries: B pushed A out
        ("none", {"NODEFARM_CACHE": "none"}, ["1", "2", "3"]),
    ],
)
def test_cache_mode(tmp_path: Path, mode: str, env: dict[str, str], expect_a_again: list[str]) -> None:
    farm = Farm(tmp_path, workers=1, env=env)
    try:
        assert ran(farm, chain(1.0)) == ["1", "2", "3"]
        again = [] if mode != "none" else ["1", "2", "3"]
        assert ran(farm, chain(1.0)) == again  # identical resubmission
        assert ran(farm, chain(5.0)) == ["1", "2", "3"]
        assert ran(farm, chain(1.0)) == expect_a_again
    finally:
        farm.stop()
