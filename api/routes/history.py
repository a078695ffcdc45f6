"""/history and /queue (spec/comfyui.md section 2.1)."""

from __future__ import annotations

from flask import Blueprint, Response, request

from api.routing import body_json, empty, farm, json_response, twin
from worker import history, prompt_queue

bp = Blueprint("history", __name__)


def _int_arg(name: str) -> int | None:
    value = request.args.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        return None


@twin(bp, "/history", methods=["GET"])
def get_history() -> Response:
    return json_response(history.get(farm().r, _int_arg("max_items"), _int_arg("offset")))


@twin(bp, "/history/<path:prompt_id>", methods=["GET"])
def get_history_entry(prompt_id: str) -> Response:
    return json_response(history.get_one(farm().r, prompt_id))


@twin(bp, "/history", methods=["POST"])
def post_history() -> Response:
    body = body_json({}) or {}
    if isinstance(body, dict):
        if body.get("clear"):
            history.clear(farm().r)
        if isinstance(body.get("delete"), list):
            history.delete(farm().r, [str(p) for p in body["delete"]])
    return empty()


@twin(bp, "/queue", methods=["GET"])
def get_queue() -> Response:
    running, pending = prompt_queue.queue_items(farm().r)
    return json_response({"queue_running": [i.wire() for i in running], "queue_pending": [i.wire() for i in pending]})


@twin(bp, "/queue", methods=["POST"])
def post_queue() -> Response:
    body = body_json({}) or {}
    if isinstance(body, dict):
        if body.get("clear"):
            prompt_queue.clear_pending(farm().r)
        if isinstance(body.get("delete"), list):
            prompt_queue.delete_pending(farm().r, [str(p) for p in body["delete"]])
    return empty()


@bp.route("/nodefarm/runs/<path:prompt_id>/events")
def run_events(prompt_id: str) -> Response:
    """Replay a run's events (JSON ones) after a reconnect: ``?after=<stream id>`` for only newer ones."""
    from worker import events

    out = [e for e in events.replay(farm().r, prompt_id, request.args.get("after")) if isinstance(e["type"], str)]
    return json_response(out)
