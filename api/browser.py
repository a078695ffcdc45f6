"""Security headers for what browsers get from the farm.

Every response: ``X-Content-Type-Options: nosniff`` (a user's file is never sniffed into a page) and
``Referrer-Policy: same-origin``. Every HTML page: a Content-Security-Policy with ``frame-ancestors``
(no other site frames the editor to click its Run button) and ``X-Frame-Options`` for older browsers.
Our own pages (the editor at ``/``, the dashboard and login page under ``/nodefarm/``) get the strict
policy: scripts only from the farm, plus the exact inline scripts of that page by hash (computed from
the page as served, so a new editor release needs no change here), connections only to the farm, no
plugins, no ``<base>`` or form posts elsewhere. Pages of custom node packs get ``frame-ancestors``
only: their authors wrote them for ComfyUI, which sends no policy.
"""

from __future__ import annotations

import base64
import hashlib
import re

from flask import Flask, Response, request

INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc\s*=)[^>]*>(.*?)</script>", re.S | re.I)
OUR_PAGES = ("/nodefarm/",)
# the editor asks Comfy's services for release notes, the registry and templates, and looks up the model
# files a workflow names wherever they are hosted (Hugging Face, Civitai, ...): any https origin
EDITOR_SERVICES = ("https:",)


def script_hashes(html: bytes) -> list[str]:
    """CSP source expressions (``'sha256-...'``) of the inline scripts of a page."""
    return [f"'sha256-{base64.b64encode(hashlib.sha256(body).digest()).decode()}'" for body in INLINE_SCRIPT.findall(html)]


def ancestors(allow: tuple[str, ...]) -> str:
    extra = [o for o in allow if o != "*" and re.fullmatch(r"https?://[\w.\-:\[\]]+", o)]
    return " ".join(["'self'", *extra])


def strict_policy(hashes: list[str], frame_ancestors: str) -> str:
    return "; ".join([
        "default-src 'self'",
        # the editor's extensions may build code at run time (some node packs do) and load workers from blobs
        "script-src 'self' 'unsafe-eval' blob: " + " ".join(hashes),
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob: https:",  # template thumbnails and model previews hosted elsewhere
        "media-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self' data: blob: " + " ".join(EDITOR_SERVICES),
        "worker-src 'self' blob:",
        "frame-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        f"frame-ancestors {frame_ancestors}",
    ])


def ours(path: str) -> bool:
    return path == "/" or path.startswith(OUR_PAGES)


def install(app: Flask, allow: tuple[str, ...] = ()) -> None:
    frame_ancestors = ancestors(allow)

    @app.after_request
    def security_headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if response.mimetype != "text/html" or response.status_code in (204, 304):
            return response
        response.headers["X-Frame-Options"] = "SAMEORIGIN"
        if not ours(request.path) or response.is_streamed and not response.direct_passthrough:
            response.headers.setdefault("Content-Security-Policy", f"frame-ancestors {frame_ancestors}")
            return response
        response.direct_passthrough = False  # a page sent from a file: read it to hash its inline scripts
        response.headers["Content-Security-Policy"] = strict_policy(script_hashes(response.get_data()), frame_ancestors)
        return response
