"""Connections to the API: time limits on reading a request, and websocket handshakes checked first.

Time limits. The server reads a request's headers with ``header_timeout_s`` per read (a client that
opens a connection and sends half a request is dropped, instead of holding a thread for ever) and its
body with ``body_timeout_s`` per read. A connection that becomes a websocket (``/ws``, Socket.IO) has
no read limit: it may idle for hours between runs, and its pings keep it honest.

Handshakes. ``/ws`` is ComfyUI's websocket; a request to it that is not a well-formed RFC 6455
upgrade (no ``Upgrade: websocket``, no ``Connection: upgrade``, a missing or malformed
``Sec-WebSocket-Key``, HTTP/1.0) is a 400, and a version other than 13 is a 426 naming version 13,
before the websocket library sees it (it answered 500 for some and hung on others).
"""

from __future__ import annotations

import base64
import binascii
import socket
from typing import Any

from flask import Flask, Response, request
from werkzeug.serving import WSGIRequestHandler

WEBSOCKET_PATHS = ("/ws", "/api/ws")


def request_handler(header_timeout_s: float) -> type[WSGIRequestHandler]:
    """The server's request handler class: reads time out after ``header_timeout_s`` until the app
    sets another limit (:func:`install`)."""

    class TimedRequestHandler(WSGIRequestHandler):
        timeout = header_timeout_s  # socketserver applies it to the connection before the first read

    return TimedRequestHandler


def _token_list(value: str) -> set[str]:
    return {part.strip().lower() for part in value.split(",") if part.strip()}


def handshake_error(headers: Any, protocol: str, method: str) -> Response | None:
    """Why a request to a websocket route is not an RFC 6455 handshake; None when it is one."""
    def bad(reason: str) -> Response:
        return Response(f"400: not a websocket handshake: {reason}", status=400, mimetype="text/plain")

    if method != "GET":
        return None  # the route's own 405
    if "websocket" not in _token_list(headers.get("Upgrade", "")):
        return bad("no 'Upgrade: websocket' header")
    if "upgrade" not in _token_list(headers.get("Connection", "")):
        return bad("no 'Connection: upgrade' header")
    if protocol.upper() != "HTTP/1.1":
        return bad(f"{protocol} cannot upgrade (HTTP/1.1 only)")
    key = headers.get("Sec-WebSocket-Key", "")
    try:
        if len(base64.b64decode(key.encode("ascii"), validate=True)) != 16:
            raise ValueError
    except (ValueError, binascii.Error, UnicodeEncodeError):
        return bad("Sec-WebSocket-Key must be 16 bytes in base64")
    if headers.get("Sec-WebSocket-Version", "").strip() != "13":
        return Response("426: websocket version 13 only", status=426, headers={"Sec-WebSocket-Version": "13"},
                        mimetype="text/plain")
    return None


def _is_upgrade() -> bool:
    return "websocket" in _token_list(request.headers.get("Upgrade", ""))


def untimed_socketio_upgrades(app: Flask, path: str = "/socket.io/") -> None:
    """Socket.IO's requests reach engineio's middleware before Flask, so :func:`install`'s rule never
    sees them: a websocket upgrade there keeps the header read limit and an idle client is dropped after
    it (a dashboard reconnecting every ~20 s). Lift it for them too. Call after Flask-SocketIO wraps the app."""
    inner = app.wsgi_app

    def wsgi(environ: dict, start_response: Any) -> Any:
        if environ.get("PATH_INFO", "").startswith(path) and "websocket" in _token_list(environ.get("HTTP_UPGRADE", "")):
            conn = environ.get("werkzeug.socket")
            if isinstance(conn, socket.socket):
                try:
                    conn.settimeout(None)
                except OSError:
                    pass
        return inner(environ, start_response)

    app.wsgi_app = wsgi  # type: ignore[method-assign]


def install(app: Flask, body_timeout_s: float) -> None:
    @app.before_request
    def connection_rules() -> Response | None:
        if request.path in WEBSOCKET_PATHS:
            refused = handshake_error(request.headers, request.environ.get("SERVER_PROTOCOL", ""), request.method)
            if refused is not None:
                return refused
        conn = request.environ.get("werkzeug.socket")
        if isinstance(conn, socket.socket):
            try:
                conn.settimeout(None if _is_upgrade() else body_timeout_s)
            except OSError:
                pass
        return None
