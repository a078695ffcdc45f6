"""Events of runs, written to Redis streams and relayed to clients by every API process.

Each event is one entry of the global stream ``nf:events`` (capped; API processes follow it live)
and of the run's own stream (capped; replayed after a reconnect). An entry carries ``to``: the
client id it is for, ``*`` for every client, or ``""`` for no live client (kept for replay only),
following ComfyUI's routing rules (spec/comfyui.md section 4.2).
"""

from __future__ import annotations

import json
from typing import Any

from worker import keys

GLOBAL_MAXLEN = 20000
RUN_MAXLEN = 60000  # a run's own stream (replay): 3 events a node, so ~20,000 nodes before trimming

# Sent only to the submitting client; with no client they are not sent at all.
CLIENT_ONLY = frozenset(
    {"execution_start", "execution_cached", "execution_success", "execution_error", "executing", "executed"}
)


def route(event: str, data: Any, client_id: str | None) -> str:
    if event == "status":
        return "*"
    if client_id:
        return client_id
    if event == "execution_error" and isinstance(data, dict) and data.get("exception_type") == "ExecutionBlocked":
        return "*"
    return "" if event in CLIENT_ONLY else "*"


_ENCODER = json.JSONEncoder(separators=(",", ":"), default=str)


def encode_data(data: Any) -> str | bytes:
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    return _ENCODER.encode(data)


def add(pipe: Any, pid: str | None, client_id: str | None, event: str | int, data: Any, to: str | None = None) -> None:
    """Queue one event on a redis pipeline (transactional or not). ``event`` int = binary frame."""
    dest = to if to is not None else route(str(event), data, client_id)
    fields = {"pid": pid or "", "to": dest, "type": str(event), "data": encode_data(data)}
    pipe.xadd(keys.EVENTS, fields, maxlen=GLOBAL_MAXLEN, approximate=True)
    if pid:
        pipe.xadd(keys.run_events(pid), fields, maxlen=RUN_MAXLEN, approximate=True)


def status_data(queue_remaining: int, sid: str | None = None) -> dict:
    data: dict[str, Any] = {"status": {"exec_info": {"queue_remaining": queue_remaining}}}
    if sid is not None:
        data["sid"] = sid
    return data


def decode_entry(fields: dict) -> dict:
    """A stream entry back into ``{pid, to, type, data}`` (data parsed unless binary)."""
    def s(v: Any) -> str:
        return v.decode() if isinstance(v, bytes) else v

    etype = s(fields[b"type"] if b"type" in fields else fields["type"])
    raw = fields.get(b"data", fields.get("data"))
    data: Any
    if etype.isdigit():
        data = raw if isinstance(raw, bytes) else str(raw).encode()
    else:
        data = json.loads(raw or "null")
    return {
        "pid": s(fields.get(b"pid", fields.get("pid", ""))),
        "to": s(fields.get(b"to", fields.get("to", ""))),
        "type": int(etype) if etype.isdigit() else etype,
        "data": data,
    }


PREVIEW_IMAGE = 1
UNENCODED_PREVIEW_IMAGE = 2
PREVIEW_IMAGE_WITH_METADATA = 4


def preview_payload(image: Any, fmt: str, max_size: int | None, meta: dict) -> bytes:
    """Event-4 payload (spec 4.4): BE metadata length + JSON metadata + encoded image.

    ``image`` is a PIL image; it is shrunk to fit ``max_size`` and encoded as JPEG or PNG.
    """
    import io
    import struct

    from PIL import ImageOps

    if max_size:
        image = ImageOps.contain(image, (max_size, max_size))
    buf = io.BytesIO()
    png = str(fmt).upper() == "PNG"
    image.save(buf, format="PNG" if png else "JPEG", quality=95)
    meta = {**meta, "image_type": "image/png" if png else "image/jpeg"}
    blob = json.dumps(meta).encode()
    return struct.pack(">I", len(blob)) + blob + buf.getvalue()


def legacy_preview(payload: bytes) -> bytes:
    """An event-4 payload as the event-1 payload unflagged clients get: BE image type + image."""
    import struct

    (n,) = struct.unpack(">I", payload[:4])
    meta = json.loads(payload[4 : 4 + n])
    kind = 2 if meta.get("image_type") == "image/png" else 1
    return struct.pack(">I", kind) + payload[4 + n :]


class ProgressRegistry:
    """ComfyUI's per-prompt progress registry, rebuilt from the stored ``progress_state`` deltas.

    Every relay (live in each API process, and replay) feeds a run's deltas through one of these
    and sends ComfyUI's full frames to the clients that want them. Deltas are kept as they come and
    folded in only when a full frame is asked for; entries are kept serialized, so a frame is one join.
    """

    def __init__(self) -> None:
        self.runs: dict[str, dict[str, str]] = {}
        self.unread: dict[str, list[str]] = {}

    def update(self, pid: str, raw: str) -> None:
        """Take a stored ``progress_state`` delta (its JSON text) of run ``pid``."""
        self.unread.setdefault(pid, []).append(raw)

    def frame(self, pid: str) -> str:
        """JSON text of ``{"prompt_id", "nodes"}`` with every entry of the run: ComfyUI's full frame."""
        entries = self.runs.setdefault(pid, {})
        for raw in self.unread.pop(pid, []):
            for nid, entry in (json.loads(raw).get("nodes") or {}).items():
                entries[json.dumps(nid)] = json.dumps(entry)
        return '{"prompt_id": ' + json.dumps(pid) + ', "nodes": {' + ", ".join(f"{k}: {v}" for k, v in entries.items()) + "}}"

    def expand(self, delta: dict) -> dict:
        """Take a delta and return the run's full frame, both as data."""
        pid = str(delta.get("prompt_id", ""))
        self.update(pid, json.dumps(delta))
        return dict(json.loads(self.frame(pid)))

    def forget(self, pid: str) -> None:
        self.runs.pop(pid, None)
        self.unread.pop(pid, None)


def replay(r: Any, pid: str, after: str | None = None) -> list[dict]:
    """A run's stored events (``progress_state`` expanded), newer than stream id ``after``.

    Each item is ``{"id", "type", "data"}``; binary events carry bytes.
    """
    registry = ProgressRegistry()
    out: list[dict] = []
    for entry_id, fields in r.xrange(keys.run_events(pid), min="-"):
        ev = decode_entry(fields)
        if ev["type"] == "progress_state":
            ev["data"] = registry.expand(ev["data"])
        eid = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
        if after and _stream_id(eid) <= _stream_id(after):
            continue
        out.append({"id": eid, "type": ev["type"], "data": ev["data"]})
    return out


def _stream_id(value: str) -> tuple[int, int]:
    ms, _, seq = str(value).partition("-")
    try:
        return int(ms), int(seq or 0)
    except ValueError:
        return (0, 0)
