"""The farm dashboard's server side: what ``/nodefarm/`` (``frontend/dashboard/``) shows, live over Socket.IO.

People who run a farm watch it: which worker is busy with what, what waits, what failed and why,
what the cache saves. The page gets all of it over the Socket.IO server the API already runs
(:mod:`api.live`), in its own namespace :data:`NAMESPACE`, so its farm-wide events never mix with
the per-client events of ComfyUI clients on ``/``:

* on connect, a ``snapshot``: workers (devices, memory, resident models, what each executes and its
  progress, heartbeat age, state), hosts, the queue, recent runs and cache figures (:func:`snapshot`);
* then ``workers``, ``queue``, ``runs`` and ``cache`` whenever they change (:class:`Board` looks every
  :data:`PUSH_S` while a dashboard is connected, and at once after a run event), and every run event
  of the farm as ``event`` ``{"id", "pid", "type", "data"}`` (the ``nf:events`` entry id: a page that
  reconnects replays a run from there with ``GET /nodefarm/runs/<id>/events?after=``). The relay
  (:func:`api.live.start_relay`) hands each entry to :meth:`Board.relay`; a node that starts carries
  the worker that took it.

A run's page starts from ``GET /nodefarm/dashboard/runs/<id>`` (:func:`run_detail`): its graph, each
node's state, worker and times (from the run's event stream, whose entry ids are milliseconds), the
error with its traceback, the images, and the latest preview of each node (sent before the page opened:
``GET /nodefarm/dashboard/preview?run=&event=`` serves it from the stream). With tokens the namespace needs one, as every route does.
Every action of the page (cancel, move to front, priority, retry, submit) uses the HTTP API scripts use.
"""

from __future__ import annotations

import json
import logging
import struct
import threading
import time
import weakref
from pathlib import Path
from typing import Any

import redis
from flask import Blueprint, Flask, Response, request
from flask_socketio import SocketIO

from api import auth as auth_rules
from api.auth import SUBMITTER_KEY
from api.routing import farm, json_response
from api.schemas import PreviewQuery, PromptIdPath
from api.validate import takes
from nodes.core.validation import validate_prompt
from nodes.settings import Settings
from worker import blocklist, events, history, keys, prompt_queue

log = logging.getLogger("nodefarm.api.dashboard")

NAMESPACE = "/dashboard"
PUSH_S = 0.5  # how often the board looks for changed workers, queue, runs and cache while a page is open
RECENT_RUNS = 40  # runs in the snapshot's list
QUEUE_SHOWN = 100  # pending runs listed (the next to start; a farm may hold 100,000: the count says so)
CACHE_WINDOW = 200  # finished runs the cache figures are computed over
RUNS_REFRESH_S = 5.0  # the runs and cache figures are read again when a run ends, else this often (store memory)
EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"
TERMINAL = ("execution_success", "execution_error", "execution_interrupted")

bp = Blueprint("dashboard", __name__)
_boards: weakref.WeakKeyDictionary[SocketIO, Board] = weakref.WeakKeyDictionary()


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _ms(entry_id: str) -> int:
    return int(entry_id.partition("-")[0] or 0)


# ---- what the page shows ------------------------------------------------------------------------


