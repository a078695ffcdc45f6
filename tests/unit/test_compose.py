"""docker-compose.yml and the Dockerfile describe the farm of DESIGN.md §4/§5 and agree with the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from api.cli import main as cli

REPO = Path(__file__).resolve().parents[2]
WORKERS = {"worker-gpu0": "0", "worker-gpu1": "1"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def services(compose: dict[str, Any]) -> dict[str, Any]:
    result = compose["services"]
    assert isinstance(result, dict)
    return result


def redis_options(service: dict[str, Any]) -> dict[str, str]:
    command = service["command"]
    assert command[0] == "redis-server"
    args = command[1:]
    return {args[i].lstrip("-"): args[i + 1] for i in range(0, len(args), 2)}


def test_services_present(compose: dict[str, Any]) -> None:
    assert set(services(compose)) == {"redis", "redis-cache", "api", *WORKERS}


def test_broker_redis_persists_and_never_evicts(compose: dict[str, Any]) -> None:
    redis = services(compose)["redis"]
    assert redis_options(redis) == {"appendonly": "yes", "appendfsync": "everysec", "maxmemory-policy": "noeviction"}
    assert any(v.endswith(":/data") for v in redis["volumes"])
    assert compose["volumes"] is not None and "redis-data" in compose["volumes"]


def test_result_redis_is_a_bounded_lru_cache_without_persistence(compose: dict[str, Any]) -> None:
    cache = services(compose)["redis-cache"]
    options = redis_options(cache)
    assert options == {"save": "", "appendonly": "no", "maxmemory": "2gb", "maxmemory-policy": "allkeys-lru"}
    assert "volumes" not in cache


def test_every_service_has_a_healthcheck(compose: dict[str, Any]) -> None:
    for name, service in services(compose).items():
        assert service["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name


def test_api_serves_8188_from_both_redis_roles(compose: dict[str, Any]) -> None:
    api = services(compose)["api"]
    assert api["command"][:2] == ["nodefarm", "api"]
    assert "8188:8188" in api["ports"]
    env = api["environment"]
    assert (env["NODEFARM_REDIS_URL"], env["NODEFARM_RESULT_REDIS_URL"]) == (
        "redis://redis:6379/0", "redis://redis-cache:6379/0")
    mounts = {v.split(":")[1] for v in api["volumes"]}
    assert {env["NODEFARM_OUTPUT_DIR"], env["NODEFARM_INPUT_DIR"]} <= mounts
    assert api["depends_on"] == {"redis": {"condition": "service_healthy"},
                                 "redis-cache": {"condition": "service_healthy"}}
    assert api["build"] == "."


@pytest.mark.parametrize(("name", "gpu"), sorted(WORKERS.items()))
def test_one_worker_per_gpu(compose: dict[str, Any], name: str, gpu: str) -> None:
    worker = services(compose)[name]
    assert worker["command"][:2] == ["nodefarm", "worker"]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "device_ids": [gpu], "capabilities": ["gpu"]}]
    env = worker["environment"]
    assert env["CUDA_VISIBLE_DEVICES"] == "0"  # the one reserved GPU is device 0 inside its container
    assert env["NODEFARM_REDIS_URL"] == "redis://redis:6379/0"
    assert env["NODEFARM_RESULT_REDIS_URL"] == "redis://redis-cache:6379/0"
    assert worker["depends_on"]["redis"] == {"condition": "service_healthy"}
    assert worker["image"] == services(compose)["api"]["image"]


@pytest.mark.parametrize("name", ["api", *sorted(WORKERS)])
def test_commands_parse_with_the_cli(compose: dict[str, Any], name: str) -> None:
    command = services(compose)[name]["command"]
    ns = cli.build_parser().parse_args(command[1:])
    assert ns.command == command[1]
    if ns.command == "worker":
        assert (ns.concurrency, ns.pool) == (1, "prefork")
        assert ns.name == f"gpu{WORKERS[name]}@%h"


def test_dockerfile_installs_torch_before_the_project() -> None:
    lines = [line.strip() for line in (REPO / "Dockerfile").read_text().splitlines()]
    assert lines[[line.startswith("FROM") for line in lines].index(True)] == "FROM python:3.11-slim"
    runs = [line for line in lines if line.startswith("RUN pip install")]
    assert "torch==" in runs[0]
    assert runs[-1].endswith("/app") and "torch" not in runs[-1]
