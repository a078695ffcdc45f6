"""``--gpus all|0,1,3``: listing this host's GPUs with nvidia-smi, honouring CUDA_VISIBLE_DEVICES,
pinning one worker per GPU (``gpuN@host``, its own CUDA_VISIBLE_DEVICES) and the CPU fallback line.

No GPU here: a fake ``nvidia-smi`` (a shell script in tmp_path, first on PATH) prints the CSV a real
one prints, and records the arguments it was called with.
"""

from __future__ import annotations

import os
import stat
import types
from pathlib import Path
from typing import Any

import pytest

from api.cli import gpus, supervisor
from api.cli import main as cli

H200 = "NVIDIA H200"
LISTING = (
    f"0, {H200}, 143771 MiB, GPU-aaaaaaaa-0000-0000-0000-000000000000\n"
    f"1, {H200}, 143771 MiB, GPU-bbbbbbbb-0000-0000-0000-000000000000\n"
    "2, NVIDIA A100-SXM4-40GB, 40960 MiB, GPU-cccccccc-0000-0000-0000-000000000000\n"
)


def fake_nvidia_smi(bin_dir: Path, listing: str = LISTING, code: int = 0, stderr: str = "") -> Path:
    """An executable ``nvidia-smi`` that prints ``listing`` (and ``stderr``), exits ``code`` and
    appends its arguments to ``calls`` beside it."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "nvidia-smi"
    (bin_dir / "listing.csv").write_text(listing)
    (bin_dir / "stderr.txt").write_text(stderr)
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> "{bin_dir}/calls"\n'
        f'/bin/cat "{bin_dir}/listing.csv"\n'
        + f'/bin/cat "{bin_dir}/stderr.txt" >&2\n'
        + f"exit {code}\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return bin_dir


@pytest.fixture
def on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH of only tmp_path/bin (no real nvidia-smi can answer) and no inherited CUDA_VISIBLE_DEVICES."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return bin_dir


# ---- listing ---------------------------------------------------------------------------------


def test_lists_every_gpu_with_name_and_memory_from_nvidia_smi(on_path: Path) -> None:
    fake_nvidia_smi(on_path)
    listing = gpus.list_gpus()
    assert [(g.index, g.name, g.memory_mib) for g in listing.gpus] == [
        ("0", H200, 143771), ("1", H200, 143771), ("2", "NVIDIA A100-SXM4-40GB", 40960)]
    assert listing.problem is None and listing.checked
    (call,) = (on_path / "calls").read_text().splitlines()
    assert "--query-gpu=index,name,memory.total" in call and "--format=csv,noheader" in call


def test_the_three_column_csv_of_the_documented_query_parses_too() -> None:
    assert gpus.parse_csv("0, Tesla T4, 15360 MiB\nNo devices were found\n") == (
        gpus.Gpu("0", "Tesla T4", 15360),)
    assert gpus.parse_csv("No devices were found\n") == ()


def test_an_inherited_cuda_visible_devices_limits_and_orders_the_gpus(on_path: Path) -> None:
    fake_nvidia_smi(on_path)
    assert [g.index for g in gpus.list_gpus({"CUDA_VISIBLE_DEVICES": "2,0"}).gpus] == ["2", "0"]
    by_uuid = gpus.list_gpus({"CUDA_VISIBLE_DEVICES": "GPU-bbbbbbbb-0000-0000-0000-000000000000"})
    assert [(g.index, g.name) for g in by_uuid.gpus] == [("1", H200)]
    # a MIG slice nvidia-smi --query-gpu does not list is kept as it is, and pinned by its UUID
    (mig,) = gpus.list_gpus({"CUDA_VISIBLE_DEVICES": "MIG-1234abcd-5678"}).gpus
    assert (mig.cuda_visible_devices, mig.worker) == ("MIG-1234abcd-5678", "gpu-1234abcd-567")
    for hidden in ("", "-1"):
        listing = gpus.list_gpus({"CUDA_VISIBLE_DEVICES": hidden})
        assert listing.gpus == () and "hides every GPU" in str(listing.problem)


def test_gpus_all_pins_one_worker_per_gpu_named_after_its_index(on_path: Path) -> None:
    fake_nvidia_smi(on_path)
    assert gpus.pinning(gpus.resolve("all", {})) == (("gpu0", "gpu1", "gpu2"), ("0", "1", "2"))
    assert gpus.pinning(gpus.resolve("2, 0,2", {})) == (("gpu2", "gpu0"), ("2", "0"))
    # names are nvidia-smi indices even when CUDA_VISIBLE_DEVICES hands us a subset
    assert gpus.pinning(gpus.resolve("all", {"CUDA_VISIBLE_DEVICES": "1,2"})) == (("gpu1", "gpu2"), ("1", "2"))


def test_a_gpu_the_host_does_not_have_is_an_error_that_lists_the_ones_it_has(on_path: Path) -> None:
    fake_nvidia_smi(on_path)
    with pytest.raises(gpus.GpuError) as exc:
        gpus.resolve("0,3", {})
    assert "no GPU 3" in str(exc.value) and "GPU 2 (NVIDIA A100-SXM4-40GB, 40960 MiB)" in str(exc.value)
    with pytest.raises(gpus.GpuError, match="no GPU 0"):  # hidden by the inherited CUDA_VISIBLE_DEVICES
        gpus.resolve("0", {"CUDA_VISIBLE_DEVICES": "1,2"})
    with pytest.raises(gpus.GpuError, match="expected 'all'"):
        gpus.resolve("0,,1", {})


def test_all_without_a_gpu_falls_back_to_cpu_with_one_clear_line(on_path: Path) -> None:
    selection = gpus.resolve("all", {})  # nothing on PATH
    assert selection.gpus == ()
    assert selection.note == "--gpus all: no GPU found (nvidia-smi is not on PATH); starting CPU workers instead"
    fake_nvidia_smi(on_path, listing="", code=9,
                    stderr="NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.")
    note = str(gpus.resolve("all", {}).note)
    assert "no GPU found (nvidia-smi failed: NVIDIA-SMI has failed" in note and note.endswith("CPU workers instead")


def test_explicit_gpus_without_nvidia_smi_are_pinned_unchecked_and_said_so(on_path: Path) -> None:
    selection = gpus.resolve("0,1", {})
    assert gpus.pinning(selection) == (("gpu0", "gpu1"), ("0", "1"))
    assert "nvidia-smi is not on PATH; pinning workers to GPU 0,1 unchecked" in str(selection.note)


# ---- the commands ----------------------------------------------------------------------------


def record_plans(monkeypatch: pytest.MonkeyPatch) -> list[supervisor.FarmPlan]:
    plans: list[supervisor.FarmPlan] = []
    monkeypatch.setattr(supervisor, "run_farm", lambda plan: plans.append(plan) or 0)
    return plans


def test_worker_gpus_supervises_one_pinned_worker_per_gpu(on_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    fake_nvidia_smi(on_path)
    plans = record_plans(monkeypatch)
    monkeypatch.delenv("NODEFARM_RESULT_REDIS_URL", raising=False)
    assert cli.main(["worker", "--gpus", "0,2", "--redis-url", "redis://farm:6379/0", "--queues", "shared",
                     "--pool", "solo"]) == 0
    (plan,) = plans
    assert (plan.api, plan.workers, plan.names, plan.gpus) == (False, 2, ("gpu0", "gpu2"), ("0", "2"))
    assert plan.redis_url == "redis://farm:6379/0"
    assert plan.env["NODEFARM_RESULT_REDIS_URL"] == "redis://farm:6379/0"
    assert plan.worker_args == ("--queues", "shared", "--concurrency", "1", "--pool", "solo")
    children = [supervisor.worker_env(plan, {"CUDA_VISIBLE_DEVICES": "0,1,2"}, i, "box") for i in range(2)]
    assert [(c["NODEFARM_WORKER_NAME"], c["CUDA_VISIBLE_DEVICES"]) for c in children] == [
        ("gpu0@box", "0"), ("gpu2@box", "2")]
    assert capsys.readouterr().err == ""


def test_worker_gpus_all_without_gpu_starts_one_cpu_worker_and_says_so(
        on_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    plans = record_plans(monkeypatch)
    assert cli.main(["worker", "--gpus", "all", "--redis-url", "redis://farm:6379/0"]) == 0
    (plan,) = plans
    assert (plan.api, plan.workers, plan.names, plan.gpus) == (False, 1, ("cpu0",), ())
    err = capsys.readouterr().err.splitlines()
    assert err == ["nodefarm worker: --gpus all: no GPU found (nvidia-smi is not on PATH); starting CPU workers instead"]


def test_up_gpus_runs_one_worker_per_gpu_beside_the_api(on_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    fake_nvidia_smi(on_path)
    plans = record_plans(monkeypatch)
    monkeypatch.delenv("NODEFARM_REDIS_URL", raising=False)
    assert cli.main(["up", "--gpus", "all"]) == 0
    assert cli.main(["up", "--gpus", "1"]) == 0
    assert cli.main(["up", "--gpus", "all", "--workers", "5"]) == 0  # --workers: only when no GPU is found
    fake_nvidia_smi(on_path, listing="")  # a host without GPUs: --workers CPU workers (default 2)
    assert cli.main(["up", "--gpus", "all"]) == 0
    assert cli.main(["up", "--gpus", "all", "--workers", "3"]) == 0
    assert [(p.api, p.workers, p.names, p.gpus) for p in plans] == [
        (True, 3, ("gpu0", "gpu1", "gpu2"), ("0", "1", "2")), (True, 1, ("gpu1",), ("1",)),
        (True, 3, ("gpu0", "gpu1", "gpu2"), ("0", "1", "2")), (True, 2, (), ()), (True, 3, (), ())]
    assert capsys.readouterr().err.count("starting CPU workers instead") == 2


@pytest.mark.parametrize(("argv", "message"), [
    (["worker", "--gpus", "7"], "this host has no GPU 7"),
    (["worker", "--gpus", "0", "--name", "x@%h"], "--name cannot be combined with --gpus"),
    (["up", "--gpus", "0", "--cpu"], "--gpus and --cpu exclude each other"),
])
def test_gpus_mistakes_exit_2_with_one_line(argv: list[str], message: str, on_path: Path,
                                            monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    fake_nvidia_smi(on_path)
    plans = record_plans(monkeypatch)
    assert cli.main(argv) == 2
    assert plans == []
    assert message in capsys.readouterr().err


def test_the_supervisor_starts_named_pinned_workers_and_no_api_for_worker_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    spawned: dict[str, tuple[list[str], dict[str, str]]] = {}

    def spawn(name: str, argv: list[str], env: dict[str, str], out: supervisor.Output) -> Any:
        spawned[name] = (argv, env)
        return types.SimpleNamespace(name=name)

    waited: list[list[str]] = []
    monkeypatch.setattr(supervisor, "spawn", spawn)
    monkeypatch.setattr(supervisor.Farm, "_wait_until_up", lambda self, url, workers: waited.append(workers))
    monkeypatch.setattr(supervisor.socket, "gethostname", lambda: "box")
    plan = supervisor.FarmPlan(env={}, host="127.0.0.1", port=0, workers=2, redis_url="redis://farm:1/0",
                               gpus=("0", "2"), names=("gpu0", "gpu2"), api=False, worker_args=("--pool", "solo"))
    supervisor.Farm(plan)._start()
    assert sorted(spawned) == ["gpu0", "gpu2"]  # no api, no redis-server
    argv, env = spawned["gpu2"]
    assert argv[-3:] == ["worker", "--pool", "solo"]
    assert (env["NODEFARM_WORKER_NAME"], env["CUDA_VISIBLE_DEVICES"], env["NODEFARM_REDIS_URL"]) == (
        "gpu2@box", "2", "redis://farm:1/0")
    assert waited == [["gpu0@box", "gpu2@box"]]


def test_workers_without_an_api_need_a_redis_url() -> None:
    plan = supervisor.FarmPlan(env={}, host="127.0.0.1", port=0, workers=1, api=False)
    with pytest.raises(supervisor.SupervisorError, match="--redis-url"):
        supervisor.Farm(plan)._start()


def test_the_fake_is_really_what_answers(on_path: Path) -> None:
    """Guard for the tests above: with an empty PATH, no nvidia-smi of this machine is found."""
    assert os.environ["PATH"] == str(on_path)
    assert gpus.list_gpus().problem == "nvidia-smi is not on PATH"