def workers(r: redis.Redis, results: redis.Redis, heartbeat_s: float, progress: dict[str, dict[str, list]] | None = None) -> list[dict]:
    """One entry per worker that beats (or beat lately): devices, memory, models, what it runs, state."""
    now = time.time()
    beats = sorted((_s(n), float(t)) for n, t in r.zrange(keys.WORKERS, 0, -1, withscores=True))
    if not beats:
        return []
    pipe = r.pipeline(transaction=False)
    for name, _beat in beats:
        pipe.get(keys.worker_info(name))
        pipe.hgetall(keys.worker_running(name))
    got = pipe.execute()
    blocked = blocklist.entries(r, now)
    out: list[dict] = []
    for i, (name, beat) in enumerate(beats):
        raw, running_raw = got[2 * i], got[2 * i + 1]
        info = json.loads(raw) if raw else {}
        running: list[dict] = []
        for field_, payload in sorted(running_raw.items()):
            try:
                pid, nid = json.loads(payload)[:2]
            except (ValueError, TypeError):
                pid, _, nid = _s(field_).partition(" ")
            value, maximum = (progress or {}).get(str(pid), {}).get(str(nid), [0, 1])
            running.append({"prompt_id": str(pid), "node": str(nid), "value": value, "max": maximum})
        entry = blocked.get(name)
        age = max(0.0, now - beat)
        state = ("blocklisted" if entry is not None else "lost" if age > 3 * heartbeat_s
                 else "busy" if running else "idle")
        out.append({
            "name": name, "host": info.get("host", "?"), "pid": info.get("pid"), "beat_age": round(age, 1),
            "devices": info.get("devices", []), "models": info.get("models", []), "restarts": info.get("restarts", 0),
            "running": running, "state": state, "blocklisted": entry.to_json() if entry is not None else None,
        })
    return out


def hosts(found: list[dict]) -> list[dict]:
    """Totals per host: workers, busy ones, device memory (each GPU once, the host's RAM once)."""
    by: dict[str, dict] = {}
    seen: set[tuple[str, str]] = set()
    for w in found:
        h = by.setdefault(w["host"], {"host": w["host"], "workers": 0, "busy": 0, "memory_total": 0, "memory_free": 0})
        h["workers"] += 1
        h["busy"] += w["state"] == "busy"
        for d in w["devices"]:
            device = (w["host"], "cpu" if d.get("type") == "cpu" else f"{d.get('name')}:{d.get('index')}")
            if device in seen:
                continue
            seen.add(device)
            h["memory_total"] += int(d.get("vram_total") or 0)
            h["memory_free"] += int(d.get("vram_free") or 0)
    return sorted(by.values(), key=lambda h: h["host"])


def _job(item: Any, position: int) -> dict:
    extra = item.extra_data if isinstance(item.extra_data, dict) else {}
    create = extra.get("create_time")
    return {
        "id": item.prompt_id, "number": item.number, "position": position,
        "priority": extra.get("priority", 0) if isinstance(extra.get("priority", 0), (int, float)) else 0,
        "submitter": str(extra.get(SUBMITTER_KEY) or item.client_id or ""),
        "create_time": create if isinstance(create, (int, float)) else None,
        "nodes": len(item.prompt) if isinstance(item.prompt, dict) else 0,
    }


def queue(r: redis.Redis, shown: int | None = QUEUE_SHOWN) -> dict:
    """Running runs, the first ``shown`` pending ones in admission order, and how many are pending."""
    running, pending = prompt_queue.queue_items(r, limit=shown)
    return {"running": [_job(item, 0) for item in running],
            "pending": [_job(item, i + 1) for i, item in enumerate(pending)],
            "pending_total": int(r.zcard(keys.QUEUE))}


def _messages(entry: dict) -> dict[str, dict]:
    found: dict[str, dict] = {}
    for m in (entry.get("status") or {}).get("messages") or []:
        if isinstance(m, (list, tuple)) and len(m) >= 2 and isinstance(m[1], dict):
            found.setdefault(str(m[0]), m[1])
    return found


