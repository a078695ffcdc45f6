"""``nodefarm status``: the farm's workers, queue and recent runs in a terminal (the dashboard's data).

Everything comes from the HTTP API a browser uses, so it works from any host that can reach the
farm, with a token where the farm wants one: ``/system_stats`` (workers and their devices, what each
executes, heartbeat age, blocklist), ``/queue`` (the admission order, and each run's prompt for the
class of a busy node), ``/api/jobs`` (submitter and age of queued runs; the recent finished runs) and
``/history/<id>`` of those few recent runs (which nodes were cached). Nodes run by a finished run are
those its outputs needed less the cached ones (a failed run: the ``executed`` list of its error).

``--watch`` redraws every ``--interval`` seconds in place (ANSI home + clear) until Ctrl-C; when
stdout is not a terminal, each snapshot is printed plainly, one after another, without escapes.
Rendering (:func:`render`) is pure: a :class:`Snapshot` of the JSON answers in, lines out.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any
from urllib.parse import quote

import requests

from api.cli.submit import DEFAULT_SERVER, auth

CLEAR = "\033[H\033[2J"  # cursor home, clear screen
RECENT_RUNS = 5
FINISHED = "completed,failed,cancelled"
ACTIVE = "in_progress,pending"


class StatusError(Exception):
    """The farm could not be asked (unreachable, wants a token); one line for the user."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", default=DEFAULT_SERVER, help=f"server URL (default {DEFAULT_SERVER})")
    parser.add_argument("--token", default=os.environ.get("NODEFARM_API_TOKEN", ""),
                        help="API token of a farm started with --auth-token-file (default NODEFARM_API_TOKEN)")
    parser.add_argument("--watch", action="store_true", help="refresh in place until Ctrl-C")
    parser.add_argument("--interval", type=float, default=1.0, metavar="S", help="--watch refresh period (default 1 s)")
    parser.add_argument("--runs", type=int, default=RECENT_RUNS, metavar="N",
                        help=f"recent finished runs to show (default {RECENT_RUNS})")


@dataclass
class Snapshot:
    """The API's answers at one moment (what :func:`render` draws)."""

    stats: dict[str, Any]
    queue: dict[str, Any]
    active: list[dict[str, Any]] = field(default_factory=list)  # /api/jobs in_progress + pending
    recent: list[dict[str, Any]] = field(default_factory=list)  # /api/jobs finished, newest first
    history: dict[str, dict[str, Any]] = field(default_factory=dict)  # /history/<id> of the recent ones
    taken: float = field(default_factory=time.time)


# ---- reading the farm ------------------------------------------------------------------------


def _get(server: str, path: str, token: str, **params: Any) -> Any:
    try:
        reply = requests.get(server.rstrip("/") + path, params=params or None, headers=auth(token), timeout=10)
    except requests.RequestException as exc:
        raise StatusError(f"cannot reach {server}: {exc}") from exc
    if reply.status_code == 401:
        raise StatusError("the farm wants an API token: pass --token or set NODEFARM_API_TOKEN")
    if not reply.ok:
        raise StatusError(f"GET {path} answered {reply.status_code}: {reply.text[:200]}")
    try:
        return reply.json()
    except ValueError as exc:
        raise StatusError(f"GET {path} did not answer JSON") from exc


def fetch(server: str, token: str = "", runs: int = RECENT_RUNS) -> Snapshot:
    stats = _get(server, "/system_stats", token)
    queue = _get(server, "/queue", token)
    active = _get(server, "/api/jobs", token, status=ACTIVE).get("jobs") or []
    recent = (_get(server, "/api/jobs", token, status=FINISHED, limit=runs).get("jobs") or []) if runs > 0 else []
    history: dict[str, dict[str, Any]] = {}
    for job in recent:
        entry = _get(server, f"/history/{quote(str(job.get('id')), safe='')}", token).get(str(job.get("id")))
        if isinstance(entry, dict):
            history[str(job["id"])] = entry
    return Snapshot(stats=stats, queue=queue, active=active, recent=recent, history=history)


# ---- drawing ---------------------------------------------------------------------------------


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def short(run_id: Any) -> str:
    return str(run_id)[:8]


