"""``GET /metrics``: the whole farm's figures in Prometheus's text format, for a Prometheus to scrape.

The figures come from Redis (:mod:`worker.metrics` says why not prometheus_client's multiprocess
mode): every API process answers the same farm-wide counters, whichever worker or host produced them.
Like every route, it needs a token when the farm has tokens (Prometheus sends one with
``authorization: {credentials_file: ...}``, see deploy/prometheus.yml).
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, Response, request
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, choose_encoder

from api.routing import farm
from api.validate import takes
from worker.metrics import FarmCollector

bp = Blueprint("metrics", __name__)


@bp.route("/metrics", methods=["GET"])
@takes(summary="The farm's metrics in the Prometheus text format: runs by state, node executions, durations "
               "and waits, cache hits, queues, workers' busy time, VRAM and resident models, result store bytes")
def metrics() -> Response:
    f = farm()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FarmCollector(f.r, f.store.r, f.settings.heartbeat_s))  # type: ignore[arg-type]
    # the text format (0.0.4) unless the scraper asks for OpenMetrics, as prometheus_client's own server does
    encode: Callable[[CollectorRegistry], bytes] = generate_latest
    content_type = CONTENT_TYPE_PLAIN_0_0_4
    try:
        encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    except Exception:  # an Accept header it cannot parse ("version=abc"): the plain text format
        pass
    return Response(encode(registry), headers={"Content-Type": content_type})
