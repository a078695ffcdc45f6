"""``nodefarm submit``: post an API-format workflow to a nodefarm (or ComfyUI) server and follow it.

Progress and errors go to stderr; stdout carries only the results (the prompt id, or with ``--wait``
one absolute path per saved file), so the command composes in scripts. Progress is a bar per running
node when stderr is a terminal (:mod:`api.cli.progress`), plain lines when it is not.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import requests
import websocket

from api.cli.progress import NodeBars

DEFAULT_SERVER = "http://127.0.0.1:8188"
TRACEBACK_TAIL = 8


class SubmitError(Exception):
    """A failure to report to the user as one message (exit code 1)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="API-format prompt JSON (bare prompt or a /prompt body)")
    parser.add_argument("--server", default=DEFAULT_SERVER, help=f"server URL (default {DEFAULT_SERVER})")
    parser.add_argument("--wait", action="store_true", help="follow the run live and print the saved files")
    parser.add_argument("--client-id", help="client id for the run's events (default: a fresh uuid)")
    parser.add_argument("--timeout", type=float, default=600.0, help="give up after this many seconds (default 600)")
    parser.add_argument("--token", default=os.environ.get("NODEFARM_API_TOKEN", ""),
                        help="API token of a farm started with --auth-token-file (default NODEFARM_API_TOKEN)")


