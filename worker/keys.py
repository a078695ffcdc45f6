"""Every Redis key name of nodefarm, in one place.

Two Redis roles (DESIGN §4): the *state* Redis (broker, runs, queue, history, events, files,
counters; noeviction) and the *result* Redis (node outputs by content hash; allkeys-lru).
Keys of one run share the ``{pid}`` hash tag so they could live in one cluster slot.
"""

from __future__ import annotations

PREFIX = "nf:"

# --- state Redis ------------------------------------------------------------------------------
NUMBER = PREFIX + "number"  # INCR: ComfyUI's PromptServer.number
QUEUE = PREFIX + "queue"  # ZSET pending prompt_id -> number
RUNNING = PREFIX + "running"  # ZSET running prompt_id -> number
HISTORY = PREFIX + "history"  # ZSET prompt_id -> completion sequence
HISTORY_SEQ = PREFIX + "history:seq"  # INCR
EVENTS = PREFIX + "events"  # STREAM of every event, relayed by API processes
FILES = PREFIX + "files"  # STREAM of files saved by workers, landed by API hosts
WORKERS = PREFIX + "workers"  # ZSET worker name -> last heartbeat (unix s)
CACHE_INDEX = PREFIX + "cache:index"  # SET (classic) / ZSET (lru) of cache keys considered cached
CACHE_GEN = PREFIX + "cache:gen"  # INCR: LRU generation
INTERRUPT_ALL = PREFIX + "interrupt:all"  # generation counter of global interrupts


def run_state(pid: str) -> str:
    return f"{PREFIX}run:{{{pid}}}:state"


def run_static(pid: str) -> str:
    """The parts of a run's state that change only on expansion: graph, keys, facts, eph."""
    return f"{PREFIX}run:{{{pid}}}:static"


def run_item(pid: str) -> str:
    """The queue item: JSON [number, prompt_id, prompt, extra_data, outputs_to_execute]."""
    return f"{PREFIX}run:{{{pid}}}:item"


def run_extra(pid: str) -> str:
    """Extra data with sensitive keys kept (delivered to hidden inputs), never shown."""
    return f"{PREFIX}run:{{{pid}}}:secret"


def run_deferred(pid: str) -> str:
    """Nodes whose VALIDATE_INPUTS rejected None for a linked input; re-run on the worker."""
    return f"{PREFIX}run:{{{pid}}}:deferred"


def run_events(pid: str) -> str:
    return f"{PREFIX}run:{{{pid}}}:events"


def run_cancel(pid: str) -> str:
    return f"{PREFIX}run:{{{pid}}}:cancel"


def node_attempts(pid: str, node_id: str) -> str:
    return f"{PREFIX}run:{{{pid}}}:attempts:{node_id}"


def history_entry(pid: str) -> str:
    return f"{PREFIX}hist:{pid}"


def worker_info(name: str) -> str:
    return f"{PREFIX}worker:{name}"


def worker_running(name: str) -> str:
    """HASH "<pid> <node_id>" -> task payload JSON of nodes this worker is executing."""
    return f"{PREFIX}worker:{name}:running"


def worker_queue(name: str) -> str:
    """The private Celery queue of one worker (results only it holds in memory)."""
    return f"nf.w.{name}"


SHARED_QUEUE = "nf.nodes"


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
