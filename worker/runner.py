"""The body of the node task: run one node of one run on this worker, then advance the run.

Skips duplicates (Celery delivers at least once), counts attempts (a node that keeps killing its
worker fails the run instead of looping), serves results already stored (another run, or an
identical node of this run, computed them), gathers inputs, calls the node with progress and
interrupt hooks live, stores its outputs and applies the outcome to the run state.
"""

from __future__ import annotations

import json
import logging
import traceback
from typing import Any

from nodes.compat import server as compat_server
from nodes.compat.comfy.model_management import InterruptProcessingException
from worker import events, files, keys, runs, state
from worker.errors import ResultLost
from worker.execute import Hidden, Outcome, assemble_inputs, run_node
from worker.farm import Farm
from worker.graph import is_link, links

log = logging.getLogger("nodefarm.runner")


def format_value(v: Any) -> Any:
    if v is None or isinstance(v, (int, float, bool, str)):
        return v
    return str(v)


def execute_task(farm: Farm, pid: str, nid: str, seq: int) -> None:
    r = farm.r
    pipe = r.pipeline(transaction=False)
    pipe.get(keys.run_state(pid))
    pipe.exists(keys.run_cancel(pid))
    attempts_key = f"{keys.node_attempts(pid, nid)}:{seq}"
    pipe.incr(attempts_key)
    pipe.expire(attempts_key, 86400)
    raw, cancelled, attempts, _ = pipe.execute()
    if raw is None:
        return
    st = json.loads(raw)
    if st["end"] is not None or st["st"].get(nid) != "q" or st.get("disp", {}).get(nid, 1) != seq:
        return  # a duplicate delivery, or a node of a run that already ended
    if cancelled:
        runs.transact(farm, pid, lambda s: state.interrupted(s, nid, runs.now_ms()))
        return
    if attempts > farm.settings.max_node_attempts:
        info = {
            "exception_message": (
                f"Node {nid} ({st['graph'][nid].get('class_type')}) was started {attempts - 1} times and its "
                "worker died each time (killed, or out of memory?); giving up.\n"
            ),
            "exception_type": "nodefarm.WorkerLost",
            "traceback": [],
            "current_inputs": {},
        }
        runs.transact(farm, pid, lambda s: state.node_failed(s, nid, info, runs.now_ms()))
        return
    running_key = keys.worker_running(farm.settings.worker_name)
    r.hset(running_key, f"{pid} {nid}", json.dumps([pid, nid, seq]))
    farm.current.update(pid=pid, nid=nid, st=st)
    try:
        _execute(farm, st, pid, nid, seq)
    finally:
        farm.current.clear()
        r.hdel(running_key, f"{pid} {nid}")


def _emit(farm: Farm, st: dict, items: list[tuple[str, Any]]) -> None:
    pipe = farm.r.pipeline(transaction=False)
    for event, data in items:
        events.add(pipe, st["pid"], st.get("client_id"), event, data)
    pipe.execute()


