"""/history and /queue (spec/comfyui.md section 2.1)."""

from __future__ import annotations

from flask import Blueprint, Response

from api.routing import empty, farm, json_response, twin
from api.schemas import ClearOrDelete, EventsQuery, HistoryQuery, PromptIdPath
from api.validate import takes
from worker import history, prompt_queue

bp = Blueprint("history", __name__)


@twin(bp, "/history", methods=["GET"])
@takes(query=HistoryQuery, summary="Finished runs, newest last (max_items, offset as in ComfyUI)")
def get_history(query: HistoryQuery) -> Response:
    return json_response(history.get(farm().r, query.max_items, query.offset))


@twin(bp, "/history/<path:prompt_id>", methods=["GET"])
@takes(path=PromptIdPath, summary="One finished run ({} when unknown)")
def get_history_entry(prompt_id: str) -> Response:
    return json_response(history.get_one(farm().r, prompt_id))


@twin(bp, "/history", methods=["POST"])
@takes(body=ClearOrDelete, summary="Clear the history or delete entries")
def post_history(body: ClearOrDelete) -> Response:
    if body.clear:
        history.clear(farm().r)
    if body.delete is not None:
        history.delete(farm().r, [str(p) for p in body.delete])
    return empty()


@twin(bp, "/queue", methods=["GET"])
@takes(summary="Running runs, and pending runs in admission order (worker/prompt_queue.py)")
def get_queue() -> Response:
    running, pending = prompt_queue.queue_items(farm().r)
    return json_response({"queue_running": [i.wire() for i in running], "queue_pending": [i.wire() for i in pending]})


@twin(bp, "/queue", methods=["POST"])
@takes(body=ClearOrDelete, summary="Clear pending runs or delete some")
def post_queue(body: ClearOrDelete) -> Response:
    if body.clear:
        prompt_queue.clear_pending(farm().r)
    if body.delete is not None:
        prompt_queue.delete_pending(farm().r, [str(p) for p in body.delete])
    return empty()


@bp.route("/nodefarm/runs/<path:prompt_id>/events")
@takes(path=PromptIdPath, query=EventsQuery,
       summary="Replay a run's JSON events; after=<stream id> for only newer ones (a reconnecting client)")
def run_events(prompt_id: str, query: EventsQuery) -> Response:
    from worker import events

    out = [e for e in events.replay(farm().r, prompt_id, query.after) if isinstance(e["type"], str)]
    return json_response(out)
