"""The ``nodefarm`` command: ``up`` (a drop-in for ComfyUI's ``python main.py``), ``api``, ``worker``, ``submit``, ``status``.

``nodefarm up`` accepts ComfyUI's command-line flags, turns the ones nodefarm understands into
``NODEFARM_*`` variables (see :mod:`nodes.settings`) for its children and warns about the rest.
Process supervision lives in :mod:`api.cli.supervisor`, the submit client in :mod:`api.cli.submit`,
``--gpus`` (one worker per GPU) in :mod:`api.cli.gpus`, the terminal view in :mod:`api.cli.status`.
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import os
import shlex
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

from api import auth
from api.cli import blocklist as blocklist_cli
from api.cli import gpus, status, submit, supervisor
from api.cli import token as token_cli
from nodes.settings import Settings

DEFAULT_LISTEN = "127.0.0.1"
BARE_LISTEN = "0.0.0.0"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nodefarm", description="A render farm for ComfyUI workflows.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser(
        "up",
        help="run Redis, the API and N workers in the foreground (ComfyUI's `python main.py`)",
        description="Start a whole farm on this host. Accepts ComfyUI's flags; unsupported ones are ignored with a warning.",
    )
    up.add_argument("--listen", nargs="?", const=BARE_LISTEN, default=DEFAULT_LISTEN, metavar="IP",
                    help=f"address to listen on (default {DEFAULT_LISTEN}; bare --listen: {BARE_LISTEN})")
    up.add_argument("--port", type=int, default=8188, help="API port (default 8188)")
    up.add_argument("--output-directory", metavar="DIR", help="where saved images go")
    up.add_argument("--input-directory", metavar="DIR", help="where uploaded inputs go")
    up.add_argument("--temp-directory", metavar="DIR", help="previews go to DIR/temp, as in ComfyUI")
    up.add_argument("--user-directory", metavar="DIR", help="user settings and workflows")
    up.add_argument("--base-directory", metavar="DIR", help="root of models/, custom_nodes/, input/, output/, ...")
    up.add_argument("--extra-model-paths-config", nargs="+", action="append", default=[], metavar="FILE",
                    help="extra_model_paths.yaml file(s); repeatable")
    up.add_argument("--cpu", action="store_true", help="run every node on the CPU")
    up.add_argument("--enable-cors-header", nargs="?", const="*", metavar="ORIGIN",
                    help="allow browser pages of ORIGIN (bare: any origin) to use the farm; default: its own only")
    cache = up.add_mutually_exclusive_group()
    cache.add_argument("--cache-classic", action="store_true", help="ComfyUI's classic per-prompt cache")
    cache.add_argument("--cache-lru", type=int, metavar="N", help="LRU cache of N node results")
    cache.add_argument("--cache-none", action="store_true", help="no caching: every node runs every time")
    up.add_argument("--disable-metadata", action="store_true", help="no prompt/workflow in saved PNGs")
    up.add_argument("--multi-user", action="store_true", help="per-user settings and user data (comfy-user header)")
    up.add_argument("--max-upload-size", type=float, metavar="MB", help="upload limit in MB (default 100)")
    up.add_argument("--workers", type=int, default=2, metavar="N",
                    help="worker processes on this host (default 2; --gpus: one per GPU, N only when it finds none)")
    up.add_argument("--redis-url", metavar="URL",
                    help="use this Redis instead of starting private ones (default: NODEFARM_REDIS_URL)")
    up.add_argument("--insecure", action="store_true",
                    help="allow --listen on a non-loopback address without --auth-token-file (anyone who can reach it can use the farm)")
    up.set_defaults(handler=cmd_up)

    api = sub.add_parser("api", help="run the HTTP API in the foreground")
    api.add_argument("--host", help="listen address (default NODEFARM_HOST or 127.0.0.1)")
    api.add_argument("--port", type=int, help="port (default NODEFARM_PORT or 8188)")
    for one in (up, api):
        one.add_argument("--auth-token-file", metavar="FILE",
                         help="named API tokens, one `name token` per line (`nodefarm token add NAME`): every route, "
                              "/ws and Socket.IO then need one (NODEFARM_AUTH_TOKEN_FILE)")
    api.set_defaults(handler=cmd_api)

    worker = sub.add_parser("worker", help="run one Celery worker joined to an existing Redis")
    worker.add_argument("--redis-url", metavar="URL", help="broker/state Redis (default NODEFARM_REDIS_URL)")
    worker.add_argument("--result-redis-url", metavar="URL",
                        help="result store Redis (default NODEFARM_RESULT_REDIS_URL, else --redis-url)")
    worker.add_argument("--queues", metavar="A,B", help="comma-separated queues to consume (default: all shared)")
    worker.add_argument("--concurrency", type=int, default=1, metavar="N", help="pool size (default 1)")
    worker.add_argument("--pool", choices=("prefork", "solo", "threads"), default="prefork",
                        help="Celery pool (default prefork)")
    worker.add_argument("--name", help="worker name, e.g. gpu0@%%h (default NODEFARM_WORKER_NAME or w<pid>@<host>)")
    for one in (up, worker):
        one.add_argument("--gpus", metavar="all|0,1,3",
                         help="one supervised worker process per listed GPU (nvidia-smi index), pinned with "
                              "CUDA_VISIBLE_DEVICES and named gpuN@<host>; `all` without a GPU starts CPU workers")
    worker.set_defaults(handler=cmd_worker)
    for one in (up, api, worker):
        one.add_argument("--comfyui", metavar="DIR", help="run the farm on this ComfyUI checkout: its nodes, models and custom nodes (NODEFARM_COMFYUI); ComfyUI flags nodefarm does not know are passed to it")

    tiny = sub.add_parser("tiny-checkpoint", add_help=False, help="build a tiny random SD1.5 checkpoint to try the farm without a download")
    tiny.set_defaults(handler=cmd_tiny_checkpoint)

    tokens = sub.add_parser("token", help="manage the named API tokens of a token file (add NAME, list)")
    token_cli.add_arguments(tokens)
    tokens.set_defaults(handler=cmd_token)

    sub_submit = sub.add_parser("submit", help="submit an API-format workflow and optionally wait for it")
    submit.add_arguments(sub_submit)
    sub_submit.set_defaults(handler=cmd_submit)

    blocked = sub.add_parser("blocklist", help="list the bad-worker blocklist of a running farm, or lift a worker off it")
    blocklist_cli.add_arguments(blocked)
    blocked.set_defaults(handler=lambda ns: blocklist_cli.run(ns))

    sub_status = sub.add_parser("status", help="the farm's workers, queue and recent runs in the terminal (--watch)")
    status.add_arguments(sub_status)
    sub_status.set_defaults(handler=lambda ns: status.run(ns))
    return parser


def listen_host(value: str) -> tuple[str, str | None]:
    """ComfyUI's --listen value -> (the one address we bind, a warning or None)."""
    addresses = [a.strip() for a in value.split(",") if a.strip()]
    if not addresses:
        return BARE_LISTEN, None
    if len(addresses) > 1:
        return addresses[0], f"--listen {value}: nodefarm listens on one address; using {addresses[0]}"
    return addresses[0], None


