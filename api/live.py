"""Live events to clients: ComfyUI's raw ``/ws`` and Socket.IO, fed by the ``nf:events`` stream.

Every API process follows the stream and delivers each event by its ``to`` field: one client id,
``*`` for everyone, or nobody. A ComfyUI ``/ws`` socket gets ``{"type", "data"}`` text frames and
binary frames (4-byte big-endian event type + payload); a Socket.IO client gets the same event
names and data in the room named after its client id.

``progress_state``: ComfyUI sends the whole progress registry of the prompt in every frame, so a run
of n nodes costs O(n²) bytes. Workers store only the entry that changed; this relay keeps each
run's registry and sends a plain client ComfyUI's full frames. A client that asks for deltas
(``{"type": "nodefarm.flags", "data": {"progress_delta": true}}`` on ``/ws``, or
``auth={"progress_delta": true}`` on Socket.IO) gets ``nodefarm.progress_delta`` events instead:
the registry of the run once (the first time), then only what changed. The editor's nodefarm
extension (``frontend/editor/nodefarm.js``) asks for them and rebuilds ComfyUI's frames in the page,
so the editor shows the same progress for a few kB per node instead of the whole registry.

Resume: the relay remembers, per client id, the last ``nf:events`` entry it delivered to that client
(``nf:client:<id>:last``, :data:`RESUME_TTL_S`). A client that connects again with the same id (a
ComfyUI ``/ws`` reconnect with its ``clientId``; Socket.IO ``auth={"client_id", "last_event_id"?}``),
to this API process or to a restarted one, first gets the events addressed to it that it missed, in
order, then the live ones: :func:`resume` sends the last of them under the relay's lock while the
relay holds the client back, so none is skipped or sent twice.
"""

from __future__ import annotations

import json
import logging
import re
import struct
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import redis
from flask import Flask, request
from flask_sock import Sock
from flask_socketio import SocketIO, join_room

from api import auth as auth_rules
from api import connection, dashboard
from api import origin as origin_rules
from nodes.settings import Settings
from worker import events, keys, prompt_queue

log = logging.getLogger("nodefarm.api.live")

RELAY_BATCH = 500  # events read at once
RELAY_PAUSE_S = 0.005  # after a short read, wait this long so the next read takes a batch (latency <= 5 ms)
RELAY_IDLE_PAUSE_S = 0.1  # the same with no client connected to this process (nobody waits for the events)
DELTA_EVENT = "nodefarm.progress_delta"
FLAGS_MESSAGE = "nodefarm.flags"
SERVER_FEATURES = {"supports_preview_metadata": True, "max_upload_size": 100 * 1024 * 1024}
RESUME_TTL_S = 600  # how long a client id's place in the event stream is kept (a reconnect within it resumes)
RESUME_BATCH = 1000  # events read at once when a client catches up


@dataclass
class Peer:
    """One connected client (a ``/ws`` socket or a Socket.IO session)."""

    client_id: str
    flags: dict = field(default_factory=dict)
    deltas: bool = False
    synced: set[str] = field(default_factory=set)  # runs whose whole registry this delta client has
    lock: threading.Lock = field(default_factory=threading.Lock)
    resuming: bool = False  # catching up on missed events: the relay holds live ones back (resume)


