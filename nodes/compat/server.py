"""ComfyUI's ``server`` module: the ``PromptServer.instance`` stand-in custom nodes talk to (spec §7).

There is no aiohttp server in a nodefarm process. ``PromptServer.instance`` exists from import time
so that a pack's ``PromptServer.instance.routes.get("/x")`` at import works; the routes it declares
are recorded and listed by :meth:`PromptServer.collected_routes` for the API process to mount.
``send_sync`` hands every event to the sink that the worker or API binds at boot with
:meth:`PromptServer.bind_sink` (events are dropped, logged at debug, while none is bound). Binary
events (an ``int`` event with bytes or tuple data) pass through the sink unchanged.

Run context (``client_id``, ``last_node_id``, ``last_prompt_id``) is plain attributes the worker sets
around every node call, as ComfyUI's executor does.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, NamedTuple

# Route declarations are recorded with the aiohttp face's RouteTableDef (the real aiohttp's when
# installed, see _new_route_table).
from nodes.compat.aiohttp_web_shim import RouteDef, RouteTableDef, StaticDef

try:  # ``server.web``: aiohttp.web as packs see it (VideoHelperSuite: ``web = server.web``)
    from aiohttp import web  # noqa: F401 - for packs
except ImportError:  # the farm runs without aiohttp: our stand-in (install_compat installs it first)
    from nodes.compat import aiohttp_web_shim as web  # type: ignore[no-redef]  # noqa: F401
from nodes.compat.protocol import BinaryEventTypes

__all__ = ["BinaryEventTypes", "EventSink", "PromptServer", "RouteDef", "RouteRecord", "RouteTableDef", "StaticDef"]

log = logging.getLogger("nodefarm.compat.server")

EventSink = Callable[[str | int, Any, str | None], None]
"""``sink(event, data, sid)``: ``event`` is a message type (str) or a binary event number (int)."""

Handler = Callable[..., Any]


class RouteRecord(NamedTuple):
    """One route a custom node declared, whatever way it used (``routes``, ``app.router``, ``app.add_routes``).

    ``method`` is upper case (``"GET"``, ``"*"`` for any); static folders have ``method == "STATIC"``,
    ``path`` the URL prefix, ``handler`` None and ``kwargs["directory"]`` the folder.
    """

    method: str
    path: str
    handler: Handler | None
    kwargs: dict[str, Any]



def _new_route_table() -> Any:
    """The real ``aiohttp.web.RouteTableDef`` when aiohttp is installed, else :class:`RouteTableDef`."""
    try:
        from aiohttp import web  # noqa: F401 - for packs
    except ImportError:
        return RouteTableDef()
    return web.RouteTableDef()


def _as_record(item: Any) -> RouteRecord:
    """Normalize our route defs and aiohttp's (``RouteDef``/``StaticDef``) to a :class:`RouteRecord`."""
    prefix = getattr(item, "prefix", None)
    if prefix is not None and getattr(item, "handler", None) is None:
        return RouteRecord("STATIC", str(prefix), None, {"directory": str(item.path), **dict(item.kwargs)})
    return RouteRecord(str(item.method).upper(), str(item.path), item.handler, dict(getattr(item, "kwargs", {})))


class _Router:
    """``app.router`` look-alike: every ``add_*`` records a route on the app."""

    frozen = False  # aiohttp's: True once serving; packs read it at import (KJNodes), when it is False

    def __init__(self, records: list[RouteRecord]) -> None:
        self._records = records

    def add_route(self, method: str, path: str, handler: Handler, **kwargs: Any) -> RouteRecord:
        record = RouteRecord(method.upper(), path, handler, kwargs)
        self._records.append(record)
        return record

    def add_get(self, path: str, handler: Handler, **kwargs: Any) -> RouteRecord:
        return self.add_route("GET", path, handler, **kwargs)

    def add_post(self, path: str, handler: Handler, **kwargs: Any) -> RouteRecord:
        return self.add_route("POST", path, handler, **kwargs)

    def add_put(self, path: str, handler: Handler, **kwargs: Any) -> RouteRecord:
        return self.add_route("PUT", path, handler, **kwargs)

    def add_patch(self, path: str, handler: Handler, **kwargs: Any) -> RouteRecord:
        return self.add_route("PATCH", path, handler, **kwargs)

    def add_delete(self, path: str, handler: Handler, **kwargs: Any) -> RouteRecord:
        return self.add_route("DELETE", path, handler, **kwargs)

    def add_head(self, path: str, handler: Handler, **kwargs: Any) -> RouteRecord:
        return self.add_route("HEAD", path, handler, **kwargs)

    def add_view(self, path: str, handler: Handler, **kwargs: Any) -> RouteRecord:
        return self.add_route("*", path, handler, **kwargs)

    def add_static(self, prefix: str, path: Any, **kwargs: Any) -> RouteRecord:
        record = RouteRecord("STATIC", prefix, None, {"directory": str(path), **kwargs})
        self._records.append(record)
        return record

    def routes(self) -> list[RouteRecord]:
        return list(self._records)


