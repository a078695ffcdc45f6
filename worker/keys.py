"""Every Redis key name of nodefarm, in one place.

Two Redis roles (DESIGN §4): the *state* Redis (broker, runs, queue, history, events, files,
counters; noeviction) and the *result* Redis (node outputs by content hash; allkeys-lru).
Keys of one run share the ``{pid}`` hash tag so they could live in one cluster slot.
"""

from __future__ import annotations

PREFIX = "nf:"

# --- state Redis ------------------------------------------------------------------------------
NUMBER = PREFIX + "number"  # INCR: ComfyUI's PromptServer.number
QUEUE = PREFIX + "queue"  # ZSET pending prompt_id -> number (every pending run; admission order: prompt_queue.py)
QUEUE_LEVELS = PREFIX + "queue:levels"  # ZSET priority level with pending runs -> -level (highest first)
QUEUE_TURN = PREFIX + "queue:turn"  # INCR: the turns of submitters within a level
QUEUE_PLACE = PREFIX + "queue:place"  # HASH pending prompt_id -> JSON [level, submitter] (its lane)
QUEUE_TURNS_PREFIX = PREFIX + "queue:turns:"  # + level: ZSET submitter with pending runs there -> turn
QUEUE_LANE_PREFIX = PREFIX + "queue:lane:"  # + "<level>:<submitter>": ZSET prompt_id -> number
RUNNING = PREFIX + "running"  # ZSET running prompt_id -> number
RUNNING_SUBMITTERS = PREFIX + "running:submitters"  # HASH running prompt_id -> submitter (per-client cap)
HISTORY = PREFIX + "history"  # ZSET prompt_id -> when it finished (unix s)
JOBS_FACTS = PREFIX + "jobs:facts"  # HASH finished prompt_id -> JSON [status, workflow id]: indexed (history.py)
JOBS_INDEX_PREFIX = PREFIX + "jobs:by:"  # + "<order>[:<status>]": ZSET finished prompt_id -> create time | duration (ms)
JOBS_WORKFLOW_PREFIX = PREFIX + "jobs:wf:"  # + "[<status>]:<workflow id>": ZSET finished prompt_id -> create time (ms)
HISTORY_SEQ = PREFIX + "history:seq"  # INCR
EVENTS = PREFIX + "events"  # STREAM of every event, relayed by API processes
FILES = PREFIX + "files"  # STREAM of files saved by workers, landed by API hosts
WORKERS = PREFIX + "workers"  # ZSET worker name -> last heartbeat (unix s)
CACHE_INDEX = PREFIX + "cache:index"  # SET (classic) / ZSET (lru) of cache keys considered cached
CACHE_GEN = PREFIX + "cache:gen"  # INCR: LRU generation
INTERRUPT_ALL = PREFIX + "interrupt:all"  # generation counter of global interrupts
FREE_FLAGS = PREFIX + "free"  # HASH of the last POST /free flags, for workers to act on
MESSAGE_SEQ = PREFIX + "msgseq"  # INCR: makes the delivery tags of node task messages unique
COMPUTED = PREFIX + "computed"  # ZSET cache key -> when a node last computed it (ms), the last hour
BLOCKLIST = PREFIX + "blocklist"  # HASH worker name -> JSON {since, until, reason, failures} (worker/blocklist.py)
FAILED = PREFIX + "failed"  # HASH cache key -> JSON {class, error, workers: {name: unix s}}: recent node failures
FAILED_AT = PREFIX + "failed:at"  # ZSET cache key -> when it last failed (unix s), to prune FAILED
METRICS = PREFIX + "metrics"  # HASH JSON [metric, labels...] -> count: farm-wide counters (worker/metrics.py)


# A run's state: hashes keyed by node id (worker/runstore.py; nodes/core/state.py names the fields).
# RUN_STATE_KEYS is their order in every Redis Function call (worker/functions.lua reads it).
RUN_STATE_PARTS = (
    "meta",  # HASH client, end, pending, ver, outputs
    "spec",  # HASH node -> NodeSpec JSON (static once the node exists)
    "key",  # HASH node -> cache key
    "srcs",  # HASH node -> JSON list of its link sources
    "disp",  # HASH ephemeral node -> JSON [display, parent, real]
    "status",  # HASH node -> w | q | d | c
    "seq",  # HASH node -> dispatch count
    "deps",  # HASH waiting node -> JSON list of what it waits for
    "waiters",  # HASH node -> JSON list of nodes waiting for it
    "keyq",  # HASH cache key -> node queued with it
    "holders",  # HASH node -> worker whose memory alone holds its result
    "made",  # HASH node -> worker that computed it (its upload may be in flight)
    "near",  # HASH node -> worker holding its big result (consumers prefer it)
    "ui",  # HASH output node -> ui JSON
    "resolve",  # HASH expanded node -> JSON {"result", "sources"}
    "executed",  # LIST nodes that ran, in order
    "msgs",  # LIST history status messages, JSON [name, data]
    "attempts",  # HASH "node:seq" -> deliveries started
)


def run_part(pid: str, part: str) -> str:
    return f"{PREFIX}run:{{{pid}}}:{part}"


def run_state_keys(pid: str) -> list[str]:
    return [run_part(pid, part) for part in RUN_STATE_PARTS]


def run_item(pid: str) -> str:
    """The queue item as ComfyUI shows it: JSON [number, prompt_id, prompt, extra_data, outputs_to_execute]."""
    return f"{PREFIX}run:{{{pid}}}:item"


def run_private(pid: str) -> str:
    """JSON {"sensitive", "deferred"}: what the item carries that is never shown (nodes.core.item)."""
    return f"{PREFIX}run:{{{pid}}}:private"


