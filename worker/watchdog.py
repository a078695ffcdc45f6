"""The watchdog: running runs that cannot progress are unstuck or failed, never left running for ever.

Why. Every step of a run is atomic and every dispatched node has its task message, but a message can
still vanish from under a run: the state Redis restarted and its append-only file lost the last
second of writes (a queue pop, an ack), a worker died between kombu popping a message and recording
it, a pool child was killed on a broker connection loss. And a run's state itself can be lost or
damaged (a restore from an old file, a hand-made deletion). Clients then wait for ever.

A sweep (at most one at a time on the farm: ``SET NX`` on :data:`worker.keys.WATCHDOG_LOCK`) runs from
the API's admission thread and from every worker's rescue loop. For each running run it reads the
state, then, in one transaction, where the node tasks are: the queues, kombu's unacked messages
(younger than the grace period: a live worker keeps re-scoring those it holds, see
:mod:`worker.rescue`), and the running and reserved nodes of live workers. A problem seen for longer
than ``watchdog_grace_s`` (first sighting kept in :data:`worker.keys.WATCHDOG_SUSPECTS`) is acted on:

* a node dispatched (``q``) whose task is nowhere is sent again with the same seq (``nf_publish``);
  should the original turn up after all, ``nf_start``/``nf_done`` make one of the two a no-op;
* a run whose state is missing or corrupt (no meta, a node without its spec, an unknown status, no
  queue item), or that has nothing dispatched and has not ended, fails: ``execution_error`` with a
  clear message, the history entry, and the closing events, as any failed run.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import redis

from nodes.core.state import ACTIVE, FINISHED, QUEUED, ErrorInfo, RunState, node_failed
from nodes.settings import Settings
from worker import functions, keys, prompt_queue, runstore

log = logging.getLogger("nodefarm.watchdog")

LOST_TYPE = "nodefarm.RunStateLost"


@dataclass
class Sweep:
    """What one sweep did."""

    resent: list[str] = field(default_factory=list)  # "pid/node" sent again
    failed: dict[str, str] = field(default_factory=dict)  # pid -> why
    suspects: int = 0  # problems seen, not yet older than the grace period


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def task_args(message: Any) -> tuple[str, str, int] | None:
    """``(pid, node, seq)`` of a node task message as kombu stores it (JSON text or dict), or None."""
    try:
        msg = json.loads(message) if isinstance(message, (str, bytes)) else message
        body = msg["body"]
        if (msg.get("properties") or {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        if (msg.get("headers") or {}).get("task") != keys.NODE_TASK:
            return None
        return str(args[0]), str(args[1]), int(args[2])
    except (ValueError, KeyError, IndexError, TypeError):
        return None


def where_tasks_are(r: redis.Redis, now: float, grace: float, heartbeat_s: float) -> set[tuple[str, str, int]]:
    """Every node task that is somewhere it will run from, read in one transaction: on the shared
    queue or a live worker's private one, in kombu's unacked set and seen within ``grace``, or taken
    by a live worker (reserved or running). A task in a dead worker's private queue counts as lost."""
    alive_after = now - 3 * heartbeat_s
    workers = [_s(w) for w in r.zrangebyscore(keys.WORKERS, alive_after, "+inf")]
    wanted = {keys.SHARED_QUEUE} | {keys.worker_queue(w) for w in workers}
    queues = sorted({q for pattern in (keys.SHARED_QUEUE + "*", keys.WORKER_QUEUE_PREFIX + "*")
                     for k in r.scan_iter(match=pattern, count=1000, _type="list")
                     if (q := _s(k)).split(keys.KOMBU_PRIORITY_SEP)[0] in wanted})
    pipe = r.pipeline(transaction=True)
    for q in queues:
        pipe.lrange(q, 0, -1)
    pipe.hgetall(keys.KOMBU_UNACKED)
    pipe.zrangebyscore(keys.KOMBU_UNACKED_INDEX, now - grace, "+inf")
    for w in workers:
        pipe.hvals(keys.worker_running(w))
        pipe.hvals(keys.worker_reserved(w))
    got = pipe.execute()
    found: set[tuple[str, str, int]] = set()
    for messages in got[:len(queues)]:
        found.update(a for m in messages if (a := task_args(m)) is not None)
    unacked, young = got[len(queues)], set(got[len(queues) + 1])
    for tag, raw in unacked.items():
        if tag in young:
            try:
                a = task_args(json.loads(raw)[0])
            except (ValueError, IndexError, TypeError):
                a = None
            if a is not None:
                found.add(a)
    for payloads in got[len(queues) + 2:]:
        for payload in payloads:
            try:
                pid, nid, seq = json.loads(payload)[:3]
                found.add((str(pid), str(nid), int(seq)))
            except (ValueError, TypeError):
                continue
    return found


