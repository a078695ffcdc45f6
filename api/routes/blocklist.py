"""The bad-worker blocklist for operators: ``GET /nodefarm/blocklist`` lists it, ``DELETE
/nodefarm/blocklist/<worker>`` lifts one entry (also at ``/api/...``; ``nodefarm blocklist`` wraps both).

Workers put themselves and each other on the list (:mod:`worker.blocklist`); an entry expires by itself
after ``NODEFARM_BLOCKLIST_S``. Lifting one early is for an operator who fixed the worker (rebooted
it, reinstalled a node pack): it takes work again within a second, with its failure count reset.
"""

from __future__ import annotations

from typing import Annotated

from flask import Blueprint, Response
from pydantic import BaseModel, StringConstraints

from api.routing import farm, json_response, twin
from api.validate import takes
from worker import blocklist, keys

bp = Blueprint("blocklist", __name__)


class WorkerPath(BaseModel):
    worker: Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[^\x00]*$")]


def listing() -> dict:
    """The blocklist, the failures counted against the live workers, and the rule's settings."""
    f = farm()
    s = f.settings
    live = sorted(n.decode() if isinstance(n, bytes) else str(n) for n in f.r.zrange(keys.WORKERS, 0, -1))
    return {
        "blocklist": {name: entry.to_json() for name, entry in blocklist.entries(f.r).items()},
        "failures": blocklist.failure_counts(f.r, live, s.blocklist_s),
        "threshold": s.blocklist_failures,
        "window_s": s.blocklist_s,
    }


@twin(bp, "/nodefarm/blocklist", methods=["GET"])
@takes(summary="Blocklisted workers ({since, until, reason, failures} each) and the failures counted against live ones")
def blocklist_get() -> Response:
    return json_response(listing())


@twin(bp, "/nodefarm/blocklist/<worker>", methods=["DELETE"])
@takes(path=WorkerPath, summary="Lift a worker off the blocklist (404 when it is not on it)")
def blocklist_lift(worker: str) -> Response:
    if not blocklist.lift(farm().r, worker):
        return json_response({
            "error": {"type": "not_blocklisted", "message": "Worker is not on the blocklist", "details": worker,
                      "extra_info": {}},
            "node_errors": {},
        }, 404)
    return json_response({"worker": worker, "lifted": True, **listing()})