def run_events(pid: str) -> str:
    return f"{PREFIX}run:{{{pid}}}:events"


def run_cancel(pid: str) -> str:
    return f"{PREFIX}run:{{{pid}}}:cancel"


def history_entry(pid: str) -> str:
    return f"{PREFIX}hist:{pid}"


def queue_turns(level: int | str) -> str:
    return f"{QUEUE_TURNS_PREFIX}{level}"


def queue_lane(level: int | str, submitter: str) -> str:
    return f"{QUEUE_LANE_PREFIX}{level}:{submitter}"


def jobs_index(order: str, status: str = "") -> str:
    """Finished runs by ``order`` (created | duration), all of them or those of one status."""
    return f"{JOBS_INDEX_PREFIX}{order}:{status}" if status else f"{JOBS_INDEX_PREFIX}{order}"


def jobs_workflow(workflow_id: str, status: str = "") -> str:
    """One workflow's finished runs by creation time: all of them, or those of one status."""
    return f"{JOBS_WORKFLOW_PREFIX}{status}:{workflow_id}" if status else f"{JOBS_WORKFLOW_PREFIX}:{workflow_id}"


def worker_info(name: str) -> str:
    return f"{PREFIX}worker:{name}"


def worker_models(name: str) -> str:
    """HASH (result store) cache key -> JSON ``{"objects": [type names], "bytes": n}`` of the results
    only this worker's memory holds (its resident models)."""
    return f"{PREFIX}worker:{name}:models"


def worker_runs(name: str) -> str:
    """ZSET "<pid> <model cache key>" -> admission time: the running runs whose model work admission
    gave this worker (worker/admission.py place_model_loads; entries of ended runs are pruned on read)."""
    return f"{PREFIX}worker:{name}:runs"


def worker_running(name: str) -> str:
    """HASH "<pid> <node_id>" -> task payload JSON of nodes this worker is executing."""
    return f"{PREFIX}worker:{name}:running"


def worker_reserved(name: str) -> str:
    """HASH "<pid> <node_id> <seq>" -> JSON [pid, node_id, seq, delivery tag] of node tasks this worker
    has taken from the broker but not started (prefetched); ``nf_start`` removes a node's entry
    (worker/rescue.py)."""
    return f"{PREFIX}worker:{name}:reserved"


def client_cursor(client_id: str) -> str:
    """The id of the last ``nf:events`` entry delivered to a client (a reconnect resumes after it)."""
    return f"{PREFIX}client:{client_id}:last"


WATCHDOG_LOCK = PREFIX + "watchdog:lock"  # SET NX PX: one watchdog sweep at a time on the farm
WATCHDOG_SUSPECTS = PREFIX + "watchdog:suspects"  # HASH JSON [pid, node, seq] or [pid] -> first seen stuck (unix s)

# kombu's Redis transport (its defaults, which nodefarm does not change): messages delivered and not
# acked, as a HASH delivery tag -> JSON [message, exchange, routing key], and a ZSET delivery tag ->
# delivery time, restored to their queue once older than the visibility timeout.
KOMBU_UNACKED = "unacked"
KOMBU_UNACKED_INDEX = "unacked_index"
KOMBU_PRIORITY_SEP = "\x06\x16"  # a queue's priority lists are "<queue><sep><priority>"


def worker_failures(name: str) -> str:
    """ZSET "<unix s> <reason>" -> unix s: failures counted against this worker (worker/blocklist.py)."""
    return f"{PREFIX}worker:{name}:failures"


def worker_queue(name: str) -> str:
    """The private Celery queue of one worker (results only it holds in memory)."""
    return WORKER_QUEUE_PREFIX + name


# --- Celery: task and queue names -------------------------------------------------------------
NODE_TASK = "nf.node"  # args: prompt_id, node_id, seq (which dispatch of the node)
SHARED_QUEUE = "nf.nodes"  # nodes any worker may run
WORKER_QUEUE_PREFIX = "nf.w."  # + worker name: nodes that need what only that worker holds


def file_blob(kind: str, relpath: str) -> str:
    """Bytes of a file (kind output/temp/input) travelling between hosts through Redis."""
    return f"{PREFIX}file:{kind}:{relpath}"


def file_counter(kind: str, subfolder: str, filename: str) -> str:
    return f"{PREFIX}ctr:{kind}:{subfolder}/{filename}"


def lander_cursor(host: str) -> str:
    return f"{PREFIX}lander:{host}"


# --- result Redis -----------------------------------------------------------------------------
def result(key: str) -> str:
    return f"{PREFIX}res:{key}"


def result_ui(key: str) -> str:
    return f"{PREFIX}ui:{key}"


# --- Redis Functions (worker/functions.lua) ---------------------------------------------------
# KEYS of every run function: the run's state parts, then these, in this order.
FUNCTION_EXTRA_KEYS = (
    "item", "run_events", "cancel", "events", "history", "history_entry", "queue", "running", "computed", "workers",
    "worker_running", "worker_reserved",
)


def function_keys(pid: str, worker: str = "") -> list[str]:
    extra = {
        "item": run_item(pid),
        "run_events": run_events(pid),
        "cancel": run_cancel(pid),
        "events": EVENTS,
        "history": HISTORY,
        "history_entry": history_entry(pid),
        "queue": QUEUE,
        "running": RUNNING,
        "computed": COMPUTED,
        "workers": WORKERS,
        "worker_running": worker_running(worker) if worker else run_part(pid, "noworker"),
        "worker_reserved": worker_reserved(worker) if worker else run_part(pid, "noworker"),
    }
    return run_state_keys(pid) + [extra[name] for name in FUNCTION_EXTRA_KEYS]
