"""Worker heartbeats (with devices and VRAM) and the reaper that rescues nodes of dead workers.

Each worker's main process writes ``nf:workers`` (name -> last beat) every ``heartbeat_s`` and its
devices to ``nf:worker:<name>``. Any worker that sees another silent for 3 periods claims it (ZREM
wins once) and re-sends the nodes that worker was executing; their attempt counters keep a node
that kills workers from looping. The Celery message of a dead worker also comes back after the
visibility timeout; the run state makes that duplicate a no-op.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import subprocess
import threading
import time
from typing import Any

import redis

from nodes.settings import Settings
from worker import blocklist, functions, keys, rescue

log = logging.getLogger("nodefarm.heartbeat")


def gpu_devices() -> list[dict[str, Any]]:
    """Devices visible to this worker, read with nvidia-smi (never initialises CUDA here)."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=index,name,memory.total,memory.free,utilization.gpu",
             "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout
    except (subprocess.SubprocessError, OSError):
        return []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    allowed = [v.strip() for v in visible.split(",")] if visible else None
    devices: list[dict[str, Any]] = []
    for line in out.strip().splitlines():
        idx, name, total, free, *rest = [p.strip() for p in line.split(",")]
        if allowed is not None and idx not in allowed:
            continue
        mib = 1024 * 1024
        devices.append({
            "name": f"cuda:{len(devices)} {name}", "type": "cuda", "index": len(devices),
            "vram_total": int(float(total)) * mib, "vram_free": int(float(free)) * mib,
            "torch_vram_total": 0, "torch_vram_free": 0,
            # percent of time a kernel ran over the last sample period ("[N/A]" on some boards)
            "utilization": float(rest[0]) if rest and rest[0].replace(".", "", 1).isdigit() else None,
        })
    return devices


def memory() -> tuple[int, int]:
    """(total, available) RAM in bytes, from /proc/meminfo ((0, 0) where there is none)."""
    try:
        with open("/proc/meminfo") as f:
            info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f}
    except OSError:
        return 0, 0
    return info.get("MemTotal", 0), info.get("MemAvailable", 0)


def cpu_device() -> dict[str, Any]:
    total, free = memory()
    return {"name": "cpu", "type": "cpu", "index": None, "vram_total": total, "vram_free": free,
            "torch_vram_total": total, "torch_vram_free": free}


def resident_models(results: redis.Redis, name: str) -> list[dict[str, Any]]:
    """The models worker ``name`` holds in memory: ``{"key", "objects", "bytes"}`` each."""
    found = results.hgetall(keys.worker_models(name))
    return [{"key": k.decode(), **json.loads(v)} for k, v in sorted(found.items())]


def beat(r: redis.Redis, settings: Settings, devices: list[dict[str, Any]],
         models: list[dict[str, Any]] | None = None) -> None:
    now = time.time()
    info = {"name": settings.worker_name, "host": platform.node(), "pid": os.getpid(), "beat": now, "devices": devices,
            "models": models or [], "restarts": int(os.environ.get("NODEFARM_RESTARTS") or 0)}
    pipe = r.pipeline(transaction=False)
    pipe.zadd(keys.WORKERS, {settings.worker_name: now})
    pipe.set(keys.worker_info(settings.worker_name), json.dumps(info), ex=int(max(10, settings.heartbeat_s * 10)))
    pipe.execute()


def reap(r: redis.Redis, settings: Settings, results: redis.Redis | None = None) -> list[str]:
    """Claim workers silent for 3 heartbeats and re-send the nodes they were running (their models
    are gone with them: ``results`` forgets the list)."""
    deadline = time.time() - 3 * settings.heartbeat_s
    rescued: list[str] = []
    for raw in r.zrangebyscore(keys.WORKERS, 0, deadline):
        name = raw.decode() if isinstance(raw, bytes) else raw
        if name == settings.worker_name or not r.zrem(keys.WORKERS, name):
            continue  # ourselves, or another worker claimed it first
        blocklist.charge(r, settings, name, "died (silent for 3 heartbeats)")
        if results is not None:
            results.delete(keys.worker_models(name))
        # tasks waiting in its private queue go to the others (an input only it held is recomputed)
        moved = 0
        while r.lmove(keys.worker_queue(name), keys.SHARED_QUEUE, "RIGHT", "LEFT") is not None:
            moved += 1
        if moved:
            log.warning("worker %s died with %d tasks in its queue; moved them to the shared queue", name, moved)
        rescued += resend_running(r, name, "died") + rescue.resend_reserved(r, name, "died")
    return rescued


def resend_running(r: redis.Redis, name: str, why: str) -> list[str]:
    """Re-send the nodes worker ``name`` was executing (its running hash), to any worker."""
    return rescue.resend_held(r, keys.worker_running(name), name, why, "while running")


def restarted(r: redis.Redis, settings: Settings) -> list[str]:
    """A worker starting under a name whose earlier process did not stop cleanly (SIGKILL, then a
    supervisor restarting it at once, before anyone saw the name go silent): that incarnation's
    in-flight nodes are re-sent, as for a worker that died. Called once, before consuming."""
    running = resend_running(r, settings.worker_name, "was restarted")
    if running:  # its earlier process died mid-node: a death (worker/blocklist.py)
        blocklist.charge(r, settings, settings.worker_name, f"restarted with {len(running)} node(s) running")
    return running + rescue.resend_reserved(r, settings.worker_name, "was restarted")


def start(settings: Settings, stop: threading.Event) -> threading.Thread:
    def loop() -> None:
        r = redis.Redis.from_url(settings.redis_url)
        results = redis.Redis.from_url(settings.result_redis_url or settings.redis_url)
        devices = gpu_devices() or ([] if not settings.cpu else [])
        devices = devices or [cpu_device()]
        ticks = 0
        while not stop.is_set():
            try:
                if ticks % 15 == 0 and devices and devices[0]["type"] == "cuda":
                    devices = gpu_devices() or devices
                elif devices and devices[0]["type"] == "cpu":
                    devices = [cpu_device()]
                functions.ensure_loaded(r)  # a state Redis restarted empty gets them back within a beat
                beat(r, settings, devices, resident_models(results, settings.worker_name))
                reap(r, settings, results)
            except redis.RedisError as exc:
                log.warning("heartbeat failed: %s", exc)
            ticks += 1
            stop.wait(settings.heartbeat_s)
        try:
            r.zrem(keys.WORKERS, settings.worker_name)
            r.delete(keys.worker_info(settings.worker_name))
        except redis.RedisError:
            pass

    thread = threading.Thread(target=loop, name="nodefarm-heartbeat", daemon=True)
    thread.start()
    return thread
