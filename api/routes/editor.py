"""The official ComfyUI editor, served from the ``comfyui-frontend-package`` wheel, as ComfyUI does.

* ``/`` is the package's ``index.html`` and every other file of its ``static/`` folder is served at
  its own path (``/assets/...``, ``/scripts/...``, ``/extensions/core/...``), after every API route.
* ``/extensions/<pack>/<file>`` serves a custom node pack's ``WEB_DIRECTORY``. A script that uses the
  editor's ``app`` or ``api`` as free globals without importing them (as the old docs showed) gets
  the import of ``scripts/app.js``/``scripts/api.js`` prepended, after the import of
  ``/nodefarm/editor_compat.js`` (``api/routes/editor_compat.js``: gives nodes their ``type`` before such
  scripts' ``nodeCreated`` looks at it); scripts that import or declare them are served byte for byte.
* ``/nodefarm/`` is the farm's own dashboard, built from ``frontend/dashboard/`` into its ``dist/`` (``api/dashboard.py``).
"""

from __future__ import annotations

import importlib.util
import logging
import mimetypes
import os
import posixpath
import re
import threading
from pathlib import Path

from flask import Blueprint, Response, abort, send_from_directory
from werkzeug.security import safe_join

from api.routing import farm

log = logging.getLogger("nodefarm.api.editor")
bp = Blueprint("editor", __name__)

DASHBOARD_DIR = Path(__file__).resolve().parents[2] / "frontend"
DASHBOARD_BUILD = DASHBOARD_DIR / "dashboard" / "dist"  # `npm run build` of frontend/dashboard/ (the Makefile runs it)
MISSING_BUILD = ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>nodefarm</title></head><body>"
                 "<h1>nodefarm</h1><p>The farm dashboard is not built: <code>frontend/dashboard/dist/</code> is missing. "
                 "Run <code>make up</code> (or <code>make dashboard</code>), which builds it with npm, then reload.</p>"
                 "<p>The API speaks ComfyUI's protocol meanwhile: <code>POST /prompt</code>, <code>/ws</code>, "
                 "<code>/history</code>, <code>/view</code>.</p></body></html>")
COMPAT_SCRIPT = "/nodefarm/editor_compat.js"
COMPAT_FILE = Path(__file__).resolve().parent / "editor_compat.js"
GLOBALS = {"app": "scripts/app.js", "api": "scripts/api.js"}
IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".ico", ".svg", ".avif"}

mimetypes.add_type("text/javascript", ".js")
mimetypes.add_type("text/javascript", ".mjs")
mimetypes.add_type("text/css", ".css")
mimetypes.add_type("application/json", ".json")
mimetypes.add_type("application/manifest+json", ".webmanifest")
mimetypes.add_type("font/woff2", ".woff2")
mimetypes.add_type("image/webp", ".webp")


# nodefarm's own extensions of the editor, served like a custom node pack's web directory
FARM_WEB_DIRS = {"nodefarm": DASHBOARD_DIR / "editor"}


def web_dirs() -> dict[str, Path]:
    """Web extension folders by pack name: nodefarm's own, then the loaded packs'."""
    return {**FARM_WEB_DIRS, **{name: Path(d) for name, d in farm().registry.web_dirs.items()}}


def frontend_root() -> Path | None:
    """The ``static/`` folder of the installed ``comfyui_frontend_package`` (None if it is missing)."""
    spec = importlib.util.find_spec("comfyui_frontend_package")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        static = Path(location) / "static"
        if (static / "index.html").is_file():
            return static
    return None


def frontend_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("comfyui-frontend-package")
    except Exception:
        return None


def cache_headers(response: Response, path: str) -> Response:
    """ComfyUI's ``cache_control`` middleware: scripts and styles revalidate, images are cached a day."""
    ext = os.path.splitext(path)[1].lower()
    if ext in (".js", ".mjs", ".css") or path.endswith("index.json"):
        response.headers["Cache-Control"] = "no-cache"
    elif ext in IMAGE_EXTENSIONS:
        response.headers["Cache-Control"] = "public, max-age=86400" if response.status_code < 300 else "public, max-age=3600"
    return response


