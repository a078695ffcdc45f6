"""``POST /free``: the flags ComfyUI's editor sends to unload models and free memory (spec 2.2)."""

from __future__ import annotations

import time

from flask import Blueprint, Response

from api.routing import empty, farm, twin
from api.schemas import FreeBody
from api.validate import takes
from worker import keys

bp = Blueprint("memory", __name__)

FREE_FLAGS = keys.FREE_FLAGS


@twin(bp, "/free", methods=["POST"])
@takes(body=FreeBody, summary="Ask every worker to unload models and/or free memory")
def free(body: FreeBody) -> Response:
    flags = {k: "1" for k in ("unload_models", "free_memory") if getattr(body, k)}
    if flags:
        r = farm().r
        pipe = r.pipeline(transaction=False)
        pipe.hset(FREE_FLAGS, mapping={**flags, "at": str(time.time())})
        pipe.execute()
    return empty()
