"""Named API tokens: who may use the farm, and under which name their runs are submitted.

With ``--auth-token-file FILE`` (``NODEFARM_AUTH_TOKEN_FILE``) every HTTP route, ``/ws`` and Socket.IO
need a token from that file, one ``name token`` per line. A client presents it as an
``Authorization: Bearer`` header, a ``nodefarm_token`` cookie or a ``?token=`` query parameter: the
official editor and browsers cannot put a header on a websocket, and a page cannot put one on an
``<img src>``, so the browser path is a cookie, set by the login page (``/nodefarm/login``) or by
opening any page once with ``?token=...``. The token's name is the run's submitter.

Tokens are compared as SHA-256 digests with :func:`hmac.compare_digest`, against every known token
(no early exit), so the time of a refusal says nothing about any token. The file is re-read when it
changes (its mtime, size or inode), so a token added with ``nodefarm token add`` works at once and a
line removed revokes that token without a restart. A file that cannot be read counts as empty: the
farm fails closed.

``NODEFARM_API_TOKEN`` is the token of the farm itself: workers send it to ``/internal/*`` (model
files), and the API accepts it under the name ``farm-internal``. ``nodefarm up`` generates one per
start and gives it to its children through the environment; it is never written to the user's file.

Order of the guards: the Origin guard (:mod:`api.origin`) runs first, so a foreign page gets a 403
whatever it sends; this guard runs second. The only routes open without a token are the login page,
its form's target and logout; the page is self-contained (no assets to open).
"""

from __future__ import annotations

import hashlib
import hmac
import html
import logging
import os
import re
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit

from flask import Flask, Response, current_app, g, redirect, request

from api.routing import json_response

log = logging.getLogger("nodefarm.auth")

COOKIE = "nodefarm_token"
QUERY = "token"
INTERNAL_NAME = "farm-internal"
MIN_TOKEN_CHARS = 16
COOKIE_MAX_AGE_S = 30 * 24 * 3600
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}")
LOGIN_PATH = "/nodefarm/login"
LOGOUT_PATH = "/nodefarm/logout"
OPEN_PATHS = frozenset({LOGIN_PATH, LOGOUT_PATH})
PAGE_PATHS = frozenset({"/", "/index.html", "/nodefarm", "/nodefarm/"})
LOGIN_PAGE = Path(__file__).resolve().parents[1] / "frontend" / "login.html"
EXTENSION = "nodefarm.auth"
SUBMITTER_KEY = "nodefarm_submitter"  # in a run's extra_data: who submitted it (/queue; /api/jobs "submitter")
# the login page: its inline style, an empty icon (no /favicon.ico request, which would need a token)
LOGIN_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; "
             "frame-ancestors 'none'; base-uri 'none'")