# ---- the editor page and its static files ------------------------------------------------------


@bp.route("/", methods=["GET"])
def index() -> Response:
    root = frontend_root()
    if root is None:
        return Response(
            "<h1>nodefarm</h1><p>The editor (pip package <code>comfyui-frontend-package</code>) is not installed."
            ' The farm dashboard is at <a href="nodefarm/">/nodefarm/</a>.</p>',
            mimetype="text/html",
        )
    response = send_from_directory(root, "index.html", max_age=0)
    response.headers["Cache-Control"] = "no-store, must-revalidate"
    response.headers["Pragma"] = "no-cache"
    response.headers["Expires"] = "0"
    return response


@bp.route("/nodefarm/", methods=["GET"])
def dashboard() -> Response:
    """The dashboard built from ``frontend/dashboard/`` (``make`` builds it), or a page saying how to build it."""
    if not (DASHBOARD_BUILD / "index.html").is_file():
        return Response(MISSING_BUILD, mimetype="text/html")
    response = send_from_directory(DASHBOARD_BUILD, "index.html", max_age=0)
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.route("/nodefarm/assets/<path:path>", methods=["GET", "HEAD"])
def dashboard_asset(path: str) -> Response:
    """The dashboard's bundle: file names carry a content hash, so they are cached for good."""
    assets = DASHBOARD_BUILD / "assets"
    if safe_join(str(assets), path) is None or not (assets / path).is_file():
        abort(404)
    return send_from_directory(assets, path, max_age=365 * 86400)


@bp.route(COMPAT_SCRIPT, methods=["GET"])
def compat_script() -> Response:
    """Imported (first) by the legacy-style extension scripts this module rewrites."""
    response = send_from_directory(COMPAT_FILE.parent, COMPAT_FILE.name, max_age=0, mimetype="text/javascript")
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.route("/user.css", methods=["GET"])
def user_css() -> Response:
    """The editor links ``user.css`` next to ``index.html``; an empty sheet when the package has none."""
    root = frontend_root()
    if root is not None and (root / "user.css").is_file():
        return cache_headers(send_from_directory(root, "user.css", max_age=0), "user.css")
    return Response("", mimetype="text/css", headers={"Cache-Control": "no-cache"})


@bp.route("/favicon.ico", methods=["GET"])
def favicon() -> Response:
    """The editor's icon, also for pages that name none (the dashboard); browsers ask for it anyway."""
    root = frontend_root()
    if root is not None and (root / "assets" / "favicon.ico").is_file():
        return send_from_directory(root / "assets", "favicon.ico", max_age=86400)
    return Response(status=204)


@bp.route("/<path:path>", methods=["GET", "HEAD"])
def static_file(path: str) -> Response:
    """Any other file of the frontend package (registered last: every API route wins)."""
    root = frontend_root()
    if root is None or safe_join(str(root), path) is None:
        abort(404)
    target = root / path
    if target.is_dir():
        if (target / "index.html").is_file():
            return cache_headers(send_from_directory(root, posixpath.join(path, "index.html"), max_age=0), "index.html")
        abort(404)
    if not target.is_file():
        abort(404)
    return cache_headers(send_from_directory(root, path, max_age=0), path)


# ---- custom node web extensions ----------------------------------------------------------------


@bp.route("/extensions/<name>/<path:path>", methods=["GET", "HEAD"])
def extension_file(name: str, path: str) -> Response:
    web_dir = web_dirs().get(name)
    if web_dir is None:
        root = frontend_root()  # /extensions/core/... and friends come from the frontend package
        if root is None or safe_join(str(root), "extensions", name, path) is None:
            abort(404)
        if not (root / "extensions" / name / path).is_file():
            abort(404)
        return cache_headers(send_from_directory(root / "extensions" / name, path, max_age=0), path)
    joined = safe_join(str(web_dir), path)
    if joined is None or not os.path.isfile(joined):
        abort(404)
    if path.endswith((".js", ".mjs")):
        depth = 2 + path.count("/")  # /extensions/<name>/<path>: how far up the site root is
        text = _rewritten(Path(joined), "../" * depth)
        if text is not None:
            response = Response(text, mimetype="text/javascript")
            response.headers["Cache-Control"] = "no-cache"
            return response
    return cache_headers(send_from_directory(web_dir, path, max_age=0), path)


