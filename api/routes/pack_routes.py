"""Serving the aiohttp-style routes that custom node packs declared on ``PromptServer.instance`` at import.

Routes declared on ``PromptServer.instance.routes`` are served at their path and at ``/api`` + path (as
ComfyUI's ``add_routes`` does); routes added through ``PromptServer.instance.app`` (``router.add_*``,
``app.add_routes``) and static folders only at their own path. A core route with the same rule wins.
Each handler runs on one asyncio loop of this process and gets a ``web.Request``-like object (query,
``match_info``, headers, ``json()``, ``post()`` with uploaded files, ``multipart()``, ``read()``); it may
return, or raise, aiohttp-style responses (``Response``, ``json_response``, ``FileResponse``, ``HTTP*``),
from the real aiohttp or from the shim (duck typed). ``PromptServer.instance.send_sync`` from a handler
goes out on the farm's event stream.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import os
import re
import threading
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, abort, request, send_file, send_from_directory
from werkzeug.routing import BaseConverter, Map
from werkzeug.security import safe_join

from nodes.compat import aiohttp_web_shim as shim

log = logging.getLogger("nodefarm.api.pack_routes")

HANDLER_TIMEOUT_S = 300.0
ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_counter = itertools.count()


# ---- one event loop for every handler ------------------------------------------------------------


class LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="nodefarm-pack-routes", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def call(self, handler: Callable[..., Any], req: Any) -> Any:
        async def run() -> Any:
            result = handler(req)
            if inspect.isawaitable(result):
                result = await result
            return result

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(HANDLER_TIMEOUT_S)


_loop: LoopThread | None = None
_loop_lock = threading.Lock()


def loop_thread() -> LoopThread:
    global _loop
    with _loop_lock:
        if _loop is None:
            _loop = LoopThread()
        return _loop


# ---- aiohttp paths as werkzeug rules -------------------------------------------------------------

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::((?:[^{}]|\{[^{}]*\})*))?\}")


def to_rule(app: Flask, path: str) -> str:
    """``/x/{name}/{rest:.*}`` -> ``/x/<name>/<nfre3:rest>`` (a converter per custom regex)."""
    out: list[str] = []
    pos = 0
    for m in _PARAM.finditer(path):
        out.append(path[pos : m.start()])
        name, regex = m.group(1), m.group(2)
        if regex is None or regex == "[^{}/]+":
            out.append(f"<{name}>")
        elif regex in (".*", ".+", "(.*)", "(.+)"):
            out.append(f"<{_converter(app, '.*' if '*' in regex else '.+')}:{name}>")
        else:
            out.append(f"<{_converter(app, regex)}:{name}>")
        pos = m.end()
    out.append(path[pos:])
    return "".join(out)


def _converter(app: Flask, regex: str) -> str:
    name = f"nfre{next(_counter)}"
    app.url_map.converters[name] = type(name, (BaseConverter,), {"regex": regex, "part_isolating": False})
    return name


def _taken(url_map: Map, rule: str, methods: list[str]) -> bool:
    for existing in url_map.iter_rules():
        if existing.rule == rule and not existing.websocket and set(existing.methods or ()) & set(methods):
            return True
    return False


# ---- requests and responses ----------------------------------------------------------------------


def build_request(match_info: dict[str, str]) -> shim.Request:
    from nodes.compat.server import PromptServer

    body = request.get_data(cache=True)
    form: list[tuple[str, Any]] | None = None
    if request.mimetype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        form = [(k, v) for k, v in request.form.items(multi=True)]
        for name, storage in request.files.items(multi=True):
            form.append((name, shim.FileField(name, storage.filename or "", storage.stream,
                                              storage.mimetype or "application/octet-stream", shim.CIMultiDict(storage.headers.items()))))
    return shim.Request(
        request.method,
        request.url,
        list(request.headers.items()),
        body,
        match_info,
        request.remote_addr,
        getattr(PromptServer.instance, "app", None),
        form,
    )


def _looks_like_response(obj: Any) -> bool:
    return hasattr(obj, "status") and hasattr(obj, "headers")


def to_flask(result: Any) -> Response:
    """An aiohttp-style response (shim or real aiohttp) as a Flask response."""
    if isinstance(result, Response):
        return result
    if not _looks_like_response(result):
        log.error("custom node route returned %r, not a response", type(result).__name__)
        return Response("500: handler returned no response", status=500)
    status = int(result.status)
    headers = [(k, str(v)) for k, v in result.headers.items()]
    path = getattr(result, "_path", None)
    if path is not None:  # FileResponse
        if not os.path.isfile(path):
            return Response("404: Not Found", status=404)
        response = send_file(os.fspath(path), max_age=0, conditional=True)
        if status != 200:
            response.status_code = status
        for k, v in headers:
            response.headers[k] = v
        return response
    if hasattr(result, "body_bytes"):
        body = result.body_bytes()
    else:  # the real aiohttp
        raw = getattr(result, "body", None)
        if raw is not None and not isinstance(raw, (bytes, bytearray)):
            raw = getattr(raw, "_value", b"")
        body = bytes(raw or b"")
    response = Response(body, status=status)
    for k, v in headers:
        if k.lower() not in ("content-length", "transfer-encoding"):
            response.headers[k] = v
    if "Content-Type" not in {k.title() for k, _ in headers}:
        ctype = getattr(result, "_content_type", None) or getattr(result, "content_type", None)
        charset = getattr(result, "charset", None)
        if ctype:
            response.headers["Content-Type"] = ctype + (f"; charset={charset}" if charset else "")
    for name, value in (getattr(result, "cookies", None) or {}).items():
        response.set_cookie(name, getattr(value, "value", value))
    return response


def make_view(handler: Callable[..., Any], label: str) -> Callable[..., Response]:
    def view(**match_info: Any) -> Response:
        req = build_request({k: str(v) for k, v in match_info.items()})
        try:
            result = loop_thread().call(handler, req)
        except Exception as exc:
            if _looks_like_response(exc):  # raise web.HTTPNotFound() etc.
                return to_flask(exc)
            log.exception("custom node route %s failed", label)
            return Response(f"500: {type(exc).__name__}: {exc}", status=500)
        return to_flask(result)

    view.__name__ = f"pack_{label}"
    return view


def make_static(directory: str, show_index: bool) -> Callable[..., Response]:
    def serve(path: str = "") -> Response:
        if not path or path.endswith("/"):
            index = safe_join(directory, path, "index.html") if path else os.path.join(directory, "index.html")
            if index and os.path.isfile(index):
                return send_from_directory(directory, os.path.relpath(index, directory), max_age=0)
            abort(404)
        if safe_join(directory, path) is None:
            abort(404)
        return send_from_directory(directory, path, max_age=0)

    return serve


# ---- installation ------------------------------------------------------------------------------


def bind_event_sink(r: Any) -> None:
    """Send what handlers running in this process ``send_sync`` out on the farm's event stream."""
    from nodes.compat.server import PromptServer
    from worker import events

    server = PromptServer.instance
    if getattr(server, "_sink", None) is not None:
        return

    def sink(event: str | int, data: Any, sid: str | None) -> None:
        if isinstance(event, int) and not isinstance(data, (bytes, bytearray)):
            return  # unencoded previews come only from nodes, on workers
        pipe = r.pipeline(transaction=False)
        events.add(pipe, None, None, event, data, to=sid or "*")
        pipe.execute()

    server.bind_sink(sink)


