"""/view, /upload/image, /upload/mask and the lander that brings files saved by workers to this host."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from flask import Blueprint, Response, request

from api.routing import farm, json_response, twin, user_file
from api.schemas import MaskForm, UploadForm, ViewQuery
from api.validate import takes
from nodes.settings import Settings
from worker import files, keys

log = logging.getLogger("nodefarm.api.files")
bp = Blueprint("files", __name__)

# the largest image /view converts (preview, channel): 48 MP, an 8K frame with room; a bigger one (or
# a header that claims one) is a 413, not seconds of CPU per request
PREVIEW_MAX_PIXELS = 48_000_000


class TooManyPixels(ValueError):
    """An image too large to convert on request."""


INLINE_UNSAFE = frozenset({"text/css"})  # beside ACTIVE_TYPES: outputs are never style sheets of our pages
ANNOTATION = re.compile(r"^(.*) \[(input|output|temp)\]$")


def _split_annotation(filename: str, kind: str) -> tuple[str, str]:
    m = ANNOTATION.match(filename)
    return (m.group(1), m.group(2)) if m else (filename, kind)


@twin(bp, "/view", methods=["GET"])
@takes(query=ViewQuery, summary="A file of output/, input/ or temp/ (preview=webp;90 or channel=rgb|a convert images)")
def view(query: ViewQuery) -> Response:
    f = farm()
    filename, kind = _split_annotation(query.filename, query.type or "output")
    if filename.startswith("/") or ".." in filename:
        return Response("invalid filename", status=400)
    root = f.settings.directory(kind)
    if root is None:
        return Response("invalid type", status=400)
    subfolder = query.subfolder
    target = files.safe_join(root, subfolder, filename)
    if target is None:
        return Response("forbidden", status=403)
    if not target.is_file():
        landed = land_from_redis(f.r, f.settings, kind, subfolder, filename)
        if landed is None:
            return Response("not found", status=404)
        target = landed
    channel = query.channel
    if query.preview is not None or channel in ("rgb", "a"):
        try:
            converted = _converted_image(target, query.preview, channel)
        except TooManyPixels as exc:
            return Response(str(exc), status=413)
        if converted is not None:
            body, mime = converted
            return Response(body, mimetype=mime, headers={"Content-Disposition": f'filename="{target.name}"'})
    return user_file(target, also_active=INLINE_UNSAFE)


def _bounded(img: Any) -> None:
    """Refuse an image whose header claims more than PREVIEW_MAX_PIXELS before anything decodes it."""
    if img.width * img.height > PREVIEW_MAX_PIXELS:  # decoding it would cost seconds of CPU
        raise TooManyPixels(f"{img.width}x{img.height} is too large to convert (limit {PREVIEW_MAX_PIXELS} pixels)")


def _converted_image(path: Path, preview: str | None, channel: str) -> tuple[bytes, str] | None:
    """ComfyUI's ``/view`` conversions: ``preview=webp;90`` / ``jpeg;Q`` thumbnails and
    ``channel=rgb|a`` extractions (PNG; ``channel`` is the raw query value, "" when absent). None when
    the file is no image Pillow can read."""
    from PIL import Image, UnidentifiedImageError

    buffer = io.BytesIO()
    try:
        with Image.open(path) as img:
            _bounded(img)
            if preview is not None:
                info = preview.split(";")
                fmt = info[0] if info[0] in ("webp", "jpeg") and "a" not in channel else "webp"
                quality = int(info[-1]) if info[-1].isdigit() else 90
                out = img.convert("RGB") if fmt == "jpeg" or channel == "rgb" else img
                out.save(buffer, format=fmt, quality=quality)
                return buffer.getvalue(), f"image/{fmt}"
            if channel == "rgb":
                img.convert("RGB").save(buffer, format="PNG")
                return buffer.getvalue(), "image/png"
            alpha = img.getchannel("A") if img.mode == "RGBA" else Image.new("L", img.size, 255)
            out = Image.new("RGBA", img.size)
            out.putalpha(alpha)
            out.save(buffer, format="PNG")
            return buffer.getvalue(), "image/png"
    except Image.DecompressionBombError as exc:
        raise TooManyPixels(str(exc)) from exc
    except (UnidentifiedImageError, OSError, ValueError):
        return None


def land_from_redis(r: redis.Redis, settings: Settings, kind: str, subfolder: str, filename: str) -> Path | None:
    """Write a file that a worker shipped through Redis into this host's folder."""
    root = settings.directory(kind)
    target = files.safe_join(root, subfolder, filename) if root else None
    if target is None:
        return None
    blob = r.get(keys.file_blob(kind, files.relpath(subfolder, filename)))
    if blob is None:
        return None
    if target.is_file() and target.stat().st_size == len(blob):
        return target
    return files.land(target, [blob])