def run_summary(pid: str, entry: dict) -> dict:
    """A finished run as the runs list shows it."""
    number, _pid, prompt, extra, _outputs = (list(entry.get("prompt") or []) + [None] * 5)[:5]
    msgs = _messages(entry)
    status = entry.get("status") or {}
    start = (msgs.get("execution_start") or {}).get("timestamp")
    end = next((msgs[k].get("timestamp") for k in TERMINAL if k in msgs), None)
    cached = (msgs.get("execution_cached") or {}).get("nodes") or []
    total = len(prompt) if isinstance(prompt, dict) else 0
    state = ("failed" if "execution_error" in msgs else "cancelled" if "execution_interrupted" in msgs
             else "done" if status.get("completed") or status.get("status_str") == "success" else "failed")
    image = None
    for ui in (entry.get("outputs") or {}).values():
        for item in (ui or {}).get("images") or [] if isinstance(ui, dict) else []:
            if isinstance(item, dict) and item.get("filename"):
                image = {k: item.get(k, "") for k in ("filename", "subfolder", "type")}
                break
        if image:
            break
    extra = extra if isinstance(extra, dict) else {}
    error = msgs.get("execution_error")
    return {
        "id": pid, "number": number, "status": state, "start": start, "end": end,
        "duration_ms": (end - start) if isinstance(start, (int, float)) and isinstance(end, (int, float)) else None,
        "nodes": total, "cached": len(cached), "executed": max(0, total - len(cached)) if state == "done" else None,
        "submitter": str(extra.get(SUBMITTER_KEY) or extra.get("client_id") or ""),
        "image": image, "error": {"node": error.get("node_id"), "type": error.get("node_type"),
                                  "message": error.get("exception_message")} if error else None,
    }


def digest(pid: str, entry: dict) -> tuple[dict, list[str]]:
    """What the runs list and the cache figures need of one history entry: its summary and the classes
    of its cached nodes (an entry never changes once written: a board keeps these, not the entries)."""
    prompt = (list(entry.get("prompt") or []) + [None] * 3)[2]
    reused = []
    for nid in (_messages(entry).get("execution_cached") or {}).get("nodes") or []:
        cls = prompt.get(nid, {}).get("class_type") if isinstance(prompt, dict) and isinstance(prompt.get(nid), dict) else None
        if cls:
            reused.append(str(cls))
    return run_summary(pid, entry), reused


def runs_and_cache(r: redis.Redis, results: redis.Redis,
                   known: dict[str, tuple[dict, list[str]]] | None = None) -> tuple[list[dict], dict]:
    """The recent finished runs (newest first) and the cache figures over the last :data:`CACHE_WINDOW`.
    ``known``: digests of entries read before (kept up to date here): only new entries are read."""
    known = {} if known is None else known
    ids = [_s(p) for p in r.zrange(keys.HISTORY, -CACHE_WINDOW, -1)]
    fresh = history.entries(r, [p for p in ids if p not in known])
    known.update({pid: digest(pid, e) for pid, e in fresh.items()})
    for pid in set(known) - set(ids):
        del known[pid]
    digests = [known[p] for p in ids if p in known]
    summaries = [d[0] for d in digests]
    nodes = sum(s["nodes"] for s in summaries if s["status"] == "done")
    cached = sum(s["cached"] for s in summaries if s["status"] == "done")
    reused: dict[str, int] = {}
    for _summary, classes in digests:
        for cls in classes:
            reused[cls] = reused.get(cls, 0) + 1
    try:
        info = results.info("memory")
        entries_n = int(results.dbsize())
        memory = {"used": int(info.get("used_memory", 0)), "max": int(info.get("maxmemory", 0)), "entries": entries_n}
    except redis.RedisError:
        memory = {"used": 0, "max": 0, "entries": 0}
    cache = {
        "runs": sum(1 for s in summaries if s["status"] == "done"), "nodes": nodes, "hits": cached,
        "hit_rate": (cached / nodes) if nodes else None, "store": memory,
        "most_reused": [{"class_type": c, "hits": n} for c, n in sorted(reused.items(), key=lambda kv: -kv[1])[:10]],
    }
    return list(reversed(summaries))[:RECENT_RUNS], cache


