"""Live events to clients: ComfyUI's raw ``/ws`` and Socket.IO, fed by the ``nf:events`` stream.

Every API process follows the stream and delivers each event by its ``to`` field: one client id,
``*`` for everyone, or nobody. A ComfyUI ``/ws`` socket gets ``{"type", "data"}`` text frames and
binary frames (4-byte big-endian event type + payload); a Socket.IO client gets the same event
names and data in the room named after its client id.
"""

from __future__ import annotations

import json
import logging
import struct
import threading
import uuid
from typing import Any

import redis
from flask import Flask, request
from flask_sock import Sock
from flask_socketio import SocketIO, join_room

from nodes.settings import Settings
from worker import events, keys, prompt_queue

log = logging.getLogger("nodefarm.api.live")

SERVER_FEATURES = {"supports_preview_metadata": True, "max_upload_size": 100 * 1024 * 1024}


class Hub:
    """The raw websockets of this process, by client id (a reconnect replaces the old socket)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sockets: dict[str, Any] = {}
        self.flags: dict[int, dict] = {}
        self.send_locks: dict[int, threading.Lock] = {}
        self.socketio_clients = 0

    def add(self, sid: str, ws: Any) -> None:
        with self.lock:
            self.sockets[sid] = ws
            self.send_locks[id(ws)] = threading.Lock()

    def remove(self, sid: str, ws: Any) -> None:
        with self.lock:
            if self.sockets.get(sid) is ws:  # an old socket closing must not drop its replacement
                del self.sockets[sid]
            self.flags.pop(id(ws), None)
            self.send_locks.pop(id(ws), None)

    def send(self, ws: Any, payload: str | bytes) -> None:
        lock = self.send_locks.get(id(ws))
        if lock is None:
            return
        try:
            with lock:
                ws.send(payload)
        except Exception:  # a dead socket is dropped by its own handler
            pass

    def targets(self, to: str) -> list[Any]:
        with self.lock:
            if to == "*":
                return list(self.sockets.values())
            ws = self.sockets.get(to)
            return [ws] if ws is not None else []


def frame(event: str | int, data: Any) -> str | bytes:
    if isinstance(event, int):
        return struct.pack(">I", event) + (data if isinstance(data, bytes) else bytes(data))
    return json.dumps({"type": event, "data": data})


def install(app: Flask, settings: Settings, r: redis.Redis) -> tuple[Hub, SocketIO]:
    hub = Hub()
    sock = Sock(app)
    socketio = SocketIO(app, async_mode="threading", cors_allowed_origins=[], logger=False, engineio_logger=False)
    features = {**SERVER_FEATURES, "max_upload_size": settings.max_upload_mb * 1024 * 1024}

    def ws_handler(ws: Any) -> None:
        sid = request.args.get("clientId") or uuid.uuid4().hex
        hub.add(sid, ws)
        try:
            hub.send(ws, frame("status", events.status_data(prompt_queue.queue_remaining(r), sid)))
            first = True
            while True:
                message = ws.receive()
                if message is None:
                    break
                if first and isinstance(message, str):
                    first = False
                    try:
                        parsed = json.loads(message)
                    except ValueError:
                        continue
                    if isinstance(parsed, dict) and parsed.get("type") == "feature_flags":
                        hub.flags[id(ws)] = parsed.get("data") or {}
                        hub.send(ws, frame("feature_flags", features))
        except Exception as exc:  # the client went away
            log.debug("ws %s closed: %s", sid, exc)
        finally:
            hub.remove(sid, ws)

    sock.route("/ws")(ws_handler)
    app.add_url_rule("/api/ws", "api_ws_sock", app.view_functions["ws_handler"], websocket=True)

    @socketio.on("connect")
    def on_connect(auth: Any = None) -> None:
        sid = request.args.get("clientId")
        if not sid and isinstance(auth, dict):
            sid = auth.get("clientId")
        sid = sid or uuid.uuid4().hex
        hub.socketio_clients += 1
        join_room(sid)
        socketio.emit("status", events.status_data(prompt_queue.queue_remaining(r), sid), to=request.sid)  # type: ignore[attr-defined]

    @socketio.on("disconnect")
    def on_disconnect(*_args: Any) -> None:
        hub.socketio_clients = max(0, hub.socketio_clients - 1)

    @socketio.on("replay")
    def on_replay(data: Any) -> None:
        """Re-send a run's events after a reconnect: ``{"prompt_id", "after": stream id or "0"}``."""
        if not isinstance(data, dict) or not data.get("prompt_id"):
            return
        for entry in events.replay(r, str(data["prompt_id"]), data.get("after")):
            socketio.emit(str(entry["type"]), entry["data"], to=request.sid)  # type: ignore[attr-defined]

    return hub, socketio


def start_relay(settings: Settings, hub: Hub, socketio: SocketIO, stop: threading.Event) -> threading.Thread:
    """Follow ``nf:events`` and deliver each event to its clients.

    JSON data is passed through as stored (no parse and re-encode) except where the relay must
    look inside: ``progress_state`` deltas (expanded into ComfyUI's full frames), the end of a run,
    previews (event 4 for clients that negotiated metadata, event 1 for the others) and Socket.IO.
    """

    def loop() -> None:
        r = redis.Redis.from_url(settings.redis_url)
        registry = events.ProgressRegistry()
        last = "$"
        while not stop.is_set():
            try:
                got = r.xread({keys.EVENTS: last}, block=1000, count=500)
            except redis.RedisError as exc:
                log.warning("relay: %s", exc)
                stop.wait(1)
                continue
            for _stream, entries in got or []:
                for entry_id, fields in entries:
                    last = entry_id.decode()
                    deliver(fields, registry)

    def deliver(fields: dict, registry: events.ProgressRegistry) -> None:
        etype = fields[b"type"].decode()
        to = fields[b"to"].decode()
        raw = fields[b"data"]
        data: Any = None
        if etype == "progress_state":
            delta = json.loads(raw)
            registry.update(delta)
            if not to or not (hub.targets(to) or hub.socketio_clients):
                return  # nobody to show it to: keep the registry, skip building the full frame
            data = registry.view(str(delta.get("prompt_id", "")))
            raw = json.dumps(data).encode()
        elif etype == "executing" and raw.startswith(b'{"node":null'):
            registry.forget(fields[b"pid"].decode())
        if not to:
            return
        if etype.isdigit():
            event = int(etype)
            payload: str | bytes = frame(event, raw)
            legacy = frame(events.PREVIEW_IMAGE, events.legacy_preview(raw)) if event == events.PREVIEW_IMAGE_WITH_METADATA else None
            for ws in hub.targets(to):
                flagged = bool(hub.flags.get(id(ws), {}).get("supports_preview_metadata"))
                hub.send(ws, legacy if legacy is not None and not flagged else payload)
        else:
            text = '{"type": ' + json.dumps(etype) + ', "data": ' + raw.decode() + "}"
            for ws in hub.targets(to):
                hub.send(ws, text)
        if hub.socketio_clients:
            if data is None:
                data = raw if etype.isdigit() else json.loads(raw)
            try:
                socketio.emit(etype, data, to=None if to == "*" else to)
            except Exception as exc:
                log.debug("socketio emit failed: %s", exc)

    thread = threading.Thread(target=loop, name="nodefarm-relay", daemon=True)
    thread.start()
    return thread