class Hub:
    """The clients of this process: raw websockets by client id (a reconnect replaces the old
    socket) and Socket.IO sessions by session id."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sockets: dict[str, Any] = {}
        self.peers: dict[int, Peer] = {}  # id(ws) -> its peer
        self.sio: dict[str, Peer] = {}  # Socket.IO session id -> its peer
        self.relay_lock = threading.Lock()  # held by the relay while it delivers a batch
        self.relay_last = "0-0"  # the last nf:events entry the relay delivered

    @property
    def socketio_clients(self) -> int:
        return len(self.sio)

    def add(self, sid: str, ws: Any, resuming: bool = False) -> Peer:
        peer = Peer(sid, resuming=resuming)
        with self.lock:
            self.sockets[sid] = ws
            self.peers[id(ws)] = peer
        return peer

    def remove(self, sid: str, ws: Any) -> None:
        with self.lock:
            if self.sockets.get(sid) is ws:  # an old socket closing must not drop its replacement
                del self.sockets[sid]
            self.peers.pop(id(ws), None)

    def send(self, ws: Any, payload: str | bytes) -> None:
        peer = self.peers.get(id(ws))
        if peer is None:
            return
        try:
            with peer.lock:
                ws.send(payload)
        except Exception:  # a dead socket is dropped by its own handler
            pass

    def targets(self, to: str) -> list[tuple[Any, Peer]]:
        with self.lock:
            if to == "*":
                pairs = list(self.sockets.values())
            else:
                ws = self.sockets.get(to)
                pairs = [ws] if ws is not None else []
            return [(ws, self.peers[id(ws)]) for ws in pairs if id(ws) in self.peers and not self.peers[id(ws)].resuming]

    def all_peers(self) -> list[Peer]:
        with self.lock:
            return list(self.peers.values()) + list(self.sio.values())

    def sio_targets(self, to: str) -> list[tuple[str, Peer]]:
        with self.lock:
            return [(sid, p) for sid, p in self.sio.items() if (to == "*" or p.client_id == to) and not p.resuming]

    def has(self, client_id: str) -> bool:
        """Whether a client of that id is connected to this process and gets live events."""
        with self.lock:
            ws = self.sockets.get(client_id)
            peer = self.peers.get(id(ws)) if ws is not None else None
            return (peer is not None and not peer.resuming) or any(
                p.client_id == client_id and not p.resuming for p in self.sio.values())


def frame(event: str | int, data: Any) -> str | bytes:
    if isinstance(event, int):
        return struct.pack(">I", event) + (data if isinstance(data, bytes) else bytes(data))
    return json.dumps({"type": event, "data": data})


def _text(event: str, raw: str) -> str:
    return '{"type": ' + json.dumps(event) + ', "data": ' + raw + "}"


def _client_message(peer: Peer, message: Any, first: bool, features: dict) -> str | None:
    """Handle a client's text message; returns a reply to send, if any. ComfyUI reads only the first
    message (``feature_flags``); ``nodefarm.flags`` is ours and is read whenever it comes."""
    try:
        parsed = json.loads(message)
    except ValueError:
        return None
    if not isinstance(parsed, dict):
        return None
    data: dict = parsed["data"] if isinstance(parsed.get("data"), dict) else {}
    if first and parsed.get("type") == "feature_flags":
        peer.flags = data
        return frame("feature_flags", features)  # type: ignore[return-value]
    if parsed.get("type") == FLAGS_MESSAGE and "progress_delta" in data:
        peer.deltas = bool(data["progress_delta"])
        peer.synced.clear()
    return None


def install(app: Flask, settings: Settings, r: redis.Redis) -> tuple[Hub, SocketIO]:
    hub = Hub()
    sock = Sock(app)
    allow = settings.cors_origins

    def origin_allowed(origin: str | None, environ: dict) -> bool:  # engineio asks before Flask sees it
        return origin is None or origin_rules.allowed(origin, environ.get("HTTP_HOST", ""), allow)

    socketio = SocketIO(app, async_mode="threading", cors_allowed_origins=origin_allowed, logger=False,
                        engineio_logger=False)
    features = {**SERVER_FEATURES, "max_upload_size": settings.max_upload_mb * 1024 * 1024}
    connection.untimed_socketio_upgrades(app)  # an idle Socket.IO websocket is not dropped by the header read limit
    dashboard.install(app, socketio, settings)  # /nodefarm/ gets farm-wide events in its own namespace

    def ws_handler(ws: Any) -> None:
        sid = request.args.get("clientId") or uuid.uuid4().hex
        after = _cursor(r, request.args.get("clientId"))
        peer = hub.add(sid, ws, resuming=after is not None)
        try:
            hub.send(ws, frame("status", events.status_data(prompt_queue.queue_remaining(r), sid)))
            if after is not None:
                registry = events.ProgressRegistry()
                resume(r, hub, peer, after, lambda fields: hub.send(ws, p) if (p := ws_payload(peer, fields, registry)) else None)
            first = True
            while True:
                message = ws.receive()
                if message is None:
                    break
                if isinstance(message, str):
                    reply = _client_message(peer, message, first, features)
                    first = False
                    if reply is not None:
                        hub.send(ws, reply)
        except Exception as exc:  # the client went away
            log.debug("ws %s closed: %s", sid, exc)
        finally:
            hub.remove(sid, ws)

    sock.route("/ws")(ws_handler)
    app.add_url_rule("/api/ws", "api_ws_sock", app.view_functions["ws_handler"], websocket=True)

    @socketio.on("connect")
    def on_connect(auth: Any = None) -> None:
        auth_rules.refuse_socketio(auth)  # with tokens on: none valid, no connection
        sid = request.args.get("clientId")
        if not sid and isinstance(auth, dict):
            sid = auth.get("clientId") or auth.get("client_id")
        named = str(sid) if sid else None  # a client id of its own: it may resume
        sid = named or uuid.uuid4().hex
        asked = auth.get("last_event_id") if isinstance(auth, dict) else None
        after = str(asked) if asked else _cursor(r, named)
        peer = Peer(sid, deltas=bool(isinstance(auth, dict) and auth.get("progress_delta")), resuming=after is not None)
        with hub.lock:
            hub.sio[request.sid] = peer  # type: ignore[attr-defined]
        if after is None:
            join_room(sid)
        socketio.emit("status", events.status_data(prompt_queue.queue_remaining(r), sid), to=request.sid)  # type: ignore[attr-defined]
        if after is not None:
            socketio.start_background_task(_resume_sio, r, hub, socketio, peer, request.sid, after)  # type: ignore[attr-defined]

    @socketio.on("disconnect")
    def on_disconnect(*_args: Any) -> None:
        with hub.lock:
            hub.sio.pop(request.sid, None)  # type: ignore[attr-defined]

    @socketio.on("replay")
    def on_replay(data: Any) -> None:
        """Re-send a run's events after a reconnect: ``{"prompt_id", "after": stream id or "0"}``."""
        if not isinstance(data, dict) or not data.get("prompt_id"):
            return
        for entry in events.replay(r, str(data["prompt_id"]), data.get("after")):
            socketio.emit(str(entry["type"]), entry["data"], to=request.sid)  # type: ignore[attr-defined]

    return hub, socketio