def age(seconds: float | None) -> str:
    """``4s``, ``3m12s``, ``2h05m``, ``3d04h``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def duration(ms: float | None) -> str:
    if ms is None:
        return "-"
    return f"{ms / 1000:.1f}s" if ms < 60_000 else age(ms / 1000)


def gib(n: Any) -> str:
    return f"{float(n) / 2**30:.1f}" if isinstance(n, (int, float)) else "?"


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    rows = [list(r) for r in rows]
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    return ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in [list(header), *rows]]


def queue_items(queue: dict[str, Any]) -> tuple[list[list[Any]], list[list[Any]]]:
    """(running, pending) ``/queue`` items, each ``[number, prompt_id, prompt, extra_data, outputs, ...]``."""
    def items(key: str) -> list[list[Any]]:
        return [i for i in queue.get(key) or [] if isinstance(i, list) and len(i) >= 3]
    return items("queue_running"), items("queue_pending")


def class_of(prompt: Any, node: Any) -> str:
    entry = prompt.get(str(node)) if isinstance(prompt, dict) else None
    return str(entry.get("class_type")) if isinstance(entry, dict) and entry.get("class_type") else "?"


def workers_section(snap: Snapshot) -> list[str]:
    running, _pending = queue_items(snap.queue)
    prompts = {str(i[1]): i[2] for i in running}
    rows: list[list[str]] = []
    devices = [d for d in snap.stats.get("devices") or [] if isinstance(d, dict)]
    for d in sorted(devices, key=lambda d: (str(d.get("worker")), str(d.get("name")))):
        worker = str(d.get("worker") or "?")
        device = str(d.get("name") or "?").removesuffix(f" ({worker})")
        total, free = d.get("vram_total"), d.get("vram_free")
        used = total - free if isinstance(total, (int, float)) and isinstance(free, (int, float)) else None
        busy = ", ".join(f"{b.get('node')} {class_of(prompts.get(str(b.get('prompt_id'))), b.get('node'))} "
                         f"(run {short(b.get('prompt_id'))})" for b in d.get("running") or [] if isinstance(b, dict))
        blocked = d.get("blocklisted")
        if isinstance(blocked, dict):
            until = blocked.get("until")
            left = f" for {age(until - snap.taken)}" if isinstance(until, (int, float)) else ""
            blocked_text = f"yes{left}: {blocked.get('reason') or '?'}"
        else:
            blocked_text = "-"
        beat = d.get("heartbeat_age")
        restarts = d.get("restarts") or 0
        rows.append([worker, str(d.get("host") or "-"), device, f"{gib(used)}/{gib(total)} GiB", busy or "idle",
                     f"{beat:.1f}s" if isinstance(beat, (int, float)) else "-",
                     f"{restarts}" if restarts else "-", blocked_text])
    title = f"WORKERS ({len({r[0] for r in rows})})"
    if not rows:
        return [title, "  no live worker"]
    return [title, *("  " + line for line in table(
        ["NAME", "HOST", "DEVICE", "VRAM used/total", "BUSY", "BEAT", "RESTARTS", "BLOCKLISTED"], rows))]


def queue_section(snap: Snapshot) -> list[str]:
    running, pending = queue_items(snap.queue)
    jobs = {str(j.get("id")): j for j in snap.active if isinstance(j, dict)}
    rows: list[list[str]] = []
    for position, item in [("-", i) for i in running] + [(str(n), i) for n, i in enumerate(pending, 1)]:
        pid = str(item[1])
        job = jobs.get(pid, {})
        created = job.get("create_time")
        started = job.get("execution_start_time")
        prompt = item[2] if isinstance(item[2], dict) else {}
        rows.append([position, pid, "running" if position == "-" else "pending", str(job.get("submitter") or "-"),
                     age(snap.taken - created / 1000) if isinstance(created, (int, float)) else "-",
                     age(snap.taken - started / 1000) if isinstance(started, (int, float)) else "-",
                     str(len(prompt))])
    title = f"QUEUE ({len(running)} running, {len(pending)} pending)"
    if not rows:
        return [title, "  empty"]
    return [title, *("  " + line for line in table(["POS", "RUN", "STATUS", "SUBMITTER", "AGE", "RUNNING", "NODES"], rows))]


def node_counts(entry: dict[str, Any] | None) -> tuple[int | None, int | None]:
    """(nodes run, nodes cached) of a finished run's history entry; None where it does not say."""
    if not isinstance(entry, dict):
        return None, None
    item = entry.get("prompt")
    prompt = item[2] if isinstance(item, list) and len(item) > 2 and isinstance(item[2], dict) else {}
    outputs = item[4] if isinstance(item, list) and len(item) > 4 and isinstance(item[4], list) else list(prompt)
    status = _dict(entry.get("status"))
    cached: set[str] = set()
    executed: list[str] | None = None
    for message in status.get("messages") or []:
        if not (isinstance(message, list) and len(message) == 2 and isinstance(message[1], dict)):
            continue
        if message[0] == "execution_cached":
            cached |= {str(n) for n in message[1].get("nodes") or []}
        elif message[0] in ("execution_error", "execution_interrupted") and isinstance(message[1].get("executed"), list):
            executed = [str(n) for n in message[1]["executed"]]
    if executed is not None:
        return len(set(executed) - cached), len(cached)
    if status.get("status_str") != "success":
        return None, len(cached)
    return len(needed(prompt, [str(o) for o in outputs]) - cached), len(cached)


