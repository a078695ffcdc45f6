"""Same-origin guard: a browser page of another origin cannot drive the farm.

A request that carries an ``Origin`` header (browsers send one on every cross-origin request and on
websocket upgrades) is refused with 403 unless that origin is the farm's own (its host and port match
the ``Host`` the request came to) or is allowed by ``--enable-cors-header ORIGIN`` (``*``: any), as
ComfyUI refuses since GHSA-779p-m5rp-r4h4. ``Origin: null`` (sandboxed frames, ``file:`` pages) is
foreign. Clients that are not browsers send no ``Origin`` and are not affected. Socket.IO is guarded
by python-engineio's own origin check, given the same allow-list.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import Flask, Response, request

log = logging.getLogger("nodefarm.origin")


def same_origin(origin: str, host: str) -> bool:
    """Whether ``Origin`` names the host (and port, where both give one) the request was sent to."""
    if not origin or origin == "null" or not host:
        return False
    parsed = urlsplit(origin)
    target = urlsplit("//" + host)
    if not parsed.hostname or not target.hostname:
        return False
    if parsed.hostname.lower() != target.hostname.lower():
        return False
    return parsed.port is None or target.port is None or parsed.port == target.port


def allowed(origin: str, host: str, allow: tuple[str, ...]) -> bool:
    return "*" in allow or origin in allow or same_origin(origin, host)


def install(app: Flask, allow: tuple[str, ...]) -> None:
    @app.before_request
    def guard() -> Response | None:
        origin = request.headers.get("Origin")
        if origin is None or allowed(origin, request.host, allow):
            return None
        log.warning("refused a %s %s from origin %s (host %s)", request.method, request.path, origin, request.host)
        return Response("403: cross-origin request refused (start the farm with --enable-cors-header ORIGIN "
                        "to allow that origin)", status=403)

    if allow:
        @app.after_request
        def cors(response: Response) -> Response:
            origin = request.headers.get("Origin")
            if "*" in allow:
                response.headers["Access-Control-Allow-Origin"] = "*"
            elif origin in allow:
                response.headers["Access-Control-Allow-Origin"] = origin
                response.headers["Vary"] = "Origin"
            return response
