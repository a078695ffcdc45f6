"""docker-compose.yml and the Dockerfile describe the farm of DESIGN.md §4/§5 and agree with the CLI;
a real Compose implementation (Debian's ``docker-compose``, which ``make test`` installs, or the
``docker compose`` plugin) accepts the file (issue 11, item 6). Building and running the images needs a
Docker engine, which these machines do not have: the README documents ``docker compose build`` / ``up``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from api.cli import main as cli

REPO = Path(__file__).resolve().parents[2]
WORKERS = {"worker-gpu0": "0", "worker-gpu1": "1"}
BROKER = "redis://redis:6379/0"


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
    assert set(services(compose)) == {"redis", "redis-cache", "api", *WORKERS, "flower", "prometheus"}


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
    froms = [line for line in lines if line.startswith("FROM")]
    assert froms == ["FROM node:20-slim AS dashboard", "FROM python:3.11-slim"]  # the image is the last stage
    assert "COPY --from=dashboard /dashboard/dist /app/frontend/dashboard/dist" in lines  # the built dashboard
    runs = [line for line in lines if line.startswith("RUN pip install")]
    assert "torch==" in runs[0]
    assert runs[-1].endswith('"/app[flower]"') and "torch" not in runs[-1]  # the flower service runs this image


# ---- Flower and Prometheus -----------------------------------------------------------------------


def test_flower_watches_the_broker_from_the_farm_image(compose: dict[str, Any]) -> None:
    flower = services(compose)["flower"]
    assert flower["image"] == services(compose)["api"]["image"] and flower["build"] == "."
    assert flower["command"] == ["celery", f"--broker={BROKER}", "flower", "--port=5555", "--address=0.0.0.0"]
    assert flower["ports"] == ["127.0.0.1:5555:5555"]  # its API has no login: this host only
    assert flower["depends_on"]["redis"] == {"condition": "service_healthy"}
    assert "/healthcheck" in " ".join(flower["healthcheck"]["test"])


def test_prometheus_scrapes_the_api_metrics(compose: dict[str, Any]) -> None:
    prometheus = services(compose)["prometheus"]
    mount = next(v for v in prometheus["volumes"] if v.endswith("/etc/prometheus/prometheus.yml:ro"))
    config = yaml.safe_load((REPO / mount.split(":")[0]).read_text())
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"] == [{"targets": ["api:8188"]}]
    assert "8188:8188" in services(compose)["api"]["ports"]
    assert prometheus["depends_on"] == {"api": {"condition": "service_healthy"}}
    assert "/-/healthy" in " ".join(prometheus["healthcheck"]["test"])


# ---- a real Compose implementation ---------------------------------------------------------------


def compose_command() -> list[str]:
    if (found := shutil.which("docker-compose")) is not None:
        return [found]
    docker = shutil.which("docker")
    if docker is not None and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    pytest.fail("no Compose implementation to check docker-compose.yml with: `make test` installs Debian's "
                "docker-compose (or run `apt-get install docker-compose`, or install the docker compose plugin)")


def compose_config(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*compose_command(), "-f", str(path), "config"], capture_output=True, text=True,
                          timeout=120, cwd=path.parent, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def resolved() -> dict[str, Any]:
    """docker-compose.yml as Compose itself reads it (anchors merged, defaults filled in, paths resolved)."""
    out = compose_config(REPO / "docker-compose.yml")
    assert out.returncode == 0, f"docker-compose config refused docker-compose.yml:\n{out.stderr}"
    data = yaml.safe_load(out.stdout)
    assert isinstance(data, dict)
    return data


def test_compose_accepts_the_file_with_every_service(resolved: dict[str, Any]) -> None:
    assert set(resolved["services"]) == {"redis", "redis-cache", "api", *WORKERS, "flower", "prometheus"}
    assert set(resolved["volumes"]) == {"redis-data", "prometheus-data"}
    for name, service in resolved["services"].items():
        assert service["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name
        assert service["restart"] == "unless-stopped", name


@pytest.mark.parametrize(("name", "gpu"), sorted(WORKERS.items()))
def test_compose_reserves_one_gpu_per_worker(resolved: dict[str, Any], name: str, gpu: str) -> None:
    worker = resolved["services"][name]
    (device,) = worker["deploy"]["resources"]["reservations"]["devices"]
    assert (device["capabilities"], device["device_ids"], device["driver"]) == (["gpu"], [gpu], "nvidia")
    env = worker["environment"]  # the shared anchors, merged
    assert (env["NODEFARM_REDIS_URL"], env["CUDA_VISIBLE_DEVICES"]) == (BROKER, "0")
    assert worker["build"]["context"] == str(REPO)


def test_compose_keeps_the_redis_roles_apart(resolved: dict[str, Any]) -> None:
    state, cache = resolved["services"]["redis"], resolved["services"]["redis-cache"]
    assert redis_options(state)["appendfsync"] == "everysec" and redis_options(state)["maxmemory-policy"] == "noeviction"
    assert redis_options(cache)["maxmemory-policy"] == "allkeys-lru" and redis_options(cache)["appendonly"] == "no"
    assert [v["target"] if isinstance(v, dict) else v.split(":")[1] for v in state["volumes"]] == ["/data"]


def test_compose_refuses_a_broken_file(tmp_path: Path) -> None:
    """The check above can fail: the same file with a misspelt key is refused."""
    broken = (REPO / "docker-compose.yml").read_text().replace("    healthcheck:\n", "    healthchek:\n", 1)
    (tmp_path / "docker-compose.yml").write_text(broken)
    out = compose_config(tmp_path / "docker-compose.yml")
    assert out.returncode != 0 and "healthchek" in out.stderr, out.stderr