def _execute(farm: Farm, st: dict, pid: str, nid: str, seq: int) -> None:
    node = st["graph"][nid]
    key = st["keys"][nid]
    class_type = node["class_type"]
    display = state.display_id(st, nid)

    if nid not in st.get("resolve", {}):
        # The shared record decides (cache modes evict it); local memory only speeds up reading values.
        if farm.store.exists([key]):
            ui = farm.store.get_ui([key]).get(key)
            if ui:
                _emit(farm, st, [("executed", {"node": nid, "display_node": display, "output": ui, "prompt_id": pid})])
            runs.transact(farm, pid, lambda s: state.node_done(s, nid, ui=ui, ran=False, now_ms=runs.now_ms()))
            return

    cls = farm.registry.get(class_type)
    data: dict[str, list[Any]] = {}
    try:
        if cls is None:
            raise RuntimeError(f"node class {class_type} is not installed on worker {farm.settings.worker_name}")
        sources = {src: st["keys"][src] for _, src, _ in links(node) if st["st"].get(src) == "d" or src in st["cached"]}
        try:
            link_values = farm.store.get_many(sources)
        except ResultLost as lost:
            runs.transact(farm, pid, lambda s: state.lost_inputs(s, nid, lost.node_ids))
            return
        if nid in st.get("resolve", {}):
            outcome = _resolve_expansion(st, nid, link_values)
        else:
            running = {nid: (0.0, 1.0)}
            _emit(
                farm,
                st,
                [
                    ("progress_state", state.progress_state(st, running)),
                    ("executing", {"node": nid, "display_node": display, "prompt_id": pid}),
                ],
            )
            compat_server.PromptServer.instance.client_id = st.get("client_id")
            compat_server.PromptServer.instance.last_node_id = display
            compat_server.PromptServer.instance.last_prompt_id = pid
            obj = farm.objects.get((nid, class_type))
            if obj is None:
                obj = cls()
                farm.objects[(nid, class_type)] = obj
            item = runs.load_item(farm.r, pid) or [0, pid, {}, {}, []]
            secret = farm.r.get(keys.run_extra(pid))
            extra = json.loads(secret) if secret else item[3]
            hidden = Hidden(prompt=item[2], extra_data=extra, unique_id=nid)
            data = assemble_inputs(cls, node, link_values, hidden)
            unevaluated = {name for name, v in node.get("inputs", {}).items() if is_link(v) and v[0] not in link_values}
            outcome = run_node(cls, obj, data, node_id=nid, prompt_id=pid, unevaluated=unevaluated)
        if outcome.need:
            need = [node["inputs"][name][0] for name in outcome.need]
            runs.transact(farm, pid, lambda s: state.node_pending(s, nid, need))
            return
        holder = farm.store.put(key, outcome.outputs, outcome.ui)
        farm.cache.stored(key)
        if outcome.ui:
            files.ship_ui_files(farm, outcome.ui)
            _emit(farm, st, [("executed", {"node": nid, "display_node": display, "output": outcome.ui, "prompt_id": pid})])
        ui = outcome.ui
        who = farm.settings.worker_name if holder else None
        runs.transact(farm, pid, lambda s: state.node_done(s, nid, ui=ui, now_ms=runs.now_ms(), holder=who))
    except InterruptProcessingException:
        runs.transact(farm, pid, lambda s: state.interrupted(s, nid, runs.now_ms()))
    except Exception as exc:
        log.exception("node %s (%s) of %s failed", nid, class_type, pid)
        info = error_info(exc, data)
        runs.transact(farm, pid, lambda s: state.node_failed(s, nid, info, runs.now_ms()))


def _resolve_expansion(st: dict, nid: str, link_values: dict[str, list[list[Any]]]) -> Outcome:
    """Second visit of an expanded node: substitute the expanded graph's results into its outputs."""
    result = st["resolve"][nid]
    outputs: list[list[Any]] = []
    for socket_values in result:
        values: list[Any] = []
        for v in socket_values:
            if is_link(v):
                values.extend(link_values[v[0]][int(v[1])])
            else:
                values.append(v)
        outputs.append(values)
    return Outcome(outputs=outputs)


def error_info(exc: BaseException, data: dict[str, list[Any]]) -> dict:
    typ = type(exc)
    module = typ.__module__
    name = typ.__qualname__ if module in ("builtins", "__main__") else f"{module}.{typ.__qualname__}"
    message = str(exc)
    try:
        from nodes.compat.comfy.model_management import OOM_EXCEPTION

        if isinstance(exc, OOM_EXCEPTION):
            message += "\nThis error means you ran out of memory on your GPU."
    except ImportError:
        pass
    return {
        "exception_message": f"{message}\n",
        "exception_type": name,
        "traceback": traceback.format_tb(exc.__traceback__),
        "current_inputs": {k: [format_value(x) for x in v] for k, v in data.items()},
    }