def _absolute(path: str) -> str:
    return str(Path(path).expanduser().resolve())


def up_env(ns: argparse.Namespace) -> dict[str, str]:
    """The NODEFARM_* variables that carry ``nodefarm up``'s ComfyUI flags to the API and the workers."""
    env: dict[str, str] = {"NODEFARM_HOST": listen_host(ns.listen)[0], "NODEFARM_PORT": str(ns.port)}
    folders = {
        "NODEFARM_BASE_DIR": ns.base_directory,
        "NODEFARM_OUTPUT_DIR": ns.output_directory,
        "NODEFARM_INPUT_DIR": ns.input_directory,
        "NODEFARM_USER_DIR": ns.user_directory,
        # ComfyUI keeps its temp files in a "temp" folder inside --temp-directory.
        "NODEFARM_TEMP_DIR": ns.temp_directory and os.path.join(ns.temp_directory, "temp"),
    }
    env.update({var: _absolute(path) for var, path in folders.items() if path})
    extra = [_absolute(f) for group in ns.extra_model_paths_config for f in group]
    if extra:
        env["NODEFARM_EXTRA_MODEL_PATHS"] = os.pathsep.join(extra)
    if ns.cpu:
        env["NODEFARM_CPU"] = "1"
    if ns.enable_cors_header:
        env["NODEFARM_CORS_ORIGINS"] = ns.enable_cors_header
    if ns.auth_token_file:
        env["NODEFARM_AUTH_TOKEN_FILE"] = _absolute(ns.auth_token_file)
    if ns.cache_classic:
        env["NODEFARM_CACHE"] = "classic"
    elif ns.cache_none:
        env["NODEFARM_CACHE"] = "none"
    elif ns.cache_lru is not None:
        env["NODEFARM_CACHE"], env["NODEFARM_CACHE_LRU"] = "lru", str(ns.cache_lru)
    if ns.disable_metadata:
        env["NODEFARM_DISABLE_METADATA"] = "1"
    if ns.multi_user:
        env["NODEFARM_MULTI_USER"] = "1"
    if ns.max_upload_size is not None:
        env["NODEFARM_MAX_UPLOAD_MB"] = str(max(1, math.ceil(ns.max_upload_size)))
    env.update(comfyui_env(ns))
    return env