def new_token() -> str:
    """A fresh token: 32 random bytes, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(32)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


@dataclass(frozen=True)
class Parsed:
    """A token file read: ``(name, token)`` pairs in file order, and what was wrong with other lines."""

    tokens: tuple[tuple[str, str], ...]
    problems: tuple[str, ...]

    @property
    def names(self) -> list[str]:
        return [name for name, _token in self.tokens]


def parse(text: str) -> Parsed:
    """``name token`` lines; ``#`` comments (whole lines, or after the token) and blank lines are
    allowed. A malformed line, a bad or reserved name, a short token, a name or token given twice is
    left out and reported by line number (never with the token)."""
    tokens: list[tuple[str, str]] = []
    problems: list[str] = []
    names: set[str] = set()
    seen: set[bytes] = set()
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) > 2 and parts[2].startswith("#"):
            parts = parts[:2]
        if len(parts) != 2:
            problems.append(f"line {number}: expected `name token`")
            continue
        name, token = parts
        if not NAME_PATTERN.fullmatch(name) or name == INTERNAL_NAME:
            problems.append(f"line {number}: {name!r} is not a usable name (letters, digits, ._@+-; not {INTERNAL_NAME})")
        elif len(token) < MIN_TOKEN_CHARS:
            problems.append(f"line {number}: the token of {name} is shorter than {MIN_TOKEN_CHARS} characters")
        elif name in names:
            problems.append(f"line {number}: {name} is named twice; the first line counts")
        elif _digest(token) in seen:
            problems.append(f"line {number}: the token of {name} is another name's token")
        else:
            names.add(name)
            seen.add(_digest(token))
            tokens.append((name, token))
    return Parsed(tuple(tokens), tuple(problems))


def read(path: Path) -> Parsed:
    return parse(path.read_text(encoding="utf-8"))


class TokenFile:
    """The tokens of one file (re-read when it changes) plus the farm's internal token."""

    def __init__(self, path: Path, internal: str = "") -> None:
        self.path = path
        self.internal = ((INTERNAL_NAME, _digest(internal)),) if internal else ()
        self.lock = threading.Lock()
        self.signature: tuple[int, int, int] | None = None
        self.loaded = False
        self.digests: tuple[tuple[str, bytes], ...] = ()
        self.refresh()

    def refresh(self) -> None:
        """Read the file again if its mtime, size or inode changed since the last read."""
        signature = self._signature()
        if self.loaded and signature == self.signature:
            return
        with self.lock:
            if self.loaded and signature == self.signature:
                return
            try:
                parsed = read(self.path)
            except (OSError, UnicodeError) as exc:
                log.warning("token file %s cannot be read (%s): none of its tokens is accepted", self.path, exc)
                parsed = Parsed((), ())
            for problem in parsed.problems:
                log.warning("token file %s: %s (ignored)", self.path, problem)
            self.digests = tuple((name, _digest(token)) for name, token in parsed.tokens)
            self.signature, self.loaded = signature, True
            log.info("token file %s: %d token(s)", self.path, len(self.digests))

    def _signature(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size, st.st_ino

    def lookup(self, presented: str | None) -> str | None:
        """The name of ``presented``, or None. Constant time in the token: every known token is
        compared, as a digest, whatever matched before."""
        if not presented:
            return None
        self.refresh()
        digest = _digest(presented)
        found: str | None = None
        for name, known in (*self.digests, *self.internal):
            if hmac.compare_digest(digest, known) and found is None:
                found = name
        return found


# ---- reading a request ---------------------------------------------------------------------------


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


def authenticate(tokens: TokenFile, extra: str | None = None) -> tuple[str | None, str]:
    """(the token's name or None, where the accepted token came from: header, cookie, query, auth)."""
    for source, presented in (("header", _bearer()), ("cookie", request.cookies.get(COOKIE)),
                              ("query", request.args.get(QUERY)), ("auth", extra)):
        name = tokens.lookup(presented)
        if name is not None:
            return name, source
    return None, ""


def submitter() -> str | None:
    """The name of the token this request came with (None when the farm has no tokens)."""
    name = g.get("nodefarm_submitter")
    return str(name) if name else None


def stamp_submitter(extra_data: dict, client_id: str | None) -> None:
    """Record who submitted a run in its ``extra_data`` (whatever the client put there): the token's
    name, or without tokens the client id."""
    extra_data.pop(SUBMITTER_KEY, None)
    name = submitter() or client_id
    if name:
        extra_data[SUBMITTER_KEY] = name


def is_page() -> bool:
    """A browser asking for a page: the editor, the dashboard, or any GET whose Accept names HTML."""
    if request.method not in ("GET", "HEAD"):
        return False
    return request.path in PAGE_PATHS or "text/html" in request.headers.get("Accept", "")


def safe_next(value: str | None) -> str:
    """``next`` if it is a path on this site (``/...``, not ``//host`` or ``/\\host``), else ``/``."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


def _without_token() -> str:
    """This request's path and query, less ``token``."""
    query = urlencode([(k, v) for k, v in request.args.items(multi=True) if k != QUERY])
    return quote(request.path) + (f"?{query}" if query else "")


def _set_cookie(response: Response, token: str) -> Response:
    response.set_cookie(COOKIE, token, max_age=COOKIE_MAX_AGE_S, path="/", httponly=True, samesite="Strict",
                        secure=request.is_secure)
    return response


def unauthorized(message: str = "a valid token is required (Authorization: Bearer TOKEN, the nodefarm_token "
                 "cookie or ?token=TOKEN)") -> Response:
    response = json_response({"error": {"type": "unauthorized", "message": message, "details": "",
                                        "extra_info": {}}}, 401)
    response.headers["WWW-Authenticate"] = 'Bearer realm="nodefarm"'
    return response


def login_page(next_path: str, error: str = "", status: int = 200) -> Response:
    text = LOGIN_PAGE.read_text(encoding="utf-8")
    text = text.replace("{{next}}", html.escape(next_path, quote=True)).replace("{{error}}", html.escape(error))
    response = Response(text, status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = LOGIN_CSP
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


# ---- installing ----------------------------------------------------------------------------------


def install(app: Flask, token_file: Path | None, internal: str = "") -> TokenFile | None:
    """The guard (a ``before_request`` hook) and the login routes, when the farm has a token file."""
    if token_file is None:
        return None
    tokens = TokenFile(token_file, internal)
    app.extensions[EXTENSION] = tokens

    def get_login() -> Response:
        return login_page(safe_next(request.args.get("next")))

    def post_login() -> Response:
        next_path = safe_next(request.form.get("next"))
        token = request.form.get("token", "").strip()
        name = tokens.lookup(token)
        if name is None:
            log.warning("login refused from %s", request.remote_addr)
            return login_page(next_path, "That token is not valid.", 401)
        log.info("login of %s from %s", name, request.remote_addr)
        return _set_cookie(redirect(next_path, 303), token)  # type: ignore[arg-type]

    def post_logout() -> Response:
        response: Response = redirect(LOGIN_PATH, 303)  # type: ignore[assignment]
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="Strict", secure=request.is_secure)
        return response

    app.add_url_rule(LOGIN_PATH, "nodefarm_login", get_login, methods=["GET"])
    app.add_url_rule(LOGIN_PATH, "nodefarm_login_post", post_login, methods=["POST"])
    app.add_url_rule(LOGOUT_PATH, "nodefarm_logout", post_logout, methods=["POST"])

    @app.before_request
    def guard() -> Response | None:
        if request.path in OPEN_PATHS:
            return None
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            return Response(status=204)  # a CORS preflight carries no credentials; no view runs for it
        name, source = authenticate(tokens)
        if name is not None:
            g.nodefarm_submitter = name
            if source == "query" and is_page():  # the token in the URL once: keep it in a cookie instead
                return _set_cookie(redirect(safe_next(_without_token()), 303), request.args[QUERY])  # type: ignore[arg-type]
            return None
        if is_page():
            return redirect(f"{LOGIN_PATH}?{urlencode({'next': _without_token()})}", 303)  # type: ignore[return-value]
        return unauthorized()

    return tokens


def refuse_socketio(auth: object) -> None:
    """For Socket.IO's connect handler: raise ConnectionRefusedError unless the handshake carries a
    valid token (header, cookie, ``?token=`` or ``auth={"token": ...}``); nothing when there are no tokens."""
    from flask_socketio import ConnectionRefusedError

    tokens: TokenFile | None = current_app.extensions.get(EXTENSION)
    if tokens is None:
        return
    extra = auth.get("token") if isinstance(auth, dict) and isinstance(auth.get("token"), str) else None
    name, _source = authenticate(tokens, extra)
    if name is None:
        raise ConnectionRefusedError("unauthorized: a valid token is required")
    g.nodefarm_submitter = name
