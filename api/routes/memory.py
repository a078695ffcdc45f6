"""``POST /free``: the flags ComfyUI's editor sends to unload models and free memory (spec 2.2)."""

from __future__ import annotations

import time

from flask import Blueprint, Response

from api.routing import body_json, empty, farm, twin
from worker import keys

bp = Blueprint("memory", __name__)

FREE_FLAGS = keys.FREE_FLAGS


@twin(bp, "/free", methods=["POST"])
def free() -> Response:
    body = body_json({}) or {}
    if not isinstance(body, dict):
        body = {}
    flags = {k: "1" for k in ("unload_models", "free_memory") if body.get(k)}
    if flags:
        r = farm().r
        pipe = r.pipeline(transaction=False)
        pipe.hset(FREE_FLAGS, mapping={**flags, "at": str(time.time())})
        pipe.execute()
    return empty()