@dataclass
class Upload:
    """An uploaded file and where it goes, with ComfyUI's naming rules applied."""

    kind: str
    subfolder: str
    name: str
    target: Path
    data: bytes
    same_as_existing: bool  # a file of that name with the same content exists: ComfyUI reuses it


def read_upload(form: UploadForm) -> Upload | Response:
    """Take an /upload/* form: the ``image`` file, ``type``, ``subfolder``, ``overwrite``."""
    f = farm()
    image = request.files.get("image")
    if image is None or not image.filename:
        return Response("no image", status=400)
    kind = form.type or "input"
    root = f.settings.directory(kind)
    if root is None:
        return Response("invalid type", status=400)
    subfolder = form.subfolder
    overwrite = form.overwrite.lower() in ("true", "1")
    name = os.path.basename(image.filename.replace("\\", "/"))
    if not name or name in (".", "..") or "\x00" in name:
        return Response("invalid file name", status=400)
    data = image.read()
    if len(data) > f.settings.max_upload_mb * 1024 * 1024:
        return Response("file too large", status=413)
    target = files.safe_join(root, subfolder, name)
    if target is None:
        return Response("invalid path", status=400)
    same = False
    if not overwrite:
        stem, ext = os.path.splitext(name)
        digest = hashlib.sha256(data).digest()
        i = 1
        while target.exists():
            if hashlib.sha256(target.read_bytes()).digest() == digest:
                same = True
                break
            name = f"{stem} ({i}){ext}"
            target = files.safe_join(root, subfolder, name) or target
            i += 1
    return Upload(kind, subfolder, name, target, data, same)


def store_upload(up: Upload, data: bytes) -> Response:
    """Write the file on this host and publish it to Redis for workers on other hosts."""
    try:
        up.target.parent.mkdir(parents=True, exist_ok=True)
        up.target.write_bytes(data)
    except OSError as exc:  # a file where the subfolder would go, a name the file system refuses
        return Response(f"cannot store the upload there: {exc.strerror}", status=400)
    files.publish_file(farm().r, up.kind, up.subfolder, up.name, data, None if up.kind == "input" else files.FILE_TTL_S)
    return upload_answer(up)


def upload_answer(up: Upload) -> Response:
    return json_response({"name": up.name, "subfolder": up.subfolder, "type": up.kind})


@twin(bp, "/upload/image", methods=["POST"])
@takes(form=UploadForm, files=("image",), summary="Upload an image into input/ (or output/, temp/)")
def upload_image(form: UploadForm) -> Response:
    up = read_upload(form)
    return up if isinstance(up, Response) else store_upload(up, up.data)