def snapshot(r: redis.Redis, results: redis.Redis, heartbeat_s: float, progress: dict | None = None,
             runs_cache: tuple[list[dict], dict] | None = None) -> dict:
    found = workers(r, results, heartbeat_s, progress)
    runs, cache = runs_cache if runs_cache is not None else runs_and_cache(r, results)
    return {"time": time.time(), "heartbeat_s": heartbeat_s, "workers": found, "hosts": hosts(found),
            "queue": queue(r), "runs": runs, "cache": cache}


def run_detail(r: redis.Redis, pid: str) -> dict | None:
    """A run's graph with each node's state, worker and times, its error, images and events so far, and
    its extra data as ``/queue`` shows it (never the sensitive part): what a retry sends again."""
    item = prompt_queue.load_item(r, pid)
    entry = history.get_one(r, pid).get(pid)
    if item is not None:
        prompt, number, extra = item.prompt, item.number, item.extra_data
    elif entry:
        number, _p, prompt, extra = (list(entry.get("prompt") or []) + [None] * 4)[:4]
    else:
        return None
    nodes: dict[str, dict] = {nid: {"state": "waiting", "worker": None, "start": None, "end": None, "value": 0, "max": 1}
                              for nid in (prompt or {})}
    made = {_s(k): _s(v) for k, v in r.hgetall(keys.run_part(pid, "made")).items()}
    last, status, error, outputs, start, end = "0-0", "pending", None, {}, None, None
    previews: dict[str, str] = {}  # node (or "preview") -> the event id of its latest preview
    for entry_id, fields in r.xrange(keys.run_events(pid), min="-"):
        last = _s(entry_id)
        ev = events.decode_entry(fields)
        if isinstance(ev["type"], int):
            shown = _preview(ev["type"], ev["data"])
            if shown is not None:
                previews[str(shown["node"] or "preview")] = last
            continue
        kind, data = ev["type"], ev["data"] if isinstance(ev["data"], dict) else {}
        at = _ms(last)
        if kind == "execution_start":
            status, start = "running", at
        elif kind == "execution_cached":
            for nid in data.get("nodes") or []:
                nodes.setdefault(str(nid), {"worker": None, "start": None, "end": None, "value": 1, "max": 1})["state"] = "cached"
        elif kind == "progress_state":
            for nid, e in (data.get("nodes") or {}).items():
                n = nodes.setdefault(str(nid), {"state": "waiting", "worker": None, "start": None, "end": None})
                n["value"], n["max"] = e.get("value", 0), e.get("max", 1)
                if e.get("state") == "running":
                    n["state"], n["start"] = "running", n["start"] or at
                elif e.get("state") == "finished" and n["state"] != "cached":
                    n["state"], n["end"] = "done", at
        elif kind == "executed":
            outputs[str(data.get("node"))] = data.get("output")
        elif kind == "execution_error":
            status, error, end = "failed", data, at
            nid = str(data.get("node_id"))
            if nid in nodes:
                nodes[nid]["state"], nodes[nid]["end"] = "failed", at
        elif kind == "execution_interrupted":
            status, end = "cancelled", at
        elif kind == "execution_success":
            status, end = "done", at
    if status in ("failed", "cancelled"):
        for n in nodes.values():
            if n["state"] in ("waiting", "running"):
                n["state"] = "blocked"
    for nid, worker in made.items():
        if nid in nodes and worker:
            nodes[nid]["worker"] = worker
    busy = [nid for nid, n in nodes.items() if n["state"] == "running" and not n["worker"]]
    if busy:  # a page opened while they run: the worker that took each (a finished node's is in "made")
        for nid, worker in running_on(r, [_s(n) for n in r.zrange(keys.WORKERS, 0, -1)], pid, busy).items():
            nodes[nid]["worker"] = worker
    failed = error.get("node_id") if isinstance(error, dict) else None
    if failed is not None and str(failed) in nodes and not nodes[str(failed)]["worker"]:
        nodes[str(failed)]["worker"] = _failed_on(r, pid, str(failed))
    if item is None and entry and status == "pending":  # finished before its events were kept
        status = run_summary(pid, entry)["status"]
    return {"id": pid, "number": number, "status": status, "start": start, "end": end, "prompt": prompt,
            "nodes": nodes, "error": error, "outputs": outputs, "previews": previews, "last_event": last,
            "extra_data": extra if isinstance(extra, dict) else {}}