def load_body(path: str, client_id: str) -> dict[str, Any]:
    """Read FILE as a ``/prompt`` body: either ``{"prompt": {...}, ...}`` or the bare prompt dict."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SubmitError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise SubmitError(f"{path}: expected a JSON object, got {type(data).__name__}")
    if isinstance(data.get("nodes"), list) and "links" in data:
        raise SubmitError(f"{path} is a UI workflow; export it with 'Export (API)' in the ComfyUI menu")
    prompt = data.get("prompt")
    is_body = isinstance(prompt, dict) and "class_type" not in prompt
    body = dict(data) if is_body else {"prompt": data}
    body["client_id"] = client_id
    return body


def _node_label(node_id: str, class_type: str | None) -> str:
    return f"node {node_id} ({class_type})" if class_type else f"node {node_id}"


def format_prompt_error(body: Any) -> str:
    """A readable report of a 400 answer of ``POST /prompt`` (``{"error": ..., "node_errors": ...}``)."""
    if not isinstance(body, dict):
        return f"error: {body}"
    error = body.get("error")
    lines: list[str] = []
    if isinstance(error, dict):
        kind = f" ({error['type']})" if error.get("type") else ""
        lines.append(f"error: {error.get('message') or 'prompt rejected'}{kind}")
        if error.get("details"):
            lines.extend(f"  {line}" for line in str(error["details"]).splitlines())
    elif error:
        lines.append(f"error: {error}")
    node_errors = body.get("node_errors") or {}
    if isinstance(node_errors, dict):
        for node_id, info in node_errors.items():
            info = info if isinstance(info, dict) else {}
            lines.append(f"{_node_label(str(node_id), info.get('class_type'))}:")
            for err in info.get("errors") or []:
                message = err.get("message", "") if isinstance(err, dict) else str(err)
                details = err.get("details", "") if isinstance(err, dict) else ""
                lines.append(f"  - {message}: {details}" if details else f"  - {message}")
            if info.get("dependent_outputs"):
                lines.append(f"    (blocks output nodes {', '.join(map(str, info['dependent_outputs']))})")
    return "\n".join(lines) or "error: prompt rejected"


def format_execution_error(kind: str, data: dict[str, Any]) -> str:
    """A readable report of an ``execution_error`` / ``execution_interrupted`` message."""
    label = _node_label(str(data.get("node_id")), data.get("node_type"))
    if kind == "execution_interrupted":
        return f"interrupted at {label}"
    lines = [f"error in {label}: {data.get('exception_type', 'Exception')}: {str(data.get('exception_message', '')).strip()}"]
    traceback = [line for chunk in data.get("traceback") or [] for line in str(chunk).rstrip("\n").splitlines()]
    if traceback:
        lines.append("traceback (last lines):")
        lines.extend(f"  {line}" for line in traceback[-TRACEBACK_TAIL:])
    return "\n".join(lines)


def ws_url(server: str, client_id: str) -> str:
    parts = urlsplit(server)
    scheme = "wss" if parts.scheme == "https" else "ws"
    path = parts.path.rstrip("/") + "/ws"
    return urlunsplit((scheme, parts.netloc, path, urlencode({"clientId": client_id}), ""))


def _api(server: str, path: str) -> str:
    return server.rstrip("/") + path


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Follower:
    """Reads one run's WebSocket messages until ``executing {node: null}`` for its prompt id."""

    def __init__(self, conn: Any, prompt: dict[str, Any], deadline: float) -> None:
        self.conn = conn
        self.prompt = prompt
        self.deadline = deadline
        self.prompt_id: str | None = None
        self.failure: str | None = None
        self.last_progress = 0.0
        self.bars: NodeBars | None = None  # a terminal: a progress bar per node instead of plain lines

    def messages(self) -> Iterator[dict[str, Any]]:
        while True:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            self.conn.settimeout(left)
            try:
                frame = self.conn.recv()
            except websocket.WebSocketTimeoutException as exc:
                raise TimeoutError from exc
            if not isinstance(frame, str) or not frame:
                continue  # binary preview frames
            try:
                message = json.loads(frame)
            except ValueError:
                continue
            if isinstance(message, dict) and isinstance(message.get("data"), dict):
                yield message

    def follow(self, prompt_id: str) -> None:
        self.prompt_id = prompt_id
        for message in self.messages():
            kind, data = message["type"], message["data"]
            if data.get("prompt_id") != prompt_id:
                continue
            if kind == "executing" and data.get("node") is None:
                return
            self.show(kind, data)

    def class_of(self, node: Any, display: Any = None) -> str:
        for key in (node, display):
            entry = self.prompt.get(str(key)) if key is not None else None
            if isinstance(entry, dict) and entry.get("class_type"):
                return str(entry["class_type"])
        return "?"

    def show(self, kind: str, data: dict[str, Any]) -> None:
        if self.bars is not None and self.bars.update(kind, data):
            return
        node = data.get("node")
        if kind == "execution_start":
            _progress(f"execution_start {self.prompt_id}")
        elif kind == "execution_cached":
            _progress(f"execution_cached {len(data.get('nodes') or [])} nodes")
        elif kind == "executing":
            _progress(f"executing {node} ({self.class_of(node, data.get('display_node'))})")
        elif kind == "progress":
            now = time.monotonic()
            if data.get("value") == data.get("max") or now - self.last_progress >= 0.5:
                self.last_progress = now
                _progress(f"progress {node}: {data.get('value')}/{data.get('max')}")
        elif kind == "executed":
            output = data.get("output") or {}
            files = sum(len(v) for v in output.values() if isinstance(v, list)) if isinstance(output, dict) else 0
            _progress(f"executed {node} ({self.class_of(node, data.get('display_node'))}): {files} outputs")
        elif kind in ("execution_error", "execution_interrupted"):
            if kind == "execution_error" and data.get("exception_type") == "ExecutionBlocked":
                _progress(f"blocked: {data.get('exception_message')}")
                return
            self.failure = format_execution_error(kind, data)  # reported once the run has ended
        elif kind == "execution_success":
            _progress("execution_success")


def output_files(entry: dict[str, Any], dirs: dict[str, Any] | None, server: str) -> list[str]:
    """Every saved file of a history entry: its absolute path on the server, or its /view URL."""
    found: list[str] = []
    for output in (entry.get("outputs") or {}).values():
        for items in (output or {}).values():
            for item in items if isinstance(items, list) else []:
                if not isinstance(item, dict) or "filename" not in item:
                    continue
                kind = item.get("type") or "output"
                if kind not in ("output", "temp"):
                    continue
                subfolder, filename = str(item.get("subfolder") or ""), str(item["filename"])
                root = (dirs or {}).get(f"{kind}_dir")
                if root:
                    found.append(str(PurePosixPath(root, subfolder, filename)))
                else:
                    query = urlencode({"filename": filename, "subfolder": subfolder, "type": kind}, quote_via=quote)
                    found.append(_api(server, f"/view?{query}"))
    return found