def needed(prompt: dict[str, Any], outputs: list[str]) -> set[str]:
    """The nodes ``outputs`` depend on, themselves included (links are ``[node id, slot]``)."""
    seen: set[str] = set()
    todo = [o for o in outputs if o in prompt]
    while todo:
        nid = todo.pop()
        if nid in seen:
            continue
        seen.add(nid)
        inputs = prompt[nid].get("inputs") if isinstance(prompt.get(nid), dict) else None
        for value in (inputs or {}).values():
            if isinstance(value, list) and len(value) == 2 and str(value[0]) in prompt and isinstance(value[1], int):
                todo.append(str(value[0]))
    return seen


def recent_section(snap: Snapshot) -> list[str]:
    rows: list[list[str]] = []
    for job in snap.recent:
        pid = str(job.get("id"))
        start, end = job.get("execution_start_time"), job.get("execution_end_time")
        ran, cached = node_counts(snap.history.get(pid))
        rows.append([pid, str(job.get("status") or "?"), str(job.get("submitter") or "-"),
                     age(snap.taken - end / 1000) + " ago" if isinstance(end, (int, float)) else "-",
                     duration(end - start) if isinstance(start, (int, float)) and isinstance(end, (int, float)) else "-",
                     f"{'?' if ran is None else ran}/{'?' if cached is None else cached}"])
    title = f"RECENT RUNS ({len(rows)})"
    if not rows:
        return [title, "  none yet"]
    return [title, *("  " + line for line in table(["RUN", "STATUS", "SUBMITTER", "FINISHED", "DURATION", "NODES run/cached"], rows))]


def render(snap: Snapshot, server: str = "") -> list[str]:
    """The whole view, one string per line."""
    farm = _dict(_dict(snap.stats.get("system")).get("nodefarm"))
    when = time.strftime("%H:%M:%S", time.localtime(snap.taken))
    head = f"nodefarm {server} (API host {farm.get('host', '?')}) at {when}".replace("  ", " ")
    return [head, "", *workers_section(snap), "", *queue_section(snap), "", *recent_section(snap)]


# ---- the command -----------------------------------------------------------------------------


def draw(lines: list[str], out: IO[str], tty: bool) -> None:
    if tty:
        width = shutil.get_terminal_size((120, 40)).columns
        out.write(CLEAR + "\n".join(line[:width] for line in lines) + "\n")
    else:
        out.write("\n".join(lines) + "\n")
    out.flush()


def watch(ns: argparse.Namespace, out: IO[str], tty: bool, take: Callable[[], Snapshot],
          sleep: Callable[[float], None] = time.sleep) -> int:
    """Redraw until Ctrl-C (exit 0); an unreachable farm is shown and retried, not fatal."""
    first = True
    try:
        while True:
            try:
                lines = render(take(), ns.server)
            except StatusError as exc:
                lines = [f"nodefarm {ns.server}: {exc}", "(retrying)"]
            if not tty and not first:
                out.write("\n")
            draw(lines, out, tty)
            first = False
            sleep(max(0.1, ns.interval))
    except KeyboardInterrupt:
        if tty:
            out.write("\n")
            out.flush()
        return 0


def run(ns: argparse.Namespace, out: IO[str] | None = None) -> int:
    out = out or sys.stdout
    tty = out.isatty()

    def take() -> Snapshot:
        return fetch(ns.server, ns.token, ns.runs)

    if ns.watch:
        return watch(ns, out, tty, take)
    try:
        snap = take()
    except StatusError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    draw(render(snap, ns.server), out, tty=False)
    return 0