def running_on(r: redis.Redis, workers: list[str], pid: str, nids: list[str]) -> dict[str, str]:
    """The worker each of a run's nodes runs on now (what each worker registers for rescue), by node."""
    pipe = r.pipeline(transaction=False)
    for name in workers:
        for nid in nids:
            pipe.hexists(keys.worker_running(name), f"{pid} {nid}")
    found = iter(pipe.execute())
    return {nid: name for name in workers for nid in nids if next(found)}


def _failed_on(r: redis.Redis, pid: str, nid: str) -> str | None:
    """The worker where a node failed last: the blocklist's record of recent failures (worker/blocklist.py)."""
    try:
        key = r.hget(keys.run_part(pid, "key"), nid)
        raw = r.hget(keys.FAILED, key) if key else None
        workers = json.loads(raw).get("workers") if raw else None
    except (redis.RedisError, ValueError, AttributeError):
        return None
    if not isinstance(workers, dict) or not workers:
        return None
    return str(max(workers, key=lambda w: float(workers[w]) if isinstance(workers[w], (int, float)) else 0.0))


# ---- HTTP routes (the page's first load; the socket keeps it current) -----------------------------


@bp.route("/nodefarm/dashboard/snapshot", methods=["GET"])
@takes(summary="The dashboard's snapshot: workers, hosts, queue, recent runs and cache figures")
def get_snapshot() -> Response:
    f = farm()
    return json_response(snapshot(f.r, f.store.r, f.settings.heartbeat_s))  # type: ignore[arg-type]


@bp.route("/nodefarm/dashboard/runs/<path:prompt_id>", methods=["GET"])
@takes(path=PromptIdPath, summary="One run for the dashboard: graph, node states, workers, times, error, images")
def get_run(prompt_id: str) -> Response:
    found = run_detail(farm().r, prompt_id)
    if found is None:
        return _not_found("No such run", prompt_id)
    return json_response(found)


def _not_found(message: str, details: str) -> Response:
    return json_response({"error": {"type": "not_found", "message": message, "details": details, "extra_info": {}},
                          "node_errors": {}}, 404)


@bp.route("/nodefarm/dashboard/preview", methods=["GET"])
@takes(query=PreviewQuery, summary="A preview image a run sent (its event id from the run's page): what a page "
                                   "opened later shows")
def get_preview(query: PreviewQuery) -> Response:
    found = farm().r.xrange(keys.run_events(query.run), min=query.event, max=query.event, count=1)
    shown = None
    if found:
        ev = events.decode_entry(found[0][1])
        shown = _preview(ev["type"], ev["data"]) if isinstance(ev["type"], int) else None
    if shown is None:
        return _not_found("No such preview", f"{query.run} {query.event}")
    res = Response(shown["image"], mimetype=shown["mime"])
    res.headers["Cache-Control"] = "private, max-age=86400, immutable"  # an event never changes
    return res


@bp.route("/nodefarm/dashboard/examples", methods=["GET"])
@takes(summary="The example prompts of examples/*.json by file name, each with what stops it on this farm")
def get_examples() -> Response:
    """Each example with what stops it on this farm (its validation error: a class or a model it lacks), if anything."""
    f = farm()
    found: dict[str, Any] = {}
    for path in sorted(EXAMPLES_DIR.glob("*.json")):
        try:
            prompt = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        checked = validate_prompt(prompt, f.registry)
        found[path.name] = {"prompt": prompt, "problem": None if checked.ok else _problem(checked.error or {}, checked.node_errors)}
    return json_response(found)