def comfyui_env(ns: argparse.Namespace) -> dict[str, str]:
    """``--comfyui DIR`` and the ComfyUI flags to pass through to it, as NODEFARM_* variables."""
    if not getattr(ns, "comfyui", None):
        return {}
    return {"NODEFARM_COMFYUI": _absolute(ns.comfyui), "NODEFARM_COMFYUI_ARGS": shlex.join(ns.extras)}


def ignored_flags_warning(extras: Sequence[str]) -> str | None:
    """The warning line for ComfyUI flags that ``nodefarm up`` does not support, or None."""
    if not extras:
        return None
    flags = [arg.split("=", 1)[0] for arg in extras if arg.startswith("-")]
    named = ", ".join(flags) if flags else "none"
    return f"nodefarm up: ignoring ComfyUI flags that nodefarm does not support: {named} (dropped: {' '.join(extras)})"


def is_loopback(host: str) -> bool:
    """Whether only this host can reach an address (127.0.0.0/8, ::1, localhost)."""
    if host.lower() in ("localhost", "localhost.", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def insecure_listen_refusal(ns: argparse.Namespace) -> str | None:
    """Why ``nodefarm up`` will not listen where it was asked to (no tokens, not loopback), or None."""
    host = listen_host(ns.listen)[0]
    if is_loopback(host) or ns.auth_token_file or os.environ.get("NODEFARM_AUTH_TOKEN_FILE") or ns.insecure:
        return None
    return (f"nodefarm up: refusing to listen on {host} without authentication: anyone who can reach it could run "
            "workflows and read every output. Create a token (`nodefarm token add NAME --file tokens.txt`) and pass "
            "--auth-token-file tokens.txt, or add --insecure if the network is trusted.")


def token_file_problem(path: str | None) -> str | None:
    """Why a token file cannot be used, or None."""
    if not path:
        return None
    if not Path(path).expanduser().is_file():
        return (f"the token file {path} does not exist; create it with `nodefarm token add NAME --file {path}`")
    return None


def cmd_up(ns: argparse.Namespace) -> int:
    warning = None if ns.comfyui else ignored_flags_warning(ns.extras)
    if warning:
        print(warning, file=sys.stderr)
    listen_warning = listen_host(ns.listen)[1]
    if listen_warning:
        print(f"nodefarm up: {listen_warning}", file=sys.stderr)
    if ns.workers < 0:
        print("nodefarm up: --workers must be 0 or more", file=sys.stderr)
        return 2
    pinned = gpu_selection("up", ns)
    if pinned is None:
        return 2
    refusal = insecure_listen_refusal(ns)
    problem = token_file_problem(ns.auth_token_file or os.environ.get("NODEFARM_AUTH_TOKEN_FILE"))
    if refusal or problem:
        print(refusal or f"nodefarm up: {problem}", file=sys.stderr)
        return 2
    env = up_env(ns)
    if ns.auth_token_file or os.environ.get("NODEFARM_AUTH_TOKEN_FILE"):
        env["NODEFARM_API_TOKEN"] = auth.new_token()  # the farm's own (workers -> /internal), this start only
    names, devices = gpus.pinning(pinned)  # --gpus: one worker per GPU; else N workers dealt over every GPU
    plan = supervisor.FarmPlan(
        env=env,
        host=env["NODEFARM_HOST"],
        port=ns.port,
        workers=len(names) or ns.workers,
        redis_url=ns.redis_url or os.environ.get("NODEFARM_REDIS_URL") or None,
        gpus=devices if names else () if ns.cpu or ns.gpus else supervisor.cuda_devices(),
        names=names,
    )
    return supervisor.run_farm(plan)


def gpu_selection(command: str, ns: argparse.Namespace) -> gpus.Selection | None:
    """What ``--gpus`` picks on this host (no GPUs without it), its note printed; None after an error."""
    if not ns.gpus:
        return gpus.Selection(())
    problem = None
    if getattr(ns, "cpu", False):
        problem = "--gpus and --cpu exclude each other"
    elif getattr(ns, "name", None):
        problem = "--name cannot be combined with --gpus (each worker is named gpuN@<host>)"
    try:
        selection = None if problem else gpus.resolve(ns.gpus)
    except gpus.GpuError as exc:
        problem = str(exc)
        selection = None
    if selection is None:
        print(f"nodefarm {command}: {problem}", file=sys.stderr)
        return None
    if selection.note:
        print(f"nodefarm {command}: {selection.note}", file=sys.stderr)
    return selection


def cmd_api(ns: argparse.Namespace) -> int:
    from api.cli.server import serve

    settings = with_comfyui(Settings.from_env(), ns)
    if ns.host:
        settings = settings.with_(host=ns.host)
    if ns.port:
        settings = settings.with_(port=ns.port)
    if ns.auth_token_file:
        settings = settings.with_(auth_token_file=Path(ns.auth_token_file).expanduser().resolve())
    problem = token_file_problem(str(settings.auth_token_file) if settings.auth_token_file else None)
    if problem:
        print(f"nodefarm api: {problem}", file=sys.stderr)
        return 2
    serve(settings)
    return 0


def expand_node_name(name: str) -> str:
    """Celery's node-name placeholders: %h (hostname), %n (its first label), %d (its domain)."""
    host = socket.gethostname()
    short, _, domain = host.partition(".")
    return name.replace("%h", host).replace("%n", short).replace("%d", domain).replace("%%", "%")


def worker_settings(ns: argparse.Namespace) -> Settings:
    settings = Settings.from_env()
    if ns.redis_url:
        result = ns.result_redis_url or os.environ.get("NODEFARM_RESULT_REDIS_URL") or ns.redis_url
        settings = settings.with_(redis_url=ns.redis_url, result_redis_url=result)
    elif ns.result_redis_url:
        settings = settings.with_(result_redis_url=ns.result_redis_url)
    settings = with_comfyui(settings, ns)
    return settings.with_(worker_name=expand_node_name(ns.name or settings.worker_name))


def with_comfyui(settings: Settings, ns: argparse.Namespace) -> Settings:
    env = comfyui_env(ns)
    if not env:
        return settings
    return settings.with_(comfyui_dir=Path(env["NODEFARM_COMFYUI"]), comfyui_args=env["NODEFARM_COMFYUI_ARGS"])


def cmd_tiny_checkpoint(ns: argparse.Namespace) -> int:
    from api.cli import tiny_checkpoint

    return tiny_checkpoint.main(ns.extras)


def cmd_worker(ns: argparse.Namespace) -> int:
    if ns.gpus:
        return cmd_gpu_workers(ns)
    from worker.main import run_worker

    queues = [q.strip() for q in ns.queues.split(",") if q.strip()] if ns.queues else None
    run_worker(worker_settings(ns), queues or None, ns.concurrency, ns.pool)
    return 0


def cmd_gpu_workers(ns: argparse.Namespace) -> int:
    """``nodefarm worker --gpus``: one worker per GPU (``cpu0`` when ``all`` finds none), supervised
    like ``nodefarm up``'s, joined to the farm's Redis."""
    pinned = gpu_selection("worker", ns)
    if pinned is None:
        return 2
    settings = worker_settings(ns)
    names, devices = gpus.pinning(pinned)
    args = [*(("--queues", ns.queues) if ns.queues else ()), "--concurrency", str(ns.concurrency), "--pool", ns.pool]
    env = {"NODEFARM_REDIS_URL": settings.redis_url,
           "NODEFARM_RESULT_REDIS_URL": settings.result_redis_url or settings.redis_url, **comfyui_env(ns)}
    plan = supervisor.FarmPlan(env=env, host=DEFAULT_LISTEN, port=0, workers=len(names) or 1,
                               redis_url=settings.redis_url, gpus=devices, names=names or ("cpu0",), api=False,
                               worker_args=tuple(args))
    return supervisor.run_farm(plan)


def cmd_token(ns: argparse.Namespace) -> int:
    return token_cli.run(ns)


def cmd_submit(ns: argparse.Namespace) -> int:
    return submit.run(ns)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    ns, extras = parser.parse_known_args(argv)
    if extras and ns.command not in ("up", "tiny-checkpoint") and not getattr(ns, "comfyui", None):
        parser.error(f"unrecognized arguments: {' '.join(extras)}")
    ns.extras = extras
    try:
        code: int = ns.handler(ns)
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
