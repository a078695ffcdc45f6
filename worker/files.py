"""Files between hosts without a shared filesystem.

* Save counters are farm-wide Redis counters, so two workers never pick the same file name.
* Files a node saved (every ``{"filename", "subfolder", "type"}`` entry of its ui with type output
  or temp) are copied into Redis and announced on the ``nf:files`` stream; every API host lands
  them in its own output/temp folder (and ``/view`` reads Redis for one not landed yet).
* Input files (uploads, and the API host's input folder) are published to Redis so a worker on
  another host materialises them in its own input folder on first use.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import redis

from nodes.compat.folder_paths import safe_join
from nodes.settings import Settings
from worker import keys

log = logging.getLogger("nodefarm.files")

FILE_TTL_S = 24 * 3600
MAX_SHIPPED_BYTES = 256 * 1024 * 1024


def relpath(subfolder: str, filename: str) -> str:
    return f"{subfolder.strip('/')}/{filename}" if subfolder else filename


def make_counter(r: redis.Redis):  # type: ignore[no-untyped-def]
    def counter(kind: str, subfolder: str, filename: str, n: int) -> int:
        """Reserve ``n`` consecutive counters for ``<filename>_<N>_`` in ``subfolder``; returns the first."""
        last = int(r.incrby(keys.file_counter(kind, subfolder, filename), n))
        return last - n + 1

    return counter


def make_fetch(r: redis.Redis, settings: Settings):  # type: ignore[no-untyped-def]
    def fetch(kind: str, subfolder: str, filename: str) -> Path | None:
        root = settings.directory(kind)
        if root is None:
            return None
        target = safe_join(root, subfolder, filename)
        if target is None:
            return None
        blob = r.get(keys.file_blob(kind, relpath(subfolder, filename)))
        if blob is None:
            return None
        return land(target, [blob])

    return fetch


def land(target: Path, chunks: Iterable[bytes]) -> Path:
    """Write ``chunks`` to ``target`` through a temporary file of this process and thread, then
    move it into place: a reader never sees half a file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.part{os.getpid()}-{threading.get_ident()}")
    try:
        with open(tmp, "wb") as fh:
            for chunk in chunks:
                fh.write(chunk)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def make_model_fetch(settings: Settings):  # type: ignore[no-untyped-def]
    """The model fetch hook of ``folder_paths``: a model file missing on this host is downloaded from
    the API host (``GET /internal/models/<folder>/<file>``, streamed to a temporary file, then moved
    into place), so a worker host needs no copy of every model before its first run."""
    import requests

    def fetch(folder_name: str, filename: str, target_dir: str) -> Path | None:
        target = safe_join(Path(target_dir), "", filename)
        if target is None or not settings.api_url:
            return None
        url = f"{settings.api_url}/internal/models/{folder_name}/{filename}"
        headers = {"Authorization": f"Bearer {settings.api_token}"} if settings.api_token else {}  # api/auth.py
        started = time.monotonic()
        try:
            with requests.get(url, stream=True, timeout=(5, 300), headers=headers) as res:
                if res.status_code == 401:
                    log.warning("cannot fetch model %s/%s: the API wants a token (NODEFARM_API_TOKEN)", folder_name, filename)
                if res.status_code != 200:
                    return None
                land(target, res.iter_content(chunk_size=1 << 20))
        except (requests.RequestException, OSError) as exc:
            log.warning("cannot fetch model %s/%s from %s: %s", folder_name, filename, settings.api_url, exc)
            return None
        log.warning("fetched model %s/%s from the API host: %.1f MB in %.1f s", folder_name, filename,
                    target.stat().st_size / 1e6, time.monotonic() - started)
        return target

    return fetch


def publish_file(r: redis.Redis, kind: str, subfolder: str, filename: str, data: bytes, ttl: int | None) -> None:
    pipe = r.pipeline(transaction=False)
    pipe.set(keys.file_blob(kind, relpath(subfolder, filename)), data, ex=ttl)
    pipe.xadd(keys.FILES, {"kind": kind, "subfolder": subfolder, "filename": filename}, maxlen=10000, approximate=True)
    pipe.execute()


def ui_files(ui: Any) -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    if not isinstance(ui, dict):
        return out
    for values in ui.values():
        if not isinstance(values, (list, tuple)):
            continue
        for v in values:
            if isinstance(v, dict) and isinstance(v.get("filename"), str) and v.get("type") in ("output", "temp"):
                out.append((v["type"], str(v.get("subfolder") or ""), v["filename"]))
    return out


def ship_ui_files(farm: Any, ui: Any) -> None:
    """Copy the files a node saved to Redis so the API host(s) can land and serve them."""
    for kind, subfolder, filename in ui_files(ui):
        root = farm.settings.directory(kind)
        path = safe_join(root, subfolder, filename) if root else None
        if path is None or not path.is_file():
            log.warning("ui names %s/%s/%s but the file is not on this worker", kind, subfolder, filename)
            continue
        if path.stat().st_size > MAX_SHIPPED_BYTES:
            log.warning("file %s too large to ship through Redis", path)
            continue
        publish_file(farm.r, kind, subfolder, filename, path.read_bytes(), FILE_TTL_S)