@twin(bp, "/upload/mask", methods=["POST"])
@takes(form=MaskForm, files=("image",), summary="Upload a mask: its alpha onto original_ref, saved as a new input")
def upload_mask(form: MaskForm) -> Response:
    """Copy the uploaded image's alpha channel onto ``original_ref`` (keeping its PNG text) and save it
    as a new upload, with ``/upload/image``'s naming rules."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    f = farm()
    up = read_upload(form)
    if isinstance(up, Response):
        return up
    try:
        ref = json.loads(form.original_ref)
        assert isinstance(ref, dict)
    except (ValueError, AssertionError, RecursionError):
        return Response("invalid original_ref", status=400)
    ref_name = str(ref.get("filename", ""))
    m = ANNOTATION.match(ref_name)
    ref_kind = m.group(2) if m else str(ref.get("type") or "output")
    ref_name = m.group(1) if m else ref_name
    if not ref_name or ref_name.startswith("/") or ".." in ref_name:
        return Response("invalid original_ref", status=400)
    ref_root = f.settings.directory(ref_kind)
    if ref_root is None:
        return Response("invalid original_ref type", status=400)
    ref_sub = str(ref.get("subfolder") or "")
    original = files.safe_join(ref_root, ref_sub, ref_name)
    if original is None:
        return Response("forbidden", status=403)
    if not original.is_file():
        original = land_from_redis(f.r, f.settings, ref_kind, ref_sub, ref_name) or original
    if up.same_as_existing:
        return upload_answer(up)
    if not original.is_file():
        return upload_answer(up)  # ComfyUI writes nothing
    try:
        with Image.open(original) as orig:
            _bounded(orig)
            meta = PngInfo()
            for k, v in (getattr(orig, "text", None) or {}).items():
                meta.add_text(k, v)
            merged = orig.convert("RGBA")
        with Image.open(io.BytesIO(up.data)) as mask:
            _bounded(mask)
            if mask.size != merged.size:
                return Response(f"the mask is {mask.width}x{mask.height}, the image {merged.width}x{merged.height}",
                                status=400)
            merged.putalpha(mask.convert("RGBA").getchannel("A"))
    except (TooManyPixels, Image.DecompressionBombError) as exc:
        return Response(str(exc), status=413)
    except (OSError, ValueError) as exc:  # not an image Pillow reads (UnidentifiedImageError is an OSError)
        return Response(f"not an image: {exc}", status=400)
    buffer = io.BytesIO()
    merged.save(buffer, format="PNG", compress_level=4, pnginfo=meta)
    return store_upload(up, buffer.getvalue())


# ---- host boot and landing ---------------------------------------------------------------------


def seed_counters(r: redis.Redis, settings: Settings) -> None:
    """Make the farm-wide save counters start after the files already in this host's output folder."""
    pattern = re.compile(r"^(.*)_(\d+)_.*$")
    best: dict[tuple[str, str], int] = {}
    if not settings.output_dir.is_dir():
        return
    for path in settings.output_dir.rglob("*"):
        m = pattern.match(path.name)
        if path.is_file() and m:
            sub = path.parent.relative_to(settings.output_dir).as_posix()
            sub = "" if sub == "." else sub
            k = (sub, m.group(1))
            best[k] = max(best.get(k, 0), int(m.group(2)))
    script = "local c = tonumber(redis.call('GET', KEYS[1]) or '0'); if c < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end"
    for (sub, name), n in best.items():
        r.eval(script, 1, keys.file_counter("output", sub, name), n)


def publish_inputs(r: redis.Redis, settings: Settings, limit_bytes: int = 512 * 1024 * 1024) -> int:
    """Publish this host's input folder so workers on other hosts can load those files."""
    total = 0
    if not settings.input_dir.is_dir():
        return 0
    for path in sorted(settings.input_dir.rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        size = path.stat().st_size
        if total + size > limit_bytes:
            log.warning("input folder larger than %d bytes; the rest is published on upload only", limit_bytes)
            break
        rel = path.relative_to(settings.input_dir)
        sub = rel.parent.as_posix()
        key = keys.file_blob("input", files.relpath("" if sub == "." else sub, rel.name))
        if r.strlen(key) != size:
            r.set(key, path.read_bytes())
        total += size
    return total


def start_lander(settings: Settings, stop: threading.Event) -> threading.Thread:
    """Follow the files stream and land every file a worker saved into this host's folders."""

    def loop() -> None:
        r = redis.Redis.from_url(settings.redis_url)
        cursor_key = keys.lander_cursor(f"{socket.gethostname()}:{settings.output_dir}")
        last = (r.get(cursor_key) or b"0-0").decode()
        while not stop.is_set():
            try:
                got = r.xread({keys.FILES: last}, block=1000, count=100)
                for _stream, entries in got or []:
                    for entry_id, fields in entries:
                        last = entry_id.decode()
                        kind, sub, name = (fields[b"kind"].decode(), fields[b"subfolder"].decode(), fields[b"filename"].decode())
                        if kind != "input":
                            land_from_redis(r, settings, kind, sub, name)
                    r.set(cursor_key, last)
            except redis.RedisError as exc:
                log.warning("lander: %s", exc)
                stop.wait(1)

    thread = threading.Thread(target=loop, name="nodefarm-lander", daemon=True)
    thread.start()
    return thread
