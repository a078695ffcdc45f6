"""A small ``aiohttp.web`` face for custom node packs, entered as ``aiohttp``/``aiohttp.web`` only when the
real aiohttp is not installed (:func:`install`).

Packs import it for three things: declaring routes (``RouteTableDef``, ``web.get(...)``), building
responses in their handlers (``Response``, ``json_response``, ``FileResponse``, the ``HTTP*``
exceptions) and annotating handlers with ``web.Request``. The API process serves those handlers
from Flask (``api/pack_routes.py``), handing them a :class:`Request` built from the Flask request.
Nothing here opens a socket: ``run_app``, ``Application`` servers and websockets are not provided.
"""

from __future__ import annotations

import json
import os
import sys
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

__all__ = [
    "AppKey", "Application", "BaseRequest", "CIMultiDict", "FileField", "FileResponse", "HTTPException",
    "MultiDict", "MultiDictProxy", "Request", "Response", "RouteDef", "RouteTableDef", "StaticDef",
    "StreamResponse", "json_response", "middleware", "install",
]

SHIM = True
Handler = Callable[..., Any]


# ---- multidicts --------------------------------------------------------------------------------


class MultiDict:
    """An ordered multi-valued mapping (``multidict.MultiDict`` look-alike)."""

    _ci = False

    def __init__(self, items: Iterable[tuple[str, Any]] | Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        self._items: list[tuple[str, Any]] = []
        if items is not None:
            self.extend(items)
        if kwargs:
            self.extend(kwargs)

    def _k(self, key: str) -> str:
        return key.lower() if self._ci else key

    def extend(self, items: Iterable[tuple[str, Any]] | Mapping[str, Any]) -> None:
        pairs = items.items() if isinstance(items, Mapping) else items
        for key, value in pairs:
            self._items.append((str(key), value))

    def add(self, key: str, value: Any) -> None:
        self._items.append((key, value))

    def getall(self, key: str, default: Any = ...) -> list[Any]:
        found = [v for k, v in self._items if self._k(k) == self._k(key)]
        if not found:
            if default is ...:
                raise KeyError(key)
            return default
        return found

    def getone(self, key: str, default: Any = ...) -> Any:
        for k, v in self._items:
            if self._k(k) == self._k(key):
                return v
        if default is ...:
            raise KeyError(key)
        return default

    def get(self, key: str, default: Any = None) -> Any:
        return self.getone(key, default)

    def __getitem__(self, key: str) -> Any:
        return self.getone(key)

    def __setitem__(self, key: str, value: Any) -> None:
        self._items = [(k, v) for k, v in self._items if self._k(k) != self._k(key)]
        self._items.append((key, value))

    def __delitem__(self, key: str) -> None:
        before = len(self._items)
        self._items = [(k, v) for k, v in self._items if self._k(k) != self._k(key)]
        if len(self._items) == before:
            raise KeyError(key)

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self.add(key, default)
        return self.getone(key)

    def pop(self, key: str, default: Any = ...) -> Any:
        try:
            value = self.getone(key)
        except KeyError:
            if default is ...:
                raise
            return default
        del self[key]
        return value

    def update(self, items: Iterable[tuple[str, Any]] | Mapping[str, Any] = (), **kwargs: Any) -> None:
        pairs = list(items.items() if isinstance(items, Mapping) else items) + list(kwargs.items())
        for key, value in pairs:
            self[key] = value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and any(self._k(k) == self._k(key) for k, _ in self._items)

    def __iter__(self) -> Iterator[str]:
        return iter([k for k, _ in self._items])

    def __len__(self) -> int:
        return len(self._items)

    def keys(self) -> list[str]:
        return [k for k, _ in self._items]

    def values(self) -> list[Any]:
        return [v for _, v in self._items]

    def items(self) -> list[tuple[str, Any]]:
        return list(self._items)

    def copy(self) -> MultiDict:
        return type(self)(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, MultiDict):
            return self._items == other._items
        if isinstance(other, Mapping):
            return dict(self._items) == dict(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"<{type(self).__name__}({self._items!r})>"


class CIMultiDict(MultiDict):
    """Case-insensitive keys (HTTP headers)."""

    _ci = True


MultiDictProxy = MultiDict
CIMultiDictProxy = CIMultiDict


class FileField:
    """One uploaded file of ``await request.post()``."""

    def __init__(self, name: str, filename: str, file: Any, content_type: str, headers: Any = None) -> None:
        self.name = name
        self.filename = filename
        self.file = file
        self.content_type = content_type
        self.headers = headers if headers is not None else CIMultiDict()


# ---- responses ---------------------------------------------------------------------------------


class StreamResponse:
    """The base response. ``prepare``/``write`` collect the body; it is sent when the handler returns."""

    def __init__(self, *, status: int = 200, reason: str | None = None, headers: Any = None) -> None:
        self._status = int(status)
        self._reason = reason
        self._headers = CIMultiDict(headers.items() if hasattr(headers, "items") else (headers or []))
        self._chunks: list[bytes] = []
        self._prepared = False
        self._eof = False
        self._content_type: str | None = None
        self._charset: str | None = None
        self.cookies: dict[str, str] = {}
        ct = self._headers.get("Content-Type")
        if ct:
            self._parse_content_type(ct)

    def _parse_content_type(self, value: str) -> None:
        main, _, params = value.partition(";")
        self._content_type = main.strip() or None
        for param in params.split(";"):
            key, _, val = param.strip().partition("=")
            if key.lower() == "charset" and val:
                self._charset = val.strip().strip('"')

    @property
    def status(self) -> int:
        return self._status

    def set_status(self, status: int, reason: str | None = None) -> None:
        self._status, self._reason = int(status), reason

    @property
    def reason(self) -> str:
        return self._reason or ""

    @property
    def headers(self) -> CIMultiDict:
        return self._headers

    @property
    def content_type(self) -> str:
        return self._content_type or "application/octet-stream"

    @content_type.setter
    def content_type(self, value: str) -> None:
        self._content_type = value

    @property
    def charset(self) -> str | None:
        return self._charset

    @charset.setter
    def charset(self, value: str | None) -> None:
        self._charset = value

    @property
    def content_length(self) -> int | None:
        value = self._headers.get("Content-Length")
        return int(value) if value is not None else None

    @content_length.setter
    def content_length(self, value: int | None) -> None:
        if value is None:
            self._headers.pop("Content-Length", None)
        else:
            self._headers["Content-Length"] = str(value)

    @property
    def prepared(self) -> bool:
        return self._prepared

    def set_cookie(self, name: str, value: str, **_kwargs: Any) -> None:
        self.cookies[name] = value

    def del_cookie(self, name: str, **_kwargs: Any) -> None:
        self.cookies.pop(name, None)

    def enable_compression(self, *_args: Any, **_kwargs: Any) -> None:
        pass

    def enable_chunked_encoding(self, *_args: Any, **_kwargs: Any) -> None:
        pass

    def force_close(self) -> None:
        pass

    async def prepare(self, request: Any) -> StreamResponse:
        self._prepared = True
        return self

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        self._chunks.append(bytes(data))

    async def drain(self) -> None:
        pass

    async def write_eof(self, data: bytes = b"") -> None:
        if data:
            self._chunks.append(bytes(data))
        self._eof = True

    def body_bytes(self) -> bytes:
        """Everything the handler wrote (used by the server side)."""
        return b"".join(self._chunks)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.status} {self.reason}>"


class Response(StreamResponse):
    def __init__(
        self,
        *,
        body: Any = None,
        status: int = 200,
        reason: str | None = None,
        text: str | None = None,
        headers: Any = None,
        content_type: str | None = None,
        charset: str | None = None,
        zlib_executor_size: int | None = None,
        zlib_executor: Any = None,
    ) -> None:
        if body is not None and text is not None:
            raise ValueError("body and text are not allowed together")
        super().__init__(status=status, reason=reason, headers=headers)
        if content_type is not None and "charset" in content_type:
            raise ValueError("charset must not be in content_type argument")
        if text is not None:
            if not isinstance(text, str):
                raise TypeError(f"text argument must be str ({type(text)!r})")
            self._content_type = content_type or self._content_type or "text/plain"
            self._charset = charset or self._charset or "utf-8"
            self._body: bytes | None = text.encode(self._charset)
        else:
            if content_type is not None:
                self._content_type = content_type
            if charset is not None:
                self._charset = charset
            self._body = None
            self.body = body

    @property
    def body(self) -> bytes | None:
        return self._body

    @body.setter
    def body(self, value: Any) -> None:
        if value is None:
            self._body = None
        elif isinstance(value, (bytes, bytearray, memoryview)):
            self._body = bytes(value)
        elif isinstance(value, str):
            self._body = value.encode(self._charset or "utf-8")
            self._charset = self._charset or "utf-8"
            self._content_type = self._content_type or "text/plain"
        elif hasattr(value, "read"):
            self._body = value.read()
        else:
            raise ValueError(f"unsupported body type {type(value)!r}")

    @property
    def text(self) -> str | None:
        if self._body is None:
            return None
        return self._body.decode(self._charset or "utf-8")

    @text.setter
    def text(self, value: str) -> None:
        self._content_type = self._content_type or "text/plain"
        self._charset = self._charset or "utf-8"
        self._body = value.encode(self._charset)

    def body_bytes(self) -> bytes:
        return (self._body or b"") + super().body_bytes()


def json_response(
    data: Any = ...,
    *,
    text: str | None = None,
    body: bytes | None = None,
    status: int = 200,
    reason: str | None = None,
    headers: Any = None,
    content_type: str = "application/json",
    dumps: Callable[[Any], str] = json.dumps,
) -> Response:
    if data is not ...:
        if text or body:
            raise ValueError("only one of data, text, or body should be specified")
        text = dumps(data)
    return Response(text=text, body=body, status=status, reason=reason, headers=headers, content_type=content_type)


class FileResponse(StreamResponse):
    """A file sent from disk (``_path`` is read by the server side, as in aiohttp)."""

    def __init__(self, path: str | os.PathLike[str], chunk_size: int = 256 * 1024, status: int = 200,
                 reason: str | None = None, headers: Any = None) -> None:
        super().__init__(status=status, reason=reason, headers=headers)
        self._path = os.fspath(path)
        self._chunk_size = chunk_size


class WebSocketResponse(StreamResponse):
    """Websocket handlers of packs are not served by the farm's API."""

    async def prepare(self, request: Any) -> StreamResponse:
        raise NotImplementedError("custom node websocket routes are not supported by nodefarm")


# ---- HTTP exceptions (also responses, as in aiohttp) ---------------------------------------------


class HTTPException(Response, Exception):
    status_code = 500
    empty_body = False

    def __init__(self, *, headers: Any = None, reason: str | None = None, body: Any = None, text: str | None = None,
                 content_type: str | None = None) -> None:
        if body is None and text is None and not self.empty_body:
            text = f"{self.status_code}: {reason or _REASONS.get(self.status_code, 'Error')}"
        Response.__init__(self, status=self.status_code, headers=headers, reason=reason, body=body, text=text,
                          content_type=content_type)
        Exception.__init__(self, self.reason or _REASONS.get(self.status_code, ""))

    def __str__(self) -> str:
        return self.reason or _REASONS.get(self.status_code, "")


class HTTPError(HTTPException):
    pass


class HTTPRedirection(HTTPException):
    pass


class HTTPSuccessful(HTTPException):
    pass


class HTTPClientError(HTTPError):
    pass


class HTTPServerError(HTTPError):
    pass


class _HTTPMove(HTTPRedirection):
    def __init__(self, location: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.headers["Location"] = str(location)
        self.location = location


_REASONS = {
    200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 301: "Moved Permanently", 302: "Found",
    303: "See Other", 304: "Not Modified", 307: "Temporary Redirect", 308: "Permanent Redirect",
    400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 406: "Not Acceptable", 408: "Request Timeout", 409: "Conflict", 410: "Gone",
    411: "Length Required", 412: "Precondition Failed", 413: "Request Entity Too Large", 415: "Unsupported Media Type",
    416: "Requested Range Not Satisfiable", 422: "Unprocessable Entity", 429: "Too Many Requests",
    500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
    504: "Gateway Timeout",
}


def _exc(name: str, base: type, code: int, empty: bool = False) -> type:
    return type(name, (base,), {"status_code": code, "empty_body": empty, "__module__": __name__})


HTTPOk = _exc("HTTPOk", HTTPSuccessful, 200)
HTTPCreated = _exc("HTTPCreated", HTTPSuccessful, 201)
HTTPAccepted = _exc("HTTPAccepted", HTTPSuccessful, 202)
HTTPNoContent = _exc("HTTPNoContent", HTTPSuccessful, 204, True)
HTTPMovedPermanently = _exc("HTTPMovedPermanently", _HTTPMove, 301, True)
HTTPFound = _exc("HTTPFound", _HTTPMove, 302, True)
HTTPSeeOther = _exc("HTTPSeeOther", _HTTPMove, 303, True)
HTTPNotModified = _exc("HTTPNotModified", HTTPRedirection, 304, True)
HTTPTemporaryRedirect = _exc("HTTPTemporaryRedirect", _HTTPMove, 307, True)
HTTPPermanentRedirect = _exc("HTTPPermanentRedirect", _HTTPMove, 308, True)
HTTPBadRequest = _exc("HTTPBadRequest", HTTPClientError, 400)
HTTPUnauthorized = _exc("HTTPUnauthorized", HTTPClientError, 401)
HTTPPaymentRequired = _exc("HTTPPaymentRequired", HTTPClientError, 402)
HTTPForbidden = _exc("HTTPForbidden", HTTPClientError, 403)
HTTPNotFound = _exc("HTTPNotFound", HTTPClientError, 404)
HTTPNotAcceptable = _exc("HTTPNotAcceptable", HTTPClientError, 406)
HTTPRequestTimeout = _exc("HTTPRequestTimeout", HTTPClientError, 408)
HTTPConflict = _exc("HTTPConflict", HTTPClientError, 409)
HTTPGone = _exc("HTTPGone", HTTPClientError, 410)
HTTPLengthRequired = _exc("HTTPLengthRequired", HTTPClientError, 411)
HTTPPreconditionFailed = _exc("HTTPPreconditionFailed", HTTPClientError, 412)
HTTPUnsupportedMediaType = _exc("HTTPUnsupportedMediaType", HTTPClientError, 415)
HTTPRequestRangeNotSatisfiable = _exc("HTTPRequestRangeNotSatisfiable", HTTPClientError, 416)
HTTPUnprocessableEntity = _exc("HTTPUnprocessableEntity", HTTPClientError, 422)
HTTPTooManyRequests = _exc("HTTPTooManyRequests", HTTPClientError, 429)
HTTPInternalServerError = _exc("HTTPInternalServerError", HTTPServerError, 500)
HTTPNotImplemented = _exc("HTTPNotImplemented", HTTPServerError, 501)
HTTPBadGateway = _exc("HTTPBadGateway", HTTPServerError, 502)
HTTPServiceUnavailable = _exc("HTTPServiceUnavailable", HTTPServerError, 503)
HTTPGatewayTimeout = _exc("HTTPGatewayTimeout", HTTPServerError, 504)


class HTTPMethodNotAllowed(HTTPClientError):
    status_code = 405

    def __init__(self, method: str, allowed_methods: Iterable[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.method = method
        self.allowed_methods = set(allowed_methods)
        self.headers["Allow"] = ",".join(sorted(self.allowed_methods))


class HTTPRequestEntityTooLarge(HTTPClientError):
    status_code = 413

    def __init__(self, max_size: float, actual_size: float, **kwargs: Any) -> None:
        kwargs.setdefault("text", f"Maximum request body size {max_size} exceeded, actual body size {actual_size}")
        super().__init__(**kwargs)


# ---- route declarations ----------------------------------------------------------------------------


class RouteDef:
    def __init__(self, method: str, path: str, handler: Handler, kwargs: dict[str, Any]) -> None:
        self.method = method
        self.path = path
        self.handler = handler
        self.kwargs = kwargs

    def __repr__(self) -> str:
        return f"<RouteDef {self.method} {self.path} -> {getattr(self.handler, '__name__', self.handler)!r}>"


class StaticDef:
    method = "STATIC"
    handler = None

    def __init__(self, prefix: str, path: str, kwargs: dict[str, Any]) -> None:
        self.prefix = prefix
        self.path = path
        self.kwargs = kwargs

    def __repr__(self) -> str:
        return f"<StaticDef {self.prefix} -> {self.path}>"


class RouteTableDef:
    def __init__(self) -> None:
        self._items: list[RouteDef | StaticDef] = []

    def __iter__(self) -> Iterator[RouteDef | StaticDef]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: int) -> RouteDef | StaticDef:
        return self._items[index]

    def __contains__(self, item: object) -> bool:
        return item in self._items

    def route(self, method: str, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self._items.append(RouteDef(method.upper(), path, handler, kwargs))
            return handler

        return register

    def head(self, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route("HEAD", path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route("DELETE", path, **kwargs)

    def options(self, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route("OPTIONS", path, **kwargs)

    def view(self, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route("*", path, **kwargs)

    def static(self, prefix: str, path: str | os.PathLike[str], **kwargs: Any) -> None:
        self._items.append(StaticDef(prefix, os.fspath(path), kwargs))


def route(method: str, path: str, handler: Handler, **kwargs: Any) -> RouteDef:
    return RouteDef(method.upper(), path, handler, kwargs)


def get(path: str, handler: Handler, **kwargs: Any) -> RouteDef:
    return route("GET", path, handler, **kwargs)


def head(path: str, handler: Handler, **kwargs: Any) -> RouteDef:
    return route("HEAD", path, handler, **kwargs)


def post(path: str, handler: Handler, **kwargs: Any) -> RouteDef:
    return route("POST", path, handler, **kwargs)


def put(path: str, handler: Handler, **kwargs: Any) -> RouteDef:
    return route("PUT", path, handler, **kwargs)


def patch(path: str, handler: Handler, **kwargs: Any) -> RouteDef:
    return route("PATCH", path, handler, **kwargs)


def delete(path: str, handler: Handler, **kwargs: Any) -> RouteDef:
    return route("DELETE", path, handler, **kwargs)


def view(path: str, handler: Handler, **kwargs: Any) -> RouteDef:
    return route("*", path, handler, **kwargs)


def static(prefix: str, path: str | os.PathLike[str], **kwargs: Any) -> StaticDef:
    return StaticDef(prefix, os.fspath(path), kwargs)


def middleware(fn: Handler) -> Handler:
    fn.__middleware_version__ = 1  # type: ignore[attr-defined]
    return fn


class AppKey:
    def __init__(self, name: str, t: Any = None) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<AppKey({self.name})>"


class Application(dict):
    """A stand-in for ``web.Application``: keeps what is added, serves nothing by itself."""

    def __init__(self, *, middlewares: Iterable[Any] = (), client_max_size: int = 1024**2, **_kwargs: Any) -> None:
        super().__init__()
        self.middlewares = list(middlewares)
        self.routes: list[Any] = []
        self.on_startup: list[Any] = []
        self.on_shutdown: list[Any] = []
        self.on_cleanup: list[Any] = []
        self.client_max_size = client_max_size

    def add_routes(self, routes: Iterable[Any]) -> list[Any]:
        added = list(routes)
        self.routes.extend(added)
        return added

    def add_subapp(self, prefix: str, subapp: Application) -> None:
        self.routes.append(("SUBAPP", prefix, subapp))

    def __hash__(self) -> int:  # type: ignore[override]
        return id(self)


def run_app(*_args: Any, **_kwargs: Any) -> None:
    raise NotImplementedError("nodefarm serves custom node routes from its own API; run_app is not available")


# ---- requests ----------------------------------------------------------------------------------


class URL:
    """Enough of ``yarl.URL`` for handlers: ``path``, ``query``, ``query_string``, ``raw_path``, ``str()``."""

    def __init__(self, url: str) -> None:
        self._url = url
        parts = urlsplit(url)
        self.scheme, self.host, self.path = parts.scheme, parts.hostname, parts.path or "/"
        self.port = parts.port
        self.raw_path = self.path
        self.query_string = parts.query
        self.fragment = parts.fragment
        self.query = MultiDict(parse_qsl(parts.query, keep_blank_values=True))
        self.name = self.path.rsplit("/", 1)[-1]
        self.parts = tuple(p for p in self.path.split("/") if p)

    @property
    def path_qs(self) -> str:
        return self.path + ("?" + self.query_string if self.query_string else "")

    def __str__(self) -> str:
        return self._url

    def __repr__(self) -> str:
        return f"URL({self._url!r})"

    def __eq__(self, other: object) -> bool:
        return str(self) == str(other)

    def __hash__(self) -> int:
        return hash(self._url)


class StreamReader:
    """``request.content``: the already-received body, read asynchronously."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    async def read(self, n: int = -1) -> bytes:
        end = len(self._data) if n is None or n < 0 else self._pos + n
        chunk = self._data[self._pos : end]
        self._pos += len(chunk)
        return chunk

    async def readany(self) -> bytes:
        return await self.read()

    async def readline(self) -> bytes:
        end = self._data.find(b"\n", self._pos)
        end = len(self._data) if end < 0 else end + 1
        chunk = self._data[self._pos : end]
        self._pos = end
        return chunk

    async def readexactly(self, n: int) -> bytes:
        chunk = await self.read(n)
        if len(chunk) < n:
            raise EOFError("not enough data")
        return chunk

    def at_eof(self) -> bool:
        return self._pos >= len(self._data)

    def iter_chunked(self, n: int) -> Any:
        reader = self

        class _It:
            def __aiter__(self) -> _It:
                return self

            async def __anext__(self) -> bytes:
                chunk = await reader.read(n)
                if not chunk:
                    raise StopAsyncIteration
                return chunk

        return _It()

    def iter_any(self) -> Any:
        return self.iter_chunked(64 * 1024)


class BodyPart:
    """One part of ``await request.multipart()``."""

    def __init__(self, name: str, data: bytes, filename: str | None = None, content_type: str = "text/plain") -> None:
        self.name = name
        self.filename = filename
        self._data = data
        self._pos = 0
        self.headers = CIMultiDict({"Content-Type": content_type})

    async def read(self, *, decode: bool = False) -> bytes:
        return self._data

    async def read_chunk(self, size: int = 8192) -> bytes:
        chunk = self._data[self._pos : self._pos + size]
        self._pos += len(chunk)
        return chunk

    async def text(self, *, encoding: str | None = None) -> str:
        return self._data.decode(encoding or "utf-8")

    async def json(self, *, encoding: str | None = None) -> Any:
        return json.loads(self._data.decode(encoding or "utf-8")) if self._data else None

    async def release(self) -> None:
        self._pos = len(self._data)

    def at_eof(self) -> bool:
        return self._pos >= len(self._data)


class MultipartReader:
    def __init__(self, parts: list[BodyPart]) -> None:
        self._parts = list(parts)

    async def next(self) -> BodyPart | None:
        return self._parts.pop(0) if self._parts else None

    def __aiter__(self) -> MultipartReader:
        return self

    async def __anext__(self) -> BodyPart:
        part = await self.next()
        if part is None:
            raise StopAsyncIteration
        return part


class BaseRequest(dict):
    """An ``aiohttp.web.Request`` look-alike over a request that was already received in full.

    ``form`` (``[(name, str | FileField)]``) is the parsed form body when the server parsed one;
    without it ``post()`` parses ``application/x-www-form-urlencoded`` bodies itself.
    """

    def __init__(
        self,
        method: str,
        url: str,
        headers: Iterable[tuple[str, str]] | Mapping[str, str] = (),
        body: bytes = b"",
        match_info: Mapping[str, str] | None = None,
        remote: str | None = None,
        app: Any = None,
        form: list[tuple[str, Any]] | None = None,
    ) -> None:
        super().__init__()
        self.method = method.upper()
        self.url = URL(url)
        self.rel_url = URL(self.url.path_qs)
        self.headers = CIMultiDict(headers.items() if isinstance(headers, Mapping) else headers)
        self._body = body
        self.match_info = dict(match_info or {})
        self.remote = remote
        self.app = app
        self.config_dict = app if app is not None else {}
        self._form = form
        self.content = StreamReader(body)
        self.transport = None
        self.protocol = None

    # -- request line and headers --
    @property
    def path(self) -> str:
        return self.url.path

    @property
    def raw_path(self) -> str:
        return self.url.path_qs

    @property
    def path_qs(self) -> str:
        return self.url.path_qs

    @property
    def query(self) -> MultiDict:
        return self.url.query

    @property
    def query_string(self) -> str:
        return self.url.query_string

    @property
    def host(self) -> str:
        return self.headers.get("Host") or (self.url.host or "")

    @property
    def scheme(self) -> str:
        return self.url.scheme or "http"

    @property
    def secure(self) -> bool:
        return self.scheme == "https"

    @property
    def version(self) -> tuple[int, int]:
        return (1, 1)

    @property
    def cookies(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for part in (self.headers.get("Cookie") or "").split(";"):
            key, sep, value = part.strip().partition("=")
            if sep:
                out[key] = value
        return out

    @property
    def content_type(self) -> str:
        value = self.headers.get("Content-Type") or "application/octet-stream"
        return value.split(";")[0].strip().lower()

    @property
    def charset(self) -> str | None:
        for param in (self.headers.get("Content-Type") or "").split(";")[1:]:
            key, _, val = param.strip().partition("=")
            if key.lower() == "charset":
                return val.strip('"')
        return None

    @property
    def content_length(self) -> int | None:
        value = self.headers.get("Content-Length")
        return int(value) if value and value.isdigit() else (len(self._body) if self._body else None)

    @property
    def can_read_body(self) -> bool:
        return bool(self._body) and not self.content.at_eof()

    @property
    def body_exists(self) -> bool:
        return bool(self._body)

    has_body = body_exists

    @property
    def loop(self) -> Any:
        import asyncio

        return asyncio.get_event_loop()

    # -- body --
    async def read(self) -> bytes:
        return self._body

    async def text(self) -> str:
        return self._body.decode(self.charset or "utf-8")

    async def json(self, *, loads: Callable[[str], Any] = json.loads) -> Any:
        return loads(await self.text())

    async def post(self) -> MultiDict:
        if self._form is not None:
            return MultiDict(self._form)
        if self.content_type == "application/x-www-form-urlencoded":
            return MultiDict(parse_qsl(self._body.decode(self.charset or "utf-8"), keep_blank_values=True))
        return MultiDict()

    async def multipart(self) -> MultipartReader:
        parts: list[BodyPart] = []
        for name, value in self._form or []:
            if isinstance(value, FileField):
                data = value.file.read()
                if hasattr(value.file, "seek"):
                    value.file.seek(0)
                parts.append(BodyPart(name, data, value.filename, value.content_type))
            else:
                parts.append(BodyPart(name, str(value).encode()))
        return MultipartReader(parts)

    async def release(self) -> None:
        pass

    def clone(self, **changes: Any) -> BaseRequest:
        return type(self)(
            changes.get("method", self.method), str(changes.get("rel_url", self.url)), self.headers.items(),
            self._body, self.match_info, changes.get("remote", self.remote), self.app, self._form,
        )

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.path_qs}>"

    def __hash__(self) -> int:  # type: ignore[override]
        return id(self)

    def __eq__(self, other: object) -> bool:
        return self is other


class Request(BaseRequest):
    pass


# ---- installation ------------------------------------------------------------------------------


def install() -> bool:
    """Enter this module as ``aiohttp.web`` (and a bare ``aiohttp`` package holding it) unless the real
    aiohttp imports. Returns True when the shim was installed."""
    existing = sys.modules.get("aiohttp")
    if existing is not None:
        return bool(getattr(existing, "__nodefarm_shim__", False))
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        pass
    else:
        return False
    package = types.ModuleType("aiohttp", "nodefarm's stand-in for aiohttp: only aiohttp.web is provided")
    package.__path__ = []  # type: ignore[attr-defined]
    package.__nodefarm_shim__ = True  # type: ignore[attr-defined]
    package.__version__ = "0+nodefarm.shim"  # type: ignore[attr-defined]
    web = sys.modules[__name__]
    package.web = web  # type: ignore[attr-defined]
    sys.modules["aiohttp"] = package
    sys.modules["aiohttp.web"] = web
    # aiohttp's own submodules that packs import names from (``from aiohttp.web_request import Request``)
    for sub, names in _SUBMODULES.items():
        module = types.ModuleType(f"aiohttp.{sub}", f"nodefarm's stand-in for aiohttp.{sub}")
        for name in names:
            setattr(module, name, getattr(web, name))
        setattr(package, sub, module)
        sys.modules[f"aiohttp.{sub}"] = module
    return True


_SUBMODULES: dict[str, tuple[str, ...]] = {
    "web_request": ("BaseRequest", "FileField", "Request"),
    "web_response": ("Response", "StreamResponse", "json_response"),
    "web_exceptions": ("HTTPException", "HTTPError", "HTTPClientError", "HTTPServerError"),
    "web_routedef": ("RouteDef", "RouteTableDef", "StaticDef"),
}