def _problem(error: dict, node_errors: dict) -> str:
    """A validation failure in a line: the error, else the first node's first error."""
    for nid, found in node_errors.items():
        for e in found.get("errors") or []:
            return f"#{nid} {found.get('class_type', '')}: {e.get('message', '')}: {e.get('details', '')}"
    return ": ".join(x for x in (error.get("message"), error.get("details")) if x)


# ---- live -------------------------------------------------------------------------------------------


class Board:
    """The dashboard namespace of one API process: who is connected, the progress of running nodes,
    and a pusher that sends what changed."""

    def __init__(self, socketio: SocketIO, settings: Settings) -> None:
        self.socketio = socketio
        self.settings = settings
        self.clients = 0
        self.lock = threading.Lock()
        self.progress: dict[str, dict[str, list]] = {}  # pid -> node -> [value, max] of running nodes
        self.wake = threading.Event()
        self.pusher: threading.Thread | None = None
        self._r: redis.Redis | None = None
        self._results: redis.Redis | None = None
        self._workers: list[str] = []  # the worker names, for the worker of a node that starts
        self._workers_at = 0.0
        self._runs: tuple[list[dict], dict] | None = None  # runs and cache figures, read again when the history moves
        self._runs_marker: Any = None
        self._runs_at = 0.0
        self._digests: dict[str, tuple[dict, list[str]]] = {}  # of the history entries in the cache window
        self._runs_lock = threading.Lock()  # the pusher and a connecting page may both look

    @property
    def r(self) -> redis.Redis:
        if self._r is None:
            self._r = redis.Redis.from_url(self.settings.redis_url)
        return self._r

    @property
    def results(self) -> redis.Redis:
        if self._results is None:
            self._results = redis.Redis.from_url(self.settings.result_redis_url or self.settings.redis_url)
        return self._results

    def snapshot(self) -> dict:
        pipe = self.r.pipeline(transaction=False)
        pipe.zcard(keys.HISTORY)
        pipe.zrange(keys.HISTORY, -1, -1)
        marker, now = pipe.execute(), time.time()
        with self._runs_lock:
            if self._runs is None or marker != self._runs_marker or now - self._runs_at > RUNS_REFRESH_S:
                self._runs, self._runs_marker, self._runs_at = runs_and_cache(self.r, self.results, self._digests), marker, now
        return snapshot(self.r, self.results, self.settings.heartbeat_s, self.progress, self._runs)

    def connected(self) -> None:
        with self.lock:
            self.clients += 1
            if self.pusher is None or not self.pusher.is_alive():
                self.pusher = threading.Thread(target=self._push, name="nodefarm-dashboard", daemon=True)
                self.pusher.start()

    def disconnected(self) -> None:
        with self.lock:
            self.clients = max(0, self.clients - 1)

    def _push(self) -> None:
        sent: dict[str, str] = {}
        while True:
            with self.lock:
                if self.clients == 0:
                    self.pusher = None
                    return
            try:
                snap = self.snapshot()
                for part in ("workers", "queue", "runs", "cache"):
                    data = {"hosts": snap["hosts"], "workers": snap["workers"]} if part == "workers" else snap[part]
                    same = data
                    if part == "cache":  # the store's memory moves by bytes all the time: a change is a MiB
                        same = {**data, "store": {**data["store"], "used": data["store"]["used"] >> 20}}
                    elif part == "workers":  # heartbeat ages tick: a change is a state, a task, a second
                        same = [{**w, "beat_age": int(w["beat_age"])} for w in data["workers"]]
                    text = json.dumps(same, sort_keys=True, default=str)
                    if sent.get(part) != text:
                        sent[part] = text
                        self.socketio.emit(part, data, namespace=NAMESPACE)
            except Exception as exc:  # Redis away: try again on the next round
                log.debug("dashboard push: %s", exc)
            self.wake.wait(PUSH_S)
            self.wake.clear()

    def _worker_of(self, pid: str, nid: str) -> str | None:
        now = time.time()
        if now - self._workers_at > 2:
            self._workers = [_s(n) for n in self.r.zrange(keys.WORKERS, 0, -1)]
            self._workers_at = now
        return running_on(self.r, self._workers, pid, [nid]).get(nid)

    def relay(self, entry_id: str, fields: dict) -> None:
        """Send one ``nf:events`` entry to the dashboards (called by the relay, for every entry)."""
        etype, pid = _s(fields.get(b"type", b"")), _s(fields.get(b"pid", b""))
        raw = fields.get(b"data", b"")
        if self.clients == 0 or not pid:
            return
        if etype == "progress_state":
            delta = json.loads(raw)
            running = self.progress.setdefault(pid, {})
            for nid, e in (delta.get("nodes") or {}).items():
                if e.get("state") == "running":
                    running[str(nid)] = [e.get("value", 0), e.get("max", 1)]
                else:
                    running.pop(str(nid), None)
        if etype in TERMINAL or (etype == "executing" and raw.startswith(b'{"node":null')):
            self.progress.pop(pid, None)
            self.wake.set()
        elif etype == "execution_start":
            self.wake.set()
        data: Any
        if etype.isdigit():
            data = _preview(int(etype), bytes(raw))
            if data is None:
                return
            etype = "preview"
        else:
            data = json.loads(raw)
            if etype == "progress_state":
                for nid, e in (data.get("nodes") or {}).items():
                    try:
                        if e.get("state") == "running" and not e.get("value"):
                            e["worker"] = self._worker_of(pid, str(nid))
                        elif e.get("state") == "finished":  # the worker that computed it (a short node ends unseen)
                            made = self.r.hget(keys.run_part(pid, "made"), str(nid))
                            e["worker"] = _s(made) if made else None
                    except redis.RedisError:
                        pass
        self.socketio.emit("event", {"id": entry_id, "pid": pid, "type": etype, "data": data}, namespace=NAMESPACE)