_script_cache: dict[tuple[str, int, int, str], str] = {}
_script_lock = threading.Lock()


def _rewritten(path: Path, root_prefix: str) -> str | None:
    """The served text of an extension script (cached by file identity), None if not UTF-8 text."""
    try:
        st = path.stat()
    except OSError:
        return None
    key = (str(path), st.st_mtime_ns, st.st_size, root_prefix)
    with _script_lock:
        hit = _script_cache.get(key)
    if hit is not None:
        return hit
    try:
        source = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    text = rewrite_extension_script(source, root_prefix)
    with _script_lock:
        if len(_script_cache) > 1024:
            _script_cache.clear()
        _script_cache[key] = text
    return text


def rewrite_extension_script(source: str, root_prefix: str = "/") -> str:
    """``source`` with ``import { app } from "<root>scripts/app.js"`` (and ``api``) prepended where the
    script uses that name as a free global. Scripts that import or declare it are returned unchanged."""
    missing = free_globals(source)
    if not missing:
        return source
    imports = [f'import "{root_prefix}{COMPAT_SCRIPT.lstrip("/")}";']
    imports += [f'import {{ {name} }} from "{root_prefix}{GLOBALS[name]}";' for name in sorted(missing)]
    # on the first line, so that line numbers in the browser's stack traces stay the script's own
    return " ".join(imports) + " /* added by nodefarm: the script uses these globals without importing them */ " + source


# ---- a small JavaScript scanner ------------------------------------------------------------------

_IDENT = re.compile(r"[A-Za-z_$][\w$]*")
_REGEX_PRECEDERS = set("(,=:[!&|?{};+-*%<>~^")
_REGEX_KEYWORDS = {"return", "typeof", "instanceof", "in", "of", "new", "delete", "void", "throw", "case", "do", "else", "yield", "await"}


def scan(source: str) -> tuple[str, list[int]]:
    """The source with comments, strings and regex literals blanked out, and the brace depth at each
    character (template literal ``${...}`` expressions stay code)."""
    out: list[str] = []
    depth_at: list[int] = []
    depth = 0
    i, n = 0, len(source)
    template_stack: list[int] = []  # brace depth at which each open ${ started
    last_sig = ""  # last significant code character or word, for the regex-or-division question

    def emit(ch: str) -> None:
        out.append(ch)
        depth_at.append(depth)

    def blank(text: str) -> None:
        for ch in text:
            emit("\n" if ch == "\n" else " ")

    def read_template(start: int) -> int:
        """Blank a template literal body from ``start`` (after the backtick) up to its end or a ``${``."""
        j = start
        while j < n:
            c = source[j]
            if c == "\\":
                j += 2
                continue
            if c == "`":
                blank(source[start:j])
                emit("`")
                return j + 1
            if c == "$" and j + 1 < n and source[j + 1] == "{":
                blank(source[start:j])
                return -(j + 2) - 1  # negative: entered an expression at j + 2
            j += 1
        blank(source[start:n])
        return n

    def continue_template(start: int) -> tuple[int, str]:
        """Template text from ``start``; at a ``${`` enter its expression. Returns (next index, last_sig)."""
        nonlocal depth
        r = read_template(start)
        if r >= 0:
            return r, "str"
        emit("$")
        emit("{")
        depth += 1
        template_stack.append(depth)
        return -r - 1, "{"

    while i < n:
        c = source[i]
        if c == "/" and i + 1 < n and source[i + 1] == "/":
            j = source.find("\n", i)
            j = n if j < 0 else j
            blank(source[i:j])
            i = j
            continue
        if c == "/" and i + 1 < n and source[i + 1] == "*":
            j = source.find("*/", i + 2)
            j = n if j < 0 else j + 2
            blank(source[i:j])
            i = j
            continue
        if c in "'\"":
            j = i + 1
            while j < n and source[j] != c and source[j] != "\n":
                j += 2 if source[j] == "\\" else 1
            j = min(j + 1, n)
            emit(c)
            blank(source[i + 1 : j - 1])
            emit(c)
            i = j
            last_sig = "str"
            continue
        if c == "`":
            emit("`")
            i, last_sig = continue_template(i + 1)
            continue
        if c == "/" and (last_sig == "" or last_sig in _REGEX_PRECEDERS or last_sig in _REGEX_KEYWORDS):
            j, in_class = i + 1, False
            while j < n and source[j] != "\n":
                ch = source[j]
                if ch == "\\":
                    j += 2
                    continue
                if ch == "[":
                    in_class = True
                elif ch == "]":
                    in_class = False
                elif ch == "/" and not in_class:
                    break
                j += 1
            j += 1
            while j < n and (source[j].isalnum() or source[j] == "_"):
                j += 1
            j = min(j, n)
            emit("/")
            blank(source[i + 1 : j])
            i = j
            last_sig = "str"
            continue
        if c == "{":
            emit(c)
            depth += 1
            last_sig = c
            i += 1
            continue
        if c == "}":
            if template_stack and template_stack[-1] == depth:
                template_stack.pop()
                depth -= 1
                emit("}")
                i, last_sig = continue_template(i + 1)
                continue
            depth = max(0, depth - 1)
            emit(c)
            last_sig = c
            i += 1
            continue
        m = _IDENT.match(source, i) if (c.isalpha() or c in "_$") else None
        if m:
            word = m.group(0)
            for ch in word:
                emit(ch)
            i = m.end()
            last_sig = word if word in _REGEX_KEYWORDS else "id"
            continue
        emit(c)
        if not c.isspace():
            last_sig = c if c in _REGEX_PRECEDERS else ("id" if c in ")]" else c)
        i += 1
    return "".join(out), depth_at


