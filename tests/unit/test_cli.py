"""The nodefarm command line: ComfyUI flags -> NODEFARM_* variables, submit's reports, `up` preconditions."""

from __future__ import annotations

import argparse
import json
import os
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from api.cli import main as cli
from api.cli import submit, supervisor
from nodes.settings import Settings


def parse_up(*args: str) -> tuple[argparse.Namespace, list[str]]:
    ns, extras = cli.build_parser().parse_known_args(["up", *args])
    return ns, extras


def up_env(*args: str) -> dict[str, str]:
    return cli.up_env(parse_up(*args)[0])


def settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in [k for k in os.environ if k.startswith("NODEFARM_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings.from_env()


# --- nodefarm up: flag translation ------------------------------------------------------------


def test_defaults_listen_on_loopback_8188_and_set_nothing_else() -> None:
    ns, extras = parse_up()
    assert extras == []
    assert (ns.workers, ns.redis_url) == (2, None)
    assert cli.up_env(ns) == {"NODEFARM_HOST": "127.0.0.1", "NODEFARM_PORT": "8188"}


@pytest.mark.parametrize(
    ("args", "host"),
    [
        ((), "127.0.0.1"),
        (("--listen",), "0.0.0.0"),
        (("--listen", "--port", "9000"), "0.0.0.0"),
        (("--listen", "10.1.2.3"), "10.1.2.3"),
        (("--listen", "192.168.0.5,::1"), "192.168.0.5"),
    ],
)
def test_listen_forms(args: tuple[str, ...], host: str) -> None:
    assert up_env(*args)["NODEFARM_HOST"] == host


def test_listen_with_several_addresses_warns() -> None:
    assert cli.listen_host("0.0.0.0")[1] is None
    assert "one address" in str(cli.listen_host("127.0.0.1,::1")[1])


def test_folders_become_absolute_and_temp_gets_comfyui_temp_subfolder(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    env = up_env("--output-directory", "out", "--input-directory", str(tmp_path / "in"),
                 "--temp-directory", "scratch", "--user-directory", "u", "--base-directory", "base",
                 "--port", "8190")
    assert env["NODEFARM_OUTPUT_DIR"] == str(tmp_path / "out")
    assert env["NODEFARM_INPUT_DIR"] == str(tmp_path / "in")
    assert env["NODEFARM_TEMP_DIR"] == str(tmp_path / "scratch" / "temp")
    assert env["NODEFARM_USER_DIR"] == str(tmp_path / "u")
    assert env["NODEFARM_BASE_DIR"] == str(tmp_path / "base")
    settings = settings_from(env, monkeypatch)
    assert (settings.output_dir, settings.port, settings.models_dir) == (tmp_path / "out", 8190, tmp_path / "base" / "models")


def test_extra_model_paths_repeatable_and_multi_valued(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    env = up_env("--extra-model-paths-config", "a.yaml", "b.yaml", "--extra-model-paths-config", "c.yaml")
    settings = settings_from(env, monkeypatch)
    assert settings.extra_model_paths == (tmp_path / "a.yaml", tmp_path / "b.yaml", tmp_path / "c.yaml")


@pytest.mark.parametrize(
    ("args", "mode", "lru"),
    [
        ((), "farm", 0),
        (("--cache-classic",), "classic", 0),
        (("--cache-none",), "none", 0),
        (("--cache-lru", "50"), "lru", 50),
        (("--cache-lru", "0"), "classic", 0),  # ComfyUI: an LRU of 0 entries is the classic cache
    ],
)
def test_cache_flags(args: tuple[str, ...], mode: str, lru: int, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from(up_env(*args), monkeypatch)
    assert (settings.cache_mode, settings.cache_lru_size) == (mode, lru)


def test_cache_flags_are_mutually_exclusive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        parse_up("--cache-none", "--cache-classic")
    assert exc.value.code == 2
    assert "not allowed with" in capsys.readouterr().err


def test_cpu_metadata_and_upload_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    env = up_env("--cpu", "--disable-metadata", "--max-upload-size", "12.5")
    assert (env["NODEFARM_CPU"], env["NODEFARM_DISABLE_METADATA"], env["NODEFARM_MAX_UPLOAD_MB"]) == ("1", "1", "13")
    settings = settings_from(env, monkeypatch)
    assert (settings.cpu, settings.disable_metadata, settings.max_upload_mb) == (True, True, 13)


def test_unknown_comfyui_flags_are_collected_and_named_in_one_warning() -> None:
    ns, extras = parse_up("--preview-method", "auto", "--port", "8300", "--highvram", "--fp16-vae",
                          "--front-end-version=Comfy-Org/ComfyUI_frontend@latest")
    assert ns.port == 8300
    assert extras == ["--preview-method", "auto", "--highvram", "--fp16-vae",
                      "--front-end-version=Comfy-Org/ComfyUI_frontend@latest"]
    warning = cli.ignored_flags_warning(extras)
    assert warning is not None and "\n" not in warning
    for flag in ("--preview-method", "--highvram", "--fp16-vae", "--front-end-version"):
        assert flag in warning
    assert cli.ignored_flags_warning([]) is None


def test_unknown_flags_are_an_error_outside_up(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["worker", "--highvram"])
    assert exc.value.code == 2
    assert "--highvram" in capsys.readouterr().err


def record_plans(monkeypatch: pytest.MonkeyPatch) -> list[supervisor.FarmPlan]:
    """Replace the supervisor by a recorder of the plans `nodefarm up` hands it."""
    plans: list[supervisor.FarmPlan] = []

    def run_farm(plan: supervisor.FarmPlan) -> int:
        plans.append(plan)
        return 0

    monkeypatch.setattr(supervisor, "run_farm", run_farm)
    return plans


def test_up_prints_the_warning_before_starting(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    plans = record_plans(monkeypatch)
    monkeypatch.setattr(supervisor, "cuda_devices", lambda: ("0", "1"))
    monkeypatch.delenv("NODEFARM_REDIS_URL", raising=False)
    assert cli.main(["up", "--highvram", "--listen", "--insecure", "--workers", "3"]) == 0
    assert "--highvram" in capsys.readouterr().err
    (plan,) = plans
    assert (plan.host, plan.port, plan.workers, plan.redis_url, plan.gpus) == ("0.0.0.0", 8188, 3, None, ("0", "1"))


def test_up_redis_url_from_flag_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    plans = record_plans(monkeypatch)
    monkeypatch.setenv("NODEFARM_REDIS_URL", "redis://env:1/0")
    cli.main(["up", "--cpu"])
    cli.main(["up", "--cpu", "--redis-url", "redis://flag:2/0"])
    assert [(p.redis_url, p.gpus) for p in plans] == [("redis://env:1/0", ()), ("redis://flag:2/0", ())]


def test_up_fails_clearly_without_redis_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no redis-server on this PATH
    monkeypatch.delenv("NODEFARM_REDIS_URL", raising=False)
    assert cli.main(["up", "--cpu", "--port", str(supervisor.free_port())]) == 1
    out = capsys.readouterr().out
    assert "redis-server was not found" in out
    assert "apt-get install redis-server" in out



def test_up_tells_every_worker_how_many_workers_share_its_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """NODEFARM_HOST_WORKERS: the worker count of this supervisor, for splitting the host's cores."""
    spawned: dict[str, dict[str, str]] = {}

    def spawn(name: str, argv: list[str], env: dict[str, str], out: supervisor.Output) -> Any:
        spawned[name] = env
        return types.SimpleNamespace(name=name)

    monkeypatch.setattr(supervisor, "spawn", spawn)
    monkeypatch.setattr(supervisor.Farm, "_wait_until_up", lambda self, redis_url, workers: None)
    monkeypatch.delenv("NODEFARM_HOST_WORKERS", raising=False)
    plan = supervisor.FarmPlan(env={}, host="127.0.0.1", port=supervisor.free_port(), workers=3,
                               redis_url="redis://127.0.0.1:1/0", gpus=("0", "1"))
    supervisor.Farm(plan)._start()
    assert sorted(spawned) == ["api", "w0", "w1", "w2"]
    assert "NODEFARM_HOST_WORKERS" not in spawned["api"]
    workers = [spawned[f"w{i}"] for i in range(3)]
    assert [w["NODEFARM_HOST_WORKERS"] for w in workers] == ["3", "3", "3"]
    assert [w["CUDA_VISIBLE_DEVICES"] for w in workers] == ["0", "1", "0"]

# --- nodefarm worker / api --------------------------------------------------------------------


def test_worker_options(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Settings, list[str] | None, int, str]] = []
    monkeypatch.setitem(sys.modules, "worker.main", _fake_module(run_worker=lambda *a: calls.append(a)))
    monkeypatch.delenv("NODEFARM_RESULT_REDIS_URL", raising=False)
    assert cli.main(["worker", "--redis-url", "redis://h:7/0", "--queues", "a, b", "--concurrency", "3",
                     "--pool", "solo", "--name", "gpu0@%h"]) == 0
    (settings, queues, concurrency, pool), = calls
    assert (settings.redis_url, settings.result_redis_url) == ("redis://h:7/0", "redis://h:7/0")
    assert (queues, concurrency, pool) == (["a", "b"], 3, "solo")
    assert settings.worker_name.startswith("gpu0@") and "%" not in settings.worker_name


def test_worker_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    monkeypatch.setitem(sys.modules, "worker.main", _fake_module(run_worker=lambda *a: calls.append(a)))
    monkeypatch.setenv("NODEFARM_WORKER_NAME", "w7@box")
    assert cli.main(["worker"]) == 0
    (settings, queues, concurrency, pool), = calls
    assert (settings.worker_name, queues, concurrency, pool) == ("w7@box", None, 1, "prefork")


def test_api_host_and_port_override(monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[Settings] = []
    monkeypatch.setitem(sys.modules, "api.cli.server", _fake_module(serve=served.append))
    monkeypatch.setenv("NODEFARM_PORT", "8500")
    assert cli.main(["api", "--host", "0.0.0.0"]) == 0
    assert cli.main(["api", "--port", "9001"]) == 0
    assert [(s.host, s.port) for s in served][0] == ("0.0.0.0", 8500)
    assert served[1].port == 9001


def _fake_module(**attrs: Any) -> types.ModuleType:
    module = types.ModuleType("fake")
    for name, value in attrs.items():
        setattr(module, name, value)
    return module


# --- GPUs --------------------------------------------------------------------------------------


def test_nvidia_smi_listing_gives_indices_and_mig_uuids() -> None:
    listing = (
        "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-aaaa)\n"
        "GPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-bbbb)\n"
        "  MIG 3g.20gb     Device  0: (UUID: MIG-1111)\n"
        "  MIG 3g.20gb     Device  1: (UUID: MIG-2222)\n"
    )
    assert supervisor.parse_nvidia_smi(listing) == ("0", "MIG-1111", "MIG-2222")
    assert supervisor.parse_nvidia_smi("No devices were found\n") == ()


def test_inherited_cuda_visible_devices_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert supervisor.cuda_devices() == ("2", "3")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert supervisor.cuda_devices() == ()


# --- nodefarm submit --------------------------------------------------------------------------

CAPTURED_400 = {
    "error": {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation",
              "details": "Required input is missing: filename_prefix", "extra_info": {}},
    "node_errors": {
        "1": {"errors": [
            {"type": "value_smaller_than_min", "message": "Value 0 smaller than min of 1", "details": "height",
             "extra_info": {"input_name": "height", "received_value": 0}},
            {"type": "required_input_missing", "message": "Required input is missing", "details": "batch_size",
             "extra_info": {"input_name": "batch_size"}}],
              "dependent_outputs": ["2"], "class_type": "StubImage"},
        "2": {"errors": [{"type": "required_input_missing", "message": "Required input is missing",
                          "details": "filename_prefix", "extra_info": {"input_name": "filename_prefix"}}],
              "dependent_outputs": ["2"], "class_type": "SaveImage"}},
}


def test_prompt_error_report_names_every_node_and_error() -> None:
    report = submit.format_prompt_error(CAPTURED_400).splitlines()
    assert report == [
        "error: Prompt outputs failed validation (prompt_outputs_failed_validation)",
        "  Required input is missing: filename_prefix",
        "node 1 (StubImage):",
        "  - Value 0 smaller than min of 1: height",
        "  - Required input is missing: batch_size",
        "    (blocks output nodes 2)",
        "node 2 (SaveImage):",
        "  - Required input is missing: filename_prefix",
        "    (blocks output nodes 2)",
    ]


def test_graph_level_error_report() -> None:
    body = {"error": {"type": "invalid_prompt", "message": "Cannot execute because node Nope does not exist.",
                      "details": "Node ID '#3'", "extra_info": {}}, "node_errors": {}}
    assert submit.format_prompt_error(body) == (
        "error: Cannot execute because node Nope does not exist. (invalid_prompt)\n  Node ID '#3'"
    )


def test_execution_error_report_keeps_the_traceback_tail() -> None:
    data = {"prompt_id": "p", "node_id": "4", "node_type": "Boom", "exception_type": "RuntimeError",
            "exception_message": "it broke\n", "traceback": [f'  File "x.py", line {i}, in f\n' for i in range(20)]}
    report = submit.format_execution_error("execution_error", data).splitlines()
    assert report[0] == "error in node 4 (Boom): RuntimeError: it broke"
    assert report[1] == "traceback (last lines):"
    assert report[-1].endswith("line 19, in f") and len(report) == 2 + submit.TRACEBACK_TAIL
    interrupted = {"node_id": "2", "node_type": "TestSleep"}
    assert submit.format_execution_error("execution_interrupted", interrupted) == "interrupted at node 2 (TestSleep)"


def test_history_failure_reads_the_error_message() -> None:
    entry = {"status": {"status_str": "error", "completed": False, "messages": [
        ["execution_start", {"prompt_id": "p"}],
        ["execution_interrupted", {"prompt_id": "p", "node_id": "2", "node_type": "TestSleep"}]]}}
    assert submit.history_failure(entry) == "interrupted at node 2 (TestSleep)"
    assert submit.history_failure({"status": {"status_str": "success", "messages": []}}) is None


def test_body_loading_accepts_bare_prompts_and_request_bodies(tmp_path: Path) -> None:
    prompt = {"1": {"class_type": "EmptyImage", "inputs": {}}}
    bare, wrapped, ui = tmp_path / "bare.json", tmp_path / "body.json", tmp_path / "ui.json"
    bare.write_text(json.dumps(prompt))
    wrapped.write_text(json.dumps({"prompt": prompt, "extra_data": {"x": 1}, "client_id": "old"}))
    ui.write_text(json.dumps({"nodes": [], "links": []}))
    assert submit.load_body(str(bare), "c") == {"prompt": prompt, "client_id": "c"}
    assert submit.load_body(str(wrapped), "c") == {"prompt": prompt, "extra_data": {"x": 1}, "client_id": "c"}
    with pytest.raises(submit.SubmitError, match="Export \\(API\\)"):
        submit.load_body(str(ui), "c")
    # a node that happens to be called "prompt" is still a bare prompt
    odd = tmp_path / "odd.json"
    odd.write_text(json.dumps({"prompt": {"class_type": "X", "inputs": {}}}))
    assert submit.load_body(str(odd), "c")["prompt"] == {"prompt": {"class_type": "X", "inputs": {}}}


def test_output_files_are_server_paths_or_view_urls() -> None:
    entry = {"outputs": {
        "9": {"images": [{"filename": "a_00001_.png", "subfolder": "run", "type": "output"},
                         {"filename": "p_00001_.png", "subfolder": "", "type": "temp"}]},
        "10": {"text": ["hello"]},
        "11": {"images": [{"filename": "in.png", "subfolder": "", "type": "input"}]}}}
    dirs = {"output_dir": "/srv/out", "input_dir": "/srv/in", "temp_dir": "/srv/tmp"}
    assert submit.output_files(entry, dirs, "http://h:1") == ["/srv/out/run/a_00001_.png", "/srv/tmp/p_00001_.png"]
    assert submit.output_files(entry, None, "http://h:1/")[0] == (
        "http://h:1/view?filename=a_00001_.png&subfolder=run&type=output"
    )


def test_ws_url_follows_the_server_url() -> None:
    assert submit.ws_url("http://127.0.0.1:8188", "abc") == "ws://127.0.0.1:8188/ws?clientId=abc"
    assert submit.ws_url("https://farm.example/comfy/", "abc") == "wss://farm.example/comfy/ws?clientId=abc"


class FakeSocket:
    """Replays frames the way websocket-client's recv() returns them."""

    def __init__(self, frames: list[Any]) -> None:
        self.frames = list(frames)

    def settimeout(self, timeout: float) -> None:
        assert timeout > 0

    def recv(self) -> Any:
        if not self.frames:
            raise submit.websocket.WebSocketTimeoutException("no more frames")
        frame = self.frames.pop(0)
        return frame if isinstance(frame, bytes) else json.dumps(frame)


PROMPT = {"1": {"class_type": "EmptyImage", "inputs": {}}, "2": {"class_type": "SaveImage", "inputs": {}}}


def msg(kind: str, **data: Any) -> dict[str, Any]:
    return {"type": kind, "data": data}


def test_follower_shows_progress_and_stops_at_the_end_of_its_prompt(capsys: pytest.CaptureFixture[str]) -> None:
    frames = [
        msg("status", status={"exec_info": {"queue_remaining": 1}}, sid="c"),
        msg("execution_start", prompt_id="P", timestamp=1),
        msg("execution_cached", nodes=["1"], prompt_id="P", timestamp=1),
        msg("executing", node="2", display_node="2", prompt_id="OTHER"),
        msg("executing", node="2", display_node="2", prompt_id="P"),
        msg("progress", value=1, max=2, prompt_id="P", node="2"),
        b"\x00\x00\x00\x01\x00\x00\x00\x02png",
        msg("progress", value=2, max=2, prompt_id="P", node="2"),
        msg("executed", node="2", display_node="2", output={"images": [{"filename": "a.png"}]}, prompt_id="P"),
        msg("execution_success", prompt_id="P", timestamp=2),
        msg("executing", node=None, prompt_id="OTHER"),
        msg("executing", node=None, prompt_id="P"),
        msg("executing", node="never read", prompt_id="P"),
    ]
    conn = FakeSocket(frames)
    follower = submit.Follower(conn, PROMPT, deadline=submit.time.monotonic() + 5)
    follower.follow("P")
    assert follower.failure is None
    assert len(conn.frames) == 1
    assert capsys.readouterr().err.splitlines() == [
        "execution_start P",
        "execution_cached 1 nodes",
        "executing 2 (SaveImage)",
        "progress 2: 1/2",
        "progress 2: 2/2",
        "executed 2 (SaveImage): 1 outputs",
        "execution_success",
    ]


def test_follower_records_an_execution_error() -> None:
    error = msg("execution_error", prompt_id="P", node_id="1", node_type="EmptyImage", exception_type="ValueError",
                exception_message="bad\n", traceback=[])
    follower = submit.Follower(FakeSocket([error, msg("executing", node=None, prompt_id="P")]), PROMPT,
                               deadline=submit.time.monotonic() + 5)
    follower.follow("P")
    assert follower.failure == "error in node 1 (EmptyImage): ValueError: bad"


def test_follower_gives_up_at_its_deadline() -> None:
    follower = submit.Follower(FakeSocket([msg("execution_start", prompt_id="P")]), PROMPT,
                               deadline=submit.time.monotonic() + 5)
    with pytest.raises(TimeoutError):
        follower.follow("P")