class _App:
    """``PromptServer.instance.app`` look-alike: an item store with a recording ``router``."""

    frozen = False  # as aiohttp's Application before it starts (comfy_mtb reads it)

    def __init__(self) -> None:
        self.records: list[RouteRecord] = []
        self.router = _Router(self.records)
        self.middlewares: list[Any] = []
        self.on_startup: list[Any] = []
        self.on_shutdown: list[Any] = []
        self.on_cleanup: list[Any] = []
        self._state: dict[str, Any] = {}

    def add_routes(self, routes: Iterable[Any]) -> list[RouteRecord]:
        added = [_as_record(item) for item in routes]
        self.records.extend(added)
        return added

    def __getitem__(self, key: str) -> Any:
        return self._state[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._state[key] = value

    def __contains__(self, key: object) -> bool:
        return key in self._state

    def get(self, key: str, default: Any = None) -> Any:
        return self._state.get(key, default)


class _PromptQueueFace:
    """``PromptServer.instance.prompt_queue`` stand-in; the farm's queue lives in Redis, not here."""

    def __init__(self) -> None:
        self.flags: dict[str, Any] = {}

    def get_tasks_remaining(self) -> int:
        return 0

    def get_current_queue(self) -> tuple[list[Any], list[Any]]:
        return [], []

    def get_current_queue_volatile(self) -> tuple[list[Any], list[Any]]:
        return [], []

    def get_history(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return {}

    def set_flag(self, name: str, data: Any) -> None:
        self.flags[name] = data

    def get_flags(self, reset: bool = True) -> dict[str, Any]:
        flags = dict(self.flags)
        if reset:
            self.flags.clear()
        return flags


class PromptServer:
    """The object custom nodes reach as ``server.PromptServer.instance``."""

    instance: ClassVar[PromptServer]

    def __init__(self, loop: Any = None) -> None:
        PromptServer.instance = self
        self.loop = loop
        self.routes: Any = _new_route_table()
        self.app = _App()
        self.sockets: dict[str, Any] = {}
        self.sockets_metadata: dict[str, Any] = {}
        self.prompt_queue: Any = _PromptQueueFace()
        self.client_id: str | None = None
        self.last_node_id: str | None = None
        self.last_prompt_id: str | None = None
        self.number = 0
        self.supports = ["custom_nodes_from_web"]
        self.user_manager: Any = None
        self.on_prompt_handlers: list[Callable[[dict[str, Any]], Any]] = []
        self._sink: EventSink | None = None

    # ---- events ------------------------------------------------------------------------------

    def bind_sink(self, sink: EventSink | None) -> None:
        """Route every ``send_sync``/``send`` event to ``sink(event, data, sid)`` (None unbinds)."""
        self._sink = sink

    def send_sync(self, event: str | int, data: Any, sid: str | None = None) -> None:
        sink = self._sink
        if sink is None:
            log.debug("no event sink bound; dropped %r", event)
            return
        sink(event, data, sid)

    async def send(self, event: str | int, data: Any, sid: str | None = None) -> None:
        self.send_sync(event, data, sid)

    async def send_json(self, event: str, data: Any, sid: str | None = None) -> None:
        self.send_sync(event, data, sid)

    async def send_bytes(self, event: int, data: Any, sid: str | None = None) -> None:
        self.send_sync(event, data, sid)

    @staticmethod
    def encode_bytes(event: int, data: bytes) -> bytes:
        """A binary frame: 4-byte big-endian event number + payload."""
        if not isinstance(event, int):
            raise RuntimeError(f"Binary event types must be integers, got {event!r}")
        return struct.pack(">I", event) + data

    def send_progress_text(self, text: str | bytes, node_id: str, sid: str | None = None) -> None:
        """Binary event 3: 4-byte BE node id length + node id + text (UTF-8)."""
        text_bytes = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        node_bytes = str(node_id).encode("utf-8")
        payload = struct.pack(">I", len(node_bytes)) + node_bytes + text_bytes
        self.send_sync(BinaryEventTypes.TEXT, payload, sid)

    def get_queue_info(self) -> dict[str, Any]:
        return {"exec_info": {"queue_remaining": self.prompt_queue.get_tasks_remaining()}}

    def queue_updated(self) -> None:
        self.send_sync("status", {"status": self.get_queue_info()})

    # ---- prompt hooks ------------------------------------------------------------------------

    def add_on_prompt_handler(self, handler: Callable[[dict[str, Any]], Any]) -> None:
        self.on_prompt_handlers.append(handler)

    def trigger_on_prompt(self, json_data: dict[str, Any]) -> dict[str, Any]:
        """Pass the POST /prompt body through every handler in order; a failing handler is logged."""
        for handler in self.on_prompt_handlers:
            try:
                json_data = handler(json_data)
            except Exception:
                log.exception("on_prompt handler %r failed", handler)
        return json_data

    # ---- routes ------------------------------------------------------------------------------

    def collected_routes(self) -> list[RouteRecord]:
        """Every route custom nodes declared: ``routes`` decorators first, then ``app`` registrations."""
        return [_as_record(item) for item in self.routes] + list(self.app.records)


PromptServer.instance = PromptServer()