@dataclass
class RunLook:
    """What a sweep read of one running run."""

    pid: str
    meta: dict[str, str]
    status: dict[str, str]
    seq: dict[str, str]
    specs: set[str]
    has_item: bool

    def problem(self) -> str | None:
        """Why the run cannot go on, or None."""
        if not self.meta:
            return "its state is missing"
        if (self.meta.get("end") or "") != "":
            return None  # ended: nf_finish took it off the running set in the same step
        if not self.has_item:
            return "its queue item is missing"
        bad = sorted(n for n, s in self.status.items() if s not in ACTIVE + FINISHED)
        if bad:
            return f"node {bad[0]} has an unknown status {self.status[bad[0]]!r}"
        nospec = sorted(n for n in self.status if n not in self.specs)
        if nospec:
            return f"node {nospec[0]} has no spec"
        noseq = sorted(n for n, s in self.status.items() if s == QUEUED and not self.seq.get(n, "").isdigit())
        if noseq:
            return f"node {noseq[0]} has no dispatch count"
        if not any(s == QUEUED for s in self.status.values()):
            return "nothing is dispatched and it has not ended"
        return None

    def queued(self) -> list[tuple[str, int]]:
        return [(n, int(self.seq[n])) for n, s in self.status.items() if s == QUEUED]


def look(r: redis.Redis, pids: Iterable[str]) -> list[RunLook]:
    pids = list(pids)
    pipe = r.pipeline(transaction=False)
    for pid in pids:
        pipe.hgetall(keys.run_part(pid, "meta"))
        pipe.hgetall(keys.run_part(pid, "status"))
        pipe.hgetall(keys.run_part(pid, "seq"))
        pipe.hkeys(keys.run_part(pid, "spec"))
        pipe.exists(keys.run_item(pid))
    got = pipe.execute()
    out = []
    for i, pid in enumerate(pids):
        meta, status, seq, specs, item = got[5 * i:5 * i + 5]
        out.append(RunLook(pid, {_s(k): _s(v) for k, v in meta.items()}, {_s(k): _s(v) for k, v in status.items()},
                           {_s(k): _s(v) for k, v in seq.items()}, {_s(k) for k in specs}, bool(item)))
    return out


