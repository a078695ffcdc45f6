"""Registering each route twice, at ``/path`` and ``/api/path``, as ComfyUI does (spec 2), and what every
route module needs: the request body, JSON answers, the Farm, ComfyUI's ``folder_paths``."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, request


def twin(bp: Blueprint, rule: str, **options: Any) -> Callable[[Callable], Callable]:
    def decorator(fn: Callable) -> Callable:
        bp.add_url_rule(rule, fn.__name__, fn, **options)
        bp.add_url_rule("/api" + rule, "api_" + fn.__name__, fn, **options)
        return fn

    return decorator


SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):  # 1e999 parses as infinity: not a number JSON can carry
        raise ValueError(f"{text} is out of range")
    return value


MAX_DEPTH = 128  # nesting levels a request body may have (a ComfyUI workflow needs about 10)
NOT_JSON = object()  # body_json's answer for a body that is not strict JSON, when asked to tell


def depth_within(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether ``value`` nests no deeper than ``limit`` containers (level by level: no recursion)."""
    level = [value] if isinstance(value, (dict, list)) else []
    for _ in range(limit):
        if not level:
            return True
        below: list[Any] = []
        for item in level:
            below.extend(v for v in (item.values() if isinstance(item, dict) else item) if isinstance(v, (dict, list)))
        level = below
    return not level


def body_json(default: Any = None, invalid: Any = None) -> Any:
    """The request body as JSON whatever the Content-Type says (ComfyUI's ``await request.json()``).

    Strict: NaN/Infinity (also numbers too large for a float), lone surrogates (text Redis cannot
    store) and nesting deeper than ``MAX_DEPTH`` are not JSON here, so nothing the farm stores or
    serves is less than strict JSON. No body gives ``default``; a body that is not JSON gives
    ``invalid`` (``default`` when not given)."""
    raw = request.get_data(cache=True)
    if not raw:
        return default
    bad = default if invalid is None else invalid
    try:
        value = json.loads(raw, parse_constant=_no_constants, parse_float=_finite)
        if SURROGATE_ESCAPE.search(raw):  # only an escape can make one (raw UTF-8 ones fail to decode)
            json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (ValueError, UnicodeError, RecursionError):
        return bad
    return value if depth_within(value) else bad


# types a browser would run or render as a page: a user's file of such a type is a download, never
# active content on the farm's origin
ACTIVE_TYPES = frozenset({"text/html", "application/xhtml+xml", "image/svg+xml", "text/xml", "application/xml",
                          "application/xslt+xml", "text/xsl", "text/javascript", "application/javascript"})


def user_file(path: Any, *, also_active: frozenset[str] = frozenset()) -> Response:
    """A user's file (an output, an upload, user data): served with its type unless that type is
    active content (``ACTIVE_TYPES`` and ``also_active``), then as an attachment; never sniffed."""
    import mimetypes

    from flask import send_file

    name = os.path.basename(str(path))
    mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
    active = mime in ACTIVE_TYPES or mime in also_active
    response = send_file(path, mimetype="application/octet-stream" if active else mime, max_age=0)
    disposition = "attachment" if active else "inline"
    response.headers["Content-Disposition"] = f'{disposition}; filename="{name}"'
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def strict(value: Any) -> Any:
    """``value`` with NaN and infinities replaced by null (what a JSON parser elsewhere can read)."""
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, dict):
        return {k: strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict(v) for v in value]
    return value


def strict_dumps(data: Any) -> str:
    """JSON text that is strict JSON whatever ``data`` holds (a node's NaN output, say)."""
    try:
        return json.dumps(data, allow_nan=False)
    except ValueError:
        return json.dumps(strict(data), allow_nan=False)


def json_response(data: Any, status: int = 200) -> Response:
    return Response(strict_dumps(data), status=status, mimetype="application/json")


def empty(status: int = 200) -> Response:
    return Response(b"", status=status)


def farm() -> Any:
    """The Farm this API process was created with."""
    from flask import current_app

    return current_app.extensions["nodefarm"]


def folder_paths() -> Any:
    """ComfyUI's ``folder_paths`` (the compat module, set up by the boot function), imported at first use."""
    from nodes.compat import folder_paths as module

    return module


def admitter() -> Any:
    """The admission thread of this API process (:class:`worker.admission.Admitter`)."""
    from flask import current_app

    return current_app.extensions["nodefarm.admitter"]