def install(app: Flask, r: Any = None) -> list[str]:
    """Register every collected pack route on ``app``. Returns the rules registered."""
    from nodes.compat.server import PromptServer, _as_record

    server = PromptServer.instance
    twinned = [_as_record(item) for item in server.routes]
    plain = list(server.app.records)
    added: list[str] = []
    for i, record in enumerate(twinned + plain):
        with_api = i < len(twinned)
        if record.method == "STATIC":
            directory = str(record.kwargs.get("directory", ""))
            prefix = "/" + record.path.strip("/")
            if not os.path.isdir(directory) or prefix == "/":
                log.warning("custom node static route %s -> %s skipped", record.path, directory)
                continue
            endpoint = f"packstatic_{next(_counter)}"
            serve = make_static(directory, bool(record.kwargs.get("show_index")))
            app.add_url_rule(prefix + "/<path:path>", endpoint, serve, methods=["GET"])
            app.add_url_rule(prefix + "/", endpoint + "_index", serve, methods=["GET"])
            added.append(prefix + "/<path:path>")
            continue
        if record.handler is None:
            continue
        methods = ALL_METHODS if record.method == "*" else [record.method]
        paths = [record.path] + (["/api" + record.path] if with_api else [])
        for path in paths:
            rule = to_rule(app, path)
            if _taken(app.url_map, rule, methods):
                log.warning("custom node route %s %s is already served by the farm; the farm's wins", record.method, path)
                continue
            label = f"{next(_counter)}"
            app.add_url_rule(rule, f"packroute_{label}", make_view(record.handler, label), methods=methods)
            added.append(f"{record.method} {rule}")
    if r is not None:
        bind_event_sink(r)
    if added:
        log.info("serving %d custom node routes", len(added))
    return added