_IMPORT = re.compile(r"(?<![\w$.])import\s*([\w$*{][^;]*?)\s*from\s*[\"'`]", re.S)
_DECL = re.compile(r"(?<![\w$.])(const|let|var|function\*?|class|async\s+function\*?)\s*(\*?\s*[\w${[][^=;(]*)")
_EXPORT_LIST = re.compile(r"(?<![\w$.])export\s*\{")


def import_bindings(clause: str) -> set[str]:
    """Local names bound by an import clause (``x``, ``* as x``, ``{ a, b as x }``)."""
    names: set[str] = set()
    clause = clause.strip()
    brace = re.search(r"\{([^}]*)\}", clause)
    if brace:
        for part in brace.group(1).split(","):
            bits = part.split()
            if bits:
                names.add(bits[-1])
        clause = clause[: brace.start()] + clause[brace.end() :]
    star = re.search(r"\*\s*as\s+([\w$]+)", clause)
    if star:
        names.add(star.group(1))
        clause = clause[: star.start()] + clause[star.end() :]
    default = re.match(r"\s*([\w$]+)", clause)
    if default:
        names.add(default.group(1))
    return names


def free_globals(source: str) -> set[str]:
    """Which of ``app``/``api`` the script uses without importing or declaring them at module level."""
    if not any(re.search(rf"(?<![\w$]){name}(?![\w$])", source) for name in GLOBALS):
        return set()
    code, depth = scan(source)
    bound: set[str] = set()
    for m in _IMPORT.finditer(code):
        bound |= import_bindings(m.group(1))
    for m in _DECL.finditer(code):
        if depth[m.start()] != 0:
            continue
        bound |= set(_IDENT.findall(m.group(2)))
    used: set[str] = set()
    for name in GLOBALS:
        if name in bound:
            continue
        for m in re.finditer(rf"(?<![\w$.]){name}(?![\w$])", code):
            tail = code[m.end() : m.end() + 3].lstrip()
            if tail.startswith(":") and not tail.startswith("::"):
                # an object key (`{ app: ... }`) is no reference; a label or ternary arm is rare enough
                prev = code[: m.start()].rstrip()[-1:]
                if prev in ("{", ","):
                    continue
            used.add(name)
            break
    return used