def auth(token: str) -> dict[str, str]:
    """The header that carries an API token (none without one)."""
    return {"Authorization": f"Bearer {token}"} if token else {}


def history_entry(server: str, prompt_id: str, deadline: float, token: str = "") -> dict[str, Any]:
    """``GET /history/<id>``, polled until the entry exists (it is written before the end message)."""
    while True:
        reply = requests.get(_api(server, f"/history/{quote(prompt_id)}"), timeout=30, headers=auth(token))
        reply.raise_for_status()
        entry = reply.json().get(prompt_id)
        if isinstance(entry, dict):
            return entry
        if time.monotonic() >= deadline:
            raise TimeoutError
        time.sleep(0.25)


def history_failure(entry: dict[str, Any]) -> str | None:
    status = entry.get("status") or {}
    if status.get("status_str") != "error":
        return None
    for kind, data in status.get("messages") or []:
        if kind in ("execution_error", "execution_interrupted") and isinstance(data, dict):
            return format_execution_error(kind, data)
    return "error: the run failed (no error message in its history)"


def server_dirs(server: str, token: str = "") -> dict[str, Any] | None:
    try:
        reply = requests.get(_api(server, "/nodefarm/info"), timeout=10, headers=auth(token))
        info = reply.json() if reply.ok else None
    except (requests.RequestException, ValueError):
        return None
    return info if isinstance(info, dict) else None


def post_prompt(server: str, body: dict[str, Any], token: str = "") -> str:
    reply = requests.post(_api(server, "/prompt"), json=body, timeout=60, headers=auth(token))
    if reply.status_code == 401:
        raise SubmitError("error: the farm wants an API token: pass --token or set NODEFARM_API_TOKEN")
    try:
        answer = reply.json()
    except ValueError:
        answer = None
    if reply.status_code == 400:
        raise SubmitError(format_prompt_error(answer))
    if not reply.ok or not isinstance(answer, dict) or "prompt_id" not in answer:
        raise SubmitError(f"error: POST /prompt answered {reply.status_code}: {reply.text[:500]}")
    if answer.get("node_errors"):
        _progress("warning: some output nodes failed validation and will not run:")
        _progress(format_prompt_error({"node_errors": answer["node_errors"]}))
    return str(answer["prompt_id"])


def submit_and_wait(server: str, body: dict[str, Any], timeout: float, token: str = "") -> list[str]:
    deadline = time.monotonic() + timeout
    conn = websocket.create_connection(ws_url(server, body["client_id"]), timeout=min(timeout, 30),
                                       header=[f"{k}: {v}" for k, v in auth(token).items()])
    try:
        prompt_id = post_prompt(server, body, token)
        _progress(f"prompt_id {prompt_id}")
        follower = Follower(conn, body["prompt"], deadline)
        if sys.stderr.isatty():
            follower.bars = NodeBars(sys.stderr, follower.class_of)
        try:
            follower.follow(prompt_id)
        except TimeoutError:
            raise
        except (websocket.WebSocketException, OSError) as exc:  # socket lost: the history still tells
            _progress(f"websocket closed ({exc or type(exc).__name__}); polling /history")
        finally:
            if follower.bars is not None:
                follower.bars.close()
    finally:
        conn.close()
    entry = history_entry(server, prompt_id, deadline, token)
    failure = follower.failure or history_failure(entry)
    if failure:
        raise SubmitError(failure)
    files = output_files(entry, server_dirs(server, token), server)
    if not files:
        _progress("finished; the run saved no files")
    return files


def run(ns: argparse.Namespace) -> int:
    client_id = ns.client_id or uuid.uuid4().hex
    try:
        body = load_body(ns.file, client_id)
        if not ns.wait:
            print(post_prompt(ns.server, body, ns.token))
            return 0
        for path in submit_and_wait(ns.server, body, ns.timeout, ns.token):
            print(path)
        return 0
    except SubmitError as exc:
        print(exc, file=sys.stderr)
    except TimeoutError:
        print(f"error: timed out after {ns.timeout:g} s", file=sys.stderr)
    except (requests.RequestException, websocket.WebSocketException, OSError) as exc:
        print(f"error: cannot talk to {ns.server}: {exc}", file=sys.stderr)
    return 1
