"""The one settings object of nodefarm, built once from the environment (``NODEFARM_*``).

Every process of the farm (API, workers, the ``nodefarm up`` supervisor) builds its settings with
:func:`Settings.from_env` and passes the object on; nothing reads the environment elsewhere.
``nodefarm up`` translates ComfyUI's command-line flags into these variables for its children.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field, replace
from pathlib import Path

CACHE_MODES = ("farm", "classic", "lru", "none")


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def _api_url(host: str, port: str) -> str:
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _paths(value: str) -> tuple[Path, ...]:
    return tuple(Path(p).expanduser().resolve() for p in value.split(os.pathsep) if p)


@dataclass(frozen=True)
class Settings:
    # Redis holding the Celery broker, run state, queue, history and event streams.
    # NODEFARM_REDIS_URL; `nodefarm up` starts a private redis-server when unset.
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Redis holding node results by content hash (allkeys-lru in production).
    # NODEFARM_RESULT_REDIS_URL; defaults to redis_url.
    result_redis_url: str = ""
    # Where the API listens. NODEFARM_HOST (default 127.0.0.1), NODEFARM_PORT (default 8188).
    host: str = "127.0.0.1"
    port: int = 8188
    # Where workers reach the API (model files missing on a worker host are fetched from there).
    # NODEFARM_API_URL, default http://<host>:<port> (127.0.0.1 when the API listens on 0.0.0.0).
    api_url: str = ""
    # Browser origins allowed besides the farm's own (--enable-cors-header [ORIGIN]; "*": any), comma-
    # separated. NODEFARM_CORS_ORIGINS, default none: a page of another origin gets 403.
    cors_origins: tuple[str, ...] = ()
    # Seconds the API waits on each read of a request's headers (a half-sent request is dropped) and
    # then of its body. NODEFARM_HEADER_TIMEOUT, default 10; NODEFARM_BODY_TIMEOUT, default 60.
    # Websockets have no read limit.
    header_timeout_s: float = 10.0
    body_timeout_s: float = 60.0
    # Named API tokens (--auth-token-file FILE; `nodefarm token add NAME`): one `name token` per line, re-read
    # when it changes; when set, every route, /ws and Socket.IO need a token (api/auth.py).
    # NODEFARM_AUTH_TOKEN_FILE, default none: no authentication.
    auth_token_file: Path | None = None
    # The token this process sends to the API as a Bearer header (workers: /internal/models); the API
    # accepts it too, under the name "farm-internal". `nodefarm up` generates one per start when it has
    # tokens. NODEFARM_API_TOKEN, default none.
    api_token: str = ""
    # Root for the default folders below. NODEFARM_BASE_DIR, default: the current directory.
    base_dir: Path = field(default_factory=Path.cwd)
    # ComfyUI's folders. NODEFARM_OUTPUT_DIR / _INPUT_DIR / _TEMP_DIR / _USER_DIR / _MODELS_DIR,
    # default <base_dir>/output, /input, /temp, /user, /models.
    output_dir: Path = Path("output")
    input_dir: Path = Path("input")
    temp_dir: Path = Path("temp")
    user_dir: Path = Path("user")
    models_dir: Path = Path("models")
    # Folders of custom node packs, os.pathsep-separated. NODEFARM_CUSTOM_NODES,
    # default <base_dir>/custom_nodes. extra_model_paths.yaml entries are added at boot.
    custom_nodes_dirs: tuple[Path, ...] = ()
    # ComfyUI extra_model_paths.yaml files, os.pathsep-separated. NODEFARM_EXTRA_MODEL_PATHS.
    extra_model_paths: tuple[Path, ...] = ()
    # Cache mode: farm (shared Redis cache, default), classic, lru, none. NODEFARM_CACHE.
    cache_mode: str = "farm"
    # Entry budget for --cache-lru N. NODEFARM_CACHE_LRU.
    cache_lru_size: int = 0
    # Force the CPU even when CUDA is present (--cpu). NODEFARM_CPU=1.
    cpu: bool = False
    # The user's ComfyUI checkout to run (--comfyui DIR): its comfy, comfy_extras, nodes.py and
    # folder_paths are loaded at run time (nodes/comfyui.py). NODEFARM_COMFYUI, default: none
    # (nodefarm's own stand-ins).
    comfyui_dir: Path | None = None
    # ComfyUI flags passed through to ComfyUI's own argument parser in every process
    # (--preview-method, --lowvram, --fp16-vae, ...), one shell-quoted string. NODEFARM_COMFYUI_ARGS.
    comfyui_args: str = ""
    # Name of this worker (Celery node name and private queue). NODEFARM_WORKER_NAME,
    # default "w<pid>@<hostname>".
    worker_name: str = ""
    # Runs executing at once on the farm; more wait in the queue. NODEFARM_MAX_ACTIVE_RUNS, default 4.
    max_active_runs: int = 4
    # Runs of one client (its token's name, else its client id) executing at once; its other runs wait
    # while the other clients' runs are admitted (worker/prompt_queue.py). NODEFARM_MAX_RUNS_PER_CLIENT,
    # default 0: no cap.
    max_runs_per_client: int = 0
    # Spread a model's work: runs of one model go to the workers (of its holder's device kind) with the
    # fewest runs of models, loading it again there (worker/admission.py place_model_loads).
    # NODEFARM_SPREAD_MODELS, default 1; 0: every run of a model queues on the worker holding it.
    spread_models: bool = True
    # Finished runs kept in the history (/history, /api/jobs), oldest dropped first.
    # NODEFARM_HISTORY_SIZE, default 10000 (ComfyUI's MAXIMUM_HISTORY_SIZE); listing stays fast at 100,000+.
    history_size: int = 10000
    # Deliveries of one node before the run fails (a node that kills its worker). NODEFARM_MAX_NODE_ATTEMPTS, default 2.
    max_node_attempts: int = 2
    # Failures counted against one worker within blocklist_s that blocklist it for blocklist_s: a node
    # that failed there and succeeded on another worker, or the worker dying (worker/blocklist.py).
    # NODEFARM_BLOCKLIST_FAILURES, default 3 (Flamenco's); 0 turns the blocklist off.
    blocklist_failures: int = 3
    # The window those failures are counted in, and how long a blocklisted worker stays out unless an
    # operator lifts it (DELETE /nodefarm/blocklist/<worker>). NODEFARM_BLOCKLIST_S, default 600.
    blocklist_s: float = 600.0
    # Hard time limit of one node in seconds; the broker visibility timeout is twice this.
    # NODEFARM_NODE_TIME_LIMIT, default 3600.
    node_time_limit: int = 3600
    # Broker visibility timeout in seconds: a task message delivered to a worker and not acked for
    # this long is delivered again (kombu's Redis transport). A live worker keeps re-scoring the
    # messages it holds (worker/rescue.py), so a node running longer is never run twice.
    # NODEFARM_VISIBILITY_TIMEOUT, default 0: twice node_time_limit.
    visibility_timeout: int = 0
    # Seconds a running run may look stuck before the watchdog acts (worker/watchdog.py): a node
    # dispatched whose task is nowhere (no queue, no worker holds it) is sent again; a run whose
    # state is missing or corrupt fails with a clear error. NODEFARM_WATCHDOG_GRACE, default 30.
    watchdog_grace_s: float = 30.0
    # Worker heartbeat period in seconds; a worker silent for 3 periods is dead and its nodes are
    # handed to others. NODEFARM_HEARTBEAT, default 2.
    heartbeat_s: float = 2.0
    # Per-worker in-memory result cache size in MiB. NODEFARM_WORKER_CACHE_MB, default 2048.
    worker_cache_mb: int = 2048
    # Workers send Celery task events (Flower, `celery events`; README "Flower"). They cost about a
    # millisecond per node task on a local Redis; with NODEFARM_TASK_EVENTS=0 a worker sends them only
    # once a monitor asks (Flower does, every few seconds: `celery control enable_events`). Default on.
    task_events: bool = True
    # PNG metadata off (--disable-metadata). NODEFARM_DISABLE_METADATA=1.
    disable_metadata: bool = False
    # Upload limit in MiB (--max-upload-size). NODEFARM_MAX_UPLOAD_MB, default 100.
    max_upload_mb: int = 100
    # ComfyUI's --multi-user: users chosen by the comfy-user header. NODEFARM_MULTI_USER=1.
    multi_user: bool = False
    # Log level for our loggers. NODEFARM_LOG_LEVEL, default INFO.
    log_level: str = "INFO"
    # Torch intra-op threads of each worker child. NODEFARM_TORCH_THREADS, default 0: automatic,
    # this process's cores / (host_workers x pool children), at least 1 (see worker/cores.py).
    torch_threads: int = 0
    # Worker processes sharing this host's cores; `nodefarm up` sets it for each worker it starts.
    # NODEFARM_HOST_WORKERS, default 1.
    host_workers: int = 1

    @classmethod
    def from_env(cls) -> Settings:
        base = Path(_env("NODEFARM_BASE_DIR", os.getcwd())).expanduser().resolve()

        def folder(var: str, name: str) -> Path:
            return Path(_env(var, str(base / name))).expanduser().resolve()

        redis_url = _env("NODEFARM_REDIS_URL", "redis://127.0.0.1:6379/0")
        cache_mode = _env("NODEFARM_CACHE", "farm").lower()
        if cache_mode not in CACHE_MODES:
            raise ValueError(f"NODEFARM_CACHE must be one of {CACHE_MODES}, got {cache_mode!r}")
        lru = int(_env("NODEFARM_CACHE_LRU", "0"))
        if cache_mode == "lru" and lru <= 0:
            cache_mode = "classic"  # ComfyUI: --cache-lru 0 falls back to classic
        return cls(
            redis_url=redis_url,
            result_redis_url=_env("NODEFARM_RESULT_REDIS_URL", redis_url),
            host=_env("NODEFARM_HOST", "127.0.0.1"),
            port=int(_env("NODEFARM_PORT", "8188")),
            cors_origins=tuple(o.strip() for o in _env("NODEFARM_CORS_ORIGINS", "").split(",") if o.strip()),
            header_timeout_s=float(_env("NODEFARM_HEADER_TIMEOUT", "10")),
            body_timeout_s=float(_env("NODEFARM_BODY_TIMEOUT", "60")),
            auth_token_file=Path(_env("NODEFARM_AUTH_TOKEN_FILE", "")).expanduser().resolve() if _env("NODEFARM_AUTH_TOKEN_FILE", "") else None,
            api_token=_env("NODEFARM_API_TOKEN", ""),
            api_url=_env("NODEFARM_API_URL", _api_url(_env("NODEFARM_HOST", "127.0.0.1"), _env("NODEFARM_PORT", "8188"))),
            base_dir=base,
            output_dir=folder("NODEFARM_OUTPUT_DIR", "output"),
            input_dir=folder("NODEFARM_INPUT_DIR", "input"),
            temp_dir=folder("NODEFARM_TEMP_DIR", "temp"),
            user_dir=folder("NODEFARM_USER_DIR", "user"),
            models_dir=folder("NODEFARM_MODELS_DIR", "models"),
            custom_nodes_dirs=_paths(_env("NODEFARM_CUSTOM_NODES", str(base / "custom_nodes"))),
            extra_model_paths=_paths(_env("NODEFARM_EXTRA_MODEL_PATHS", "")),
            cache_mode=cache_mode,
            cache_lru_size=lru,
            cpu=_env("NODEFARM_CPU", "0") in ("1", "true", "yes"),
            comfyui_dir=Path(_env("NODEFARM_COMFYUI", "")).expanduser().resolve() if _env("NODEFARM_COMFYUI", "") else None,
            comfyui_args=_env("NODEFARM_COMFYUI_ARGS", ""),
            worker_name=_env("NODEFARM_WORKER_NAME", f"w{os.getpid()}@{socket.gethostname()}"),
            max_active_runs=max(1, int(_env("NODEFARM_MAX_ACTIVE_RUNS", "4"))),
            max_runs_per_client=max(0, int(_env("NODEFARM_MAX_RUNS_PER_CLIENT", "0"))),
            spread_models=_env("NODEFARM_SPREAD_MODELS", "1") not in ("0", "false", "no"),
            history_size=max(1, int(_env("NODEFARM_HISTORY_SIZE", "10000"))),
            max_node_attempts=max(1, int(_env("NODEFARM_MAX_NODE_ATTEMPTS", "2"))),
            blocklist_failures=max(0, int(_env("NODEFARM_BLOCKLIST_FAILURES", "3"))),
            blocklist_s=max(1.0, float(_env("NODEFARM_BLOCKLIST_S", "600"))),
            node_time_limit=int(_env("NODEFARM_NODE_TIME_LIMIT", "3600")),
            visibility_timeout=max(0, int(_env("NODEFARM_VISIBILITY_TIMEOUT", "0"))),
            watchdog_grace_s=float(_env("NODEFARM_WATCHDOG_GRACE", "30")),
            heartbeat_s=float(_env("NODEFARM_HEARTBEAT", "2")),
            worker_cache_mb=int(_env("NODEFARM_WORKER_CACHE_MB", "2048")),
            task_events=_env("NODEFARM_TASK_EVENTS", "1") not in ("0", "false", "no"),
            disable_metadata=_env("NODEFARM_DISABLE_METADATA", "0") in ("1", "true", "yes"),
            max_upload_mb=int(_env("NODEFARM_MAX_UPLOAD_MB", "100")),
            multi_user=_env("NODEFARM_MULTI_USER", "0") in ("1", "true", "yes"),
            log_level=_env("NODEFARM_LOG_LEVEL", "INFO").upper(),
            torch_threads=max(0, int(_env("NODEFARM_TORCH_THREADS", "0"))),
            host_workers=max(1, int(_env("NODEFARM_HOST_WORKERS", "1"))),
        )

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    def directory(self, kind: str) -> Path | None:
        """ComfyUI's get_directory_by_type: only output, input and temp are reachable."""
        return {"output": self.output_dir, "input": self.input_dir, "temp": self.temp_dir}.get(kind)
