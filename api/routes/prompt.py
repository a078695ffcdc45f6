"""POST/GET /prompt and POST /interrupt (spec/comfyui.md sections 1 and 2.1)."""

from __future__ import annotations

import time
import uuid

from flask import Blueprint, Response

from api import auth
from api.routing import admitter, empty, farm, json_response, twin
from api.schemas import InterruptBody, PromptBody
from api.validate import check, json_body, takes
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
@takes(summary="How many runs are queued or running")
def get_prompt() -> Response:
    return json_response({"exec_info": {"queue_remaining": prompt_queue.queue_remaining(farm().r)}})


@twin(bp, "/prompt", methods=["POST"])
@takes(body=PromptBody, check_body=False, error_type="invalid_prompt",
       summary="Queue a prompt (API-format workflow); 400 with node_errors when it does not validate")
def post_prompt() -> Response:
    f = farm()
    raw = json_body(None, "invalid_prompt")
    if not isinstance(raw, dict):
        return _graph_error("invalid_prompt", "Invalid request body", "the body must be a JSON object")
    from nodes.compat.server import PromptServer

    raw = PromptServer.instance.trigger_on_prompt(raw) or raw
    if raw.get("prompt") is None:
        return _graph_error("no_prompt", "No prompt provided", "No prompt provided")
    body = check(PromptBody, raw, "body", "invalid_prompt")
    prompt = raw["prompt"]
    client_id = body.client_id
    given = body.prompt_id
    pid = given or str(uuid.uuid4())
    if given and f.r.exists(keys.run_item(pid), keys.history_entry(pid)):
        return _graph_error("invalid_prompt", "prompt_id already used",
                            f"a run with prompt_id {pid!r} exists; submit a new run under a new id")
    result = validate_prompt(prompt, f.registry, body.partial_execution_targets)
    if not result.ok:
        return json_response({"error": result.error, "node_errors": result.node_errors}, 400)
    if body.number is not None:
        number: float = body.number
    else:  # numbered once valid: a rejected submission leaves no gap in the queue numbers
        number = prompt_queue.next_number(f.r)
        if body.front:
            number = -number
    extra_data = dict(raw.get("extra_data") or {})
    if "client_id" in raw:
        extra_data["client_id"] = client_id
    extra_data["create_time"] = int(time.time() * 1000)  # as upstream stamps it (the jobs API, a queue's age)
    auth.stamp_submitter(extra_data, client_id)
    item = QueueItem.submitted(number, pid, prompt, extra_data, result.outputs)
    item.deferred = sorted(result.deferred_validation)
    prompt_queue.enqueue(f.r, item)
    admitter().kick(item)
    return json_response({"prompt_id": pid, "number": number, "node_errors": result.node_errors})


@twin(bp, "/interrupt", methods=["POST"])
@takes(body=InterruptBody, summary="Interrupt the given run, or every running run")
def interrupt(body: InterruptBody) -> Response:
    interrupt_runs(farm(), body.prompt_id or None)
    return empty()
