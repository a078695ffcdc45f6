"""POST/GET /prompt and POST /interrupt (spec/comfyui.md sections 1 and 2.1)."""

from __future__ import annotations

import uuid

from flask import Blueprint, Response

from api import auth
from api.routing import admitter, body_json, empty, farm, json_response, twin
from nodes.core.item import QueueItem
from nodes.core.validation import validate_prompt
from worker import keys, prompt_queue
from worker.cancel import interrupt as interrupt_runs

bp = Blueprint("prompt", __name__)


def _graph_error(kind: str, message: str, details: str = "") -> Response:
    return json_response(
        {"error": {"type": kind, "message": message, "details": details, "extra_info": {}}, "node_errors": {}}, 400
    )


@twin(bp, "/prompt", methods=["GET"])
def get_prompt() -> Response:
    return json_response({"exec_info": {"queue_remaining": prompt_queue.queue_remaining(farm().r)}})


@twin(bp, "/prompt", methods=["POST"])
def post_prompt() -> Response:
    f = farm()
    body = body_json(None)
    if not isinstance(body, dict):
        return _graph_error("invalid_prompt", "Invalid request body", "the body must be a JSON object")
    from nodes.compat.server import PromptServer

    body = PromptServer.instance.trigger_on_prompt(body) or body
    if "number" in body:
        try:
            number: float = float(body["number"])
        except (TypeError, ValueError):
            return _graph_error("invalid_prompt", "Invalid number", f"number: {body['number']!r}")
    else:
        number = prompt_queue.next_number(f.r)
        if body.get("front"):
            number = -number
    prompt = body.get("prompt")
    if prompt is None:
        return _graph_error("no_prompt", "No prompt provided", "No prompt provided")
    if not isinstance(prompt, dict):
        return _graph_error("invalid_prompt", "Invalid prompt", "the prompt must be a JSON object of nodes")
    client_id = body.get("client_id")
    if client_id is not None and not isinstance(client_id, str):
        return _graph_error("invalid_prompt", "Invalid client_id", f"client_id must be a string, not {type(client_id).__name__}")
    given = body.get("prompt_id")
    if given is not None and (not isinstance(given, str) or not given or len(given) > 256):
        return _graph_error("invalid_prompt", "Invalid prompt_id", "prompt_id must be a string of 1 to 256 characters")
    pid = given or str(uuid.uuid4())
    if given and f.r.exists(keys.run_item(pid), keys.history_entry(pid)):
        return _graph_error("invalid_prompt", "prompt_id already used",
                            f"a run with prompt_id {pid!r} exists; submit a new run under a new id")
    partial = body.get("partial_execution_targets")
    result = validate_prompt(prompt, f.registry, partial)
    if not result.ok:
        return json_response({"error": result.error, "node_errors": result.node_errors}, 400)
    extra_data = body.get("extra_data") or {}
    if not isinstance(extra_data, dict):
        extra_data = {}
    if "client_id" in body:
        extra_data["client_id"] = body["client_id"]
    auth.stamp_submitter(extra_data, client_id)
    item = QueueItem.submitted(number, pid, prompt, extra_data, result.outputs)
    item.deferred = sorted(result.deferred_validation)
    prompt_queue.enqueue(f.r, item)
    admitter().kick(item)
    return json_response({"prompt_id": pid, "number": number, "node_errors": result.node_errors})


@twin(bp, "/interrupt", methods=["POST"])
def interrupt() -> Response:
    body = body_json({}) or {}
    pid = body.get("prompt_id") if isinstance(body, dict) else None
    interrupt_runs(farm(), str(pid) if pid else None)
    return empty()