def _preview(event: int, payload: bytes) -> dict | None:
    """A binary preview event as ``{"node", "mime", "image"}`` (event 4 carries its node; 1 does not)."""
    try:
        if event == events.PREVIEW_IMAGE_WITH_METADATA:
            (n,) = struct.unpack(">I", payload[:4])
            meta = json.loads(payload[4 : 4 + n])
            return {"node": meta.get("node_id"), "mime": meta.get("image_type", "image/jpeg"), "image": payload[4 + n :]}
        if event == events.PREVIEW_IMAGE:
            (kind,) = struct.unpack(">I", payload[:4])
            return {"node": None, "mime": "image/png" if kind == 2 else "image/jpeg", "image": payload[4:]}
    except (struct.error, ValueError):
        return None
    return None


def install(app: Flask, socketio: SocketIO, settings: Settings) -> Board:
    """The dashboard's routes and Socket.IO namespace (called by :func:`api.live.install`)."""
    board = Board(socketio, settings)
    _boards[socketio] = board
    app.register_blueprint(bp)

    def on_connect(auth: Any = None) -> None:
        auth_rules.refuse_socketio(auth)  # with tokens on: none valid, no connection
        board.connected()
        try:
            socketio.emit("snapshot", board.snapshot(), namespace=NAMESPACE, to=request.sid)  # type: ignore[attr-defined]
        except redis.RedisError as exc:
            log.warning("dashboard snapshot: %s", exc)

    def on_disconnect(*_args: Any) -> None:
        board.disconnected()

    socketio.on_event("connect", on_connect, namespace=NAMESPACE)
    socketio.on_event("disconnect", on_disconnect, namespace=NAMESPACE)
    return board


def of(socketio: SocketIO) -> Board | None:
    """The board installed on this Socket.IO server, if any."""
    return _boards.get(socketio)