def _cursor(r: redis.Redis, client_id: str | None) -> str | None:
    """Where client ``client_id`` left the event stream, if it was here lately (None: a new client)."""
    if not client_id:
        return None
    try:
        raw = r.get(keys.client_cursor(client_id))
    except redis.RedisError:
        return None
    return raw.decode() if raw else None


def remember(r: redis.Redis, hub: Hub, reached: dict[str, str]) -> None:
    """Record the last entry delivered to each client connected here (not those catching up)."""
    live = {cid: last for cid, last in reached.items() if hub.has(cid)}
    if not live:
        return
    try:
        pipe = r.pipeline(transaction=False)
        for cid, last in live.items():
            pipe.set(keys.client_cursor(cid), last, ex=RESUME_TTL_S)
        pipe.execute()
    except redis.RedisError as exc:
        log.warning("relay: cannot record where clients are: %s", exc)


def resume(r: redis.Redis, hub: Hub, peer: Peer, after: str, send: Any, release: Any = None) -> int:
    """Send ``peer`` the events addressed to its client id after stream entry ``after``, in order,
    then let the relay's live events through. Most are read while the relay runs on; the last ones
    under its lock, up to the entry it delivered last, so none is skipped or sent twice.
    ``release``: called under the lock before the live events flow (Socket.IO joins its room)."""
    target = peer.client_id.encode()
    cursor, sent = after if _STREAM_ID.fullmatch(after) else hub.relay_last, 0  # not an entry id: nothing to catch up

    def catch_up(until: str) -> None:
        nonlocal cursor, sent
        while _position(cursor) < _position(until):
            batch = r.xrange(keys.EVENTS, min="(" + cursor, max=until, count=RESUME_BATCH)
            if not batch:
                return
            for entry_id, fields in batch:
                cursor = entry_id.decode()
                if fields.get(b"to") == target:
                    send(fields)
                    sent += 1

    try:
        catch_up(hub.relay_last)
        with hub.relay_lock:
            catch_up(hub.relay_last)
            if sent:
                r.set(keys.client_cursor(peer.client_id), cursor, ex=RESUME_TTL_S)
            if release is not None:
                release()
            peer.resuming = False
    except redis.RedisError as exc:
        log.warning("resume of client %s: %s", peer.client_id, exc)
    finally:
        if peer.resuming:
            if release is not None:
                release()
            peer.resuming = False
    return sent