def sweep(r: redis.Redis, settings: Settings, now: float | None = None) -> Sweep:
    """One look at every running run; acts on what has looked stuck for longer than the grace period."""
    now = time.time() if now is None else now
    grace = settings.watchdog_grace_s
    report = Sweep()
    pids = [_s(p) for p in r.zrange(keys.RUNNING, 0, -1)]
    looks = look(r, pids)  # states first, then where the tasks are: a node dispatched meanwhile is found
    located = where_tasks_are(r, now, grace, settings.heartbeat_s) if any(x.meta for x in looks) else set()
    seen: dict[str, str] = {}  # suspect -> why
    for run in looks:
        why = run.problem()
        if why is not None:
            seen[json.dumps([run.pid])] = why
            continue
        if run.meta.get("end"):
            continue
        for nid, seq in run.queued():
            if (run.pid, nid, seq) not in located:
                seen[json.dumps([run.pid, nid, seq])] = "lost"
    first = {_s(k): float(v) for k, v in r.hgetall(keys.WATCHDOG_SUSPECTS).items()}  # what is not seen now goes
    gone = [k for k in first if k not in seen]
    pipe = r.pipeline(transaction=False)
    if gone:
        pipe.hdel(keys.WATCHDOG_SUSPECTS, *gone)
    new = {k: now for k in seen if k not in first}
    if new:
        pipe.hset(keys.WATCHDOG_SUSPECTS, mapping=new)
    pipe.execute()
    for suspect, why in seen.items():
        if suspect not in first or now - first[suspect] < grace:
            report.suspects += 1
            continue
        r.hdel(keys.WATCHDOG_SUSPECTS, suspect)
        parts = json.loads(suspect)
        if len(parts) == 3:
            if _resend(r, parts[0], parts[1], int(parts[2])):
                log.warning("node %s of run %s was dispatched but its task is nowhere (for %.0f s); sending it again",
                            parts[1], parts[0], now - first[suspect])
                report.resent.append(f"{parts[0]}/{parts[1]}")
        elif fail_run(r, parts[0], why, now):
            report.failed[parts[0]] = why
    return report


def _resend(r: redis.Redis, pid: str, nid: str, seq: int) -> bool:
    """Publish the node's task again, if it is still that dispatch of a live run (checked atomically)."""
    meta, status, seqs = (keys.run_part(pid, p) for p in ("meta", "status", "seq"))
    with r.pipeline() as pipe:
        try:
            pipe.watch(meta, status, seqs)
            if (pipe.hget(meta, "end") or b"") != b"" or pipe.hget(status, nid) != QUEUED.encode() \
                    or pipe.hget(seqs, nid) != str(seq).encode():
                pipe.unwatch()
                return False
            pipe.multi()
            functions.publish_in(pipe, pid, [(nid, seq, "")])
            pipe.execute()
            return True
        except redis.WatchError:
            return False


def fail_run(r: redis.Redis, pid: str, why: str, now: float) -> bool:
    """End a running run that cannot go on: execution_error, history entry, closing events.

    Its state is replaced by a fresh one holding only what the end needs (what was there may be
    unreadable); the messages of its history so far are kept when they can be read."""
    if r.zscore(keys.RUNNING, pid) is None:
        return False
    meta = {_s(k): _s(v) for k, v in r.hgetall(keys.run_part(pid, "meta")).items()}
    if meta.get("end"):
        r.zrem(keys.RUNNING, pid)
        return False
    try:
        item = prompt_queue.load_item(r, pid)
    except (ValueError, TypeError, KeyError):
        item = None
    client = (meta.get("client") or None) if meta else (item.client_id if item is not None else None)
    st = RunState(pid, client, list(item.outputs) if item is not None else [])
    try:
        st.msgs = runstore.messages(r, pid)
    except ValueError:
        st.msgs = []
    message = (f"Run {pid} cannot go on: {why} (the state Redis lost or damaged it, e.g. restarted from an "
               "old append-only file). nodefarm failed the run instead of leaving it running.\n")
    now_ms = int(now * 1000)
    step = node_failed(st, "", ErrorInfo(message, LOST_TYPE), now_ms)
    log.error("%s", message.strip())
    pipe = r.pipeline()
    pipe.delete(*keys.run_state_keys(pid))
    runstore.create(pipe, st, step, now_ms)
    pipe.execute()
    return True


def maybe_sweep(r: redis.Redis, settings: Settings) -> Sweep | None:
    """A sweep, unless another process of the farm made one lately (every third of the grace
    period, between 1 and 10 s)."""
    period_ms = int(1000 * max(1.0, min(10.0, settings.watchdog_grace_s / 3)))
    if not r.set(keys.WATCHDOG_LOCK, "1", nx=True, px=period_ms):
        return None
    return sweep(r, settings)