_STREAM_ID = re.compile(r"\d+-\d+")


def _position(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def ws_payload(peer: Peer, fields: dict, registry: events.ProgressRegistry) -> str | bytes:
    """A stored event as the frame a ``/ws`` client gets (what the relay sends it live)."""
    etype, raw = fields[b"type"].decode(), fields[b"data"]
    if etype == "progress_state":
        pid = fields[b"pid"].decode()
        registry.update(pid, raw.decode())
        if peer.deltas:
            text = _text(DELTA_EVENT, raw.decode() if pid in peer.synced else registry.frame(pid))
            peer.synced.add(pid)
            return text
        return _text("progress_state", registry.frame(pid))
    if etype.isdigit():
        event = int(etype)
        if event == events.PREVIEW_IMAGE_WITH_METADATA and not peer.flags.get("supports_preview_metadata"):
            return frame(events.PREVIEW_IMAGE, events.legacy_preview(raw))
        return frame(event, raw)
    return _text(etype, raw.decode())


def _resume_sio(r: redis.Redis, hub: Hub, socketio: SocketIO, peer: Peer, sid: str, after: str) -> None:
    """Resume a Socket.IO session (in the background: once its connection is acknowledged)."""
    deadline = time.time() + 10
    while not socketio.server.manager.is_connected(sid, "/") and time.time() < deadline:  # type: ignore[union-attr]
        time.sleep(0.01)
    registry = events.ProgressRegistry()

    def send(fields: dict) -> None:
        etype, raw = fields[b"type"].decode(), fields[b"data"]
        data: Any
        if etype == "progress_state":
            pid = fields[b"pid"].decode()
            registry.update(pid, raw.decode())
            data = json.loads(raw if peer.deltas and pid in peer.synced else registry.frame(pid))
            etype = DELTA_EVENT if peer.deltas else etype
            peer.synced.add(pid)
        else:
            data = raw if etype.isdigit() else json.loads(raw)
        socketio.emit(etype, data, to=sid)

    resume(r, hub, peer, after, send, lambda: socketio.server.enter_room(sid, peer.client_id, namespace="/"))  # type: ignore[union-attr]


def start_relay(settings: Settings, hub: Hub, socketio: SocketIO, stop: threading.Event) -> threading.Thread:
    """Follow ``nf:events`` and deliver each event to its clients.

    JSON data is passed through as stored (no parse and re-encode) except where the relay must
    look inside: ``progress_state`` deltas (kept per run; full frames for plain clients), the end of a
    run, previews (event 4 for clients that negotiated metadata, event 1 for the others) and Socket.IO.
    """

    r = redis.Redis.from_url(settings.redis_url)
    try:  # where the relay starts, known before any client connects (a resume stops there)
        tail = r.xrevrange(keys.EVENTS, count=1)
        hub.relay_last = tail[0][0].decode() if tail else "0-0"
    except redis.RedisError:
        hub.relay_last = "0-0"

    board = dashboard.of(socketio)

    def loop() -> None:
        registries = events.ProgressRegistry()
        last = hub.relay_last
        while not stop.is_set():
            try:
                got = r.xread({keys.EVENTS: last}, block=1000, count=RELAY_BATCH)
            except redis.RedisError as exc:
                log.warning("relay: %s", exc)
                stop.wait(1)
                continue
            read = 0
            reached: dict[str, str] = {}  # client id -> the last entry delivered to it
            with hub.relay_lock:
                for _stream, entries in got or []:
                    read += len(entries)
                    for entry_id, fields in entries:
                        last = entry_id.decode()
                        try:
                            deliver(fields, registries)
                        except Exception:  # one bad event must not stop the relay
                            log.exception("relay: cannot deliver an event")
                        try:
                            if board is not None:
                                board.relay(last, fields)
                        except Exception:
                            log.exception("relay: cannot send an event to the dashboards")
                        to = fields.get(b"to", b"").decode()
                        if to not in ("", "*"):
                            reached[to] = last
                hub.relay_last = last
                remember(r, hub, reached)
            if 0 < read < RELAY_BATCH:  # let events gather: one read per batch, not per event
                stop.wait(RELAY_PAUSE_S if hub.sockets or hub.sio else RELAY_IDLE_PAUSE_S)

    def deliver(fields: dict, registries: events.ProgressRegistry) -> None:
        etype = fields[b"type"].decode()
        to = fields[b"to"].decode()
        raw = fields[b"data"]
        if etype == "progress_state":
            progress(fields[b"pid"].decode(), raw.decode(), to, registries)
            return
        if etype == "executing" and raw.startswith(b'{"node":null'):
            ended = fields[b"pid"].decode()
            registries.forget(ended)
            for peer in hub.all_peers():
                peer.synced.discard(ended)
        if not to:
            return
        if etype.isdigit():
            event = int(etype)
            payload: str | bytes = frame(event, raw)
            legacy = frame(events.PREVIEW_IMAGE, events.legacy_preview(raw)) if event == events.PREVIEW_IMAGE_WITH_METADATA else None
            for ws, peer in hub.targets(to):
                flagged = bool(peer.flags.get("supports_preview_metadata"))
                hub.send(ws, legacy if legacy is not None and not flagged else payload)
        else:
            text = _text(etype, raw.decode())
            for ws, _peer in hub.targets(to):
                hub.send(ws, text)
        if hub.sio:
            data = raw if etype.isdigit() else json.loads(raw)
            try:
                socketio.emit(etype, data, to=None if to == "*" else to)
            except Exception as exc:
                log.debug("socketio emit failed: %s", exc)

    def progress(pid: str, raw: str, to: str, registries: events.ProgressRegistry) -> None:
        registries.update(pid, raw)
        if not to:
            return
        full: str | None = None
        for ws, peer in hub.targets(to):
            if peer.deltas:
                hub.send(ws, _text(DELTA_EVENT, raw if pid in peer.synced else registries.frame(pid)))
                peer.synced.add(pid)
            else:
                full = full or _text("progress_state", registries.frame(pid))
                hub.send(ws, full)
        for sid, peer in hub.sio_targets(to):
            try:
                if peer.deltas:
                    socketio.emit(DELTA_EVENT, json.loads(raw if pid in peer.synced else registries.frame(pid)), to=sid)
                    peer.synced.add(pid)
                else:
                    socketio.emit("progress_state", json.loads(registries.frame(pid)), to=sid)
            except Exception as exc:
                log.debug("socketio emit failed: %s", exc)

    thread = threading.Thread(target=loop, name="nodefarm-relay", daemon=True)
    thread.start()
    return thread
