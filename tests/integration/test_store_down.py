"""While the farm's state Redis is away, every route that needs it answers 503 with ComfyUI's error shape
and a Retry-After, never a 500 or a hang; the farm serves again once Redis is back."""

from __future__ import annotations

import random
import time
from pathlib import Path

import requests

from tests.farm import Farm

ROUTES = [  # (method, path, JSON body): routes whose answer lives in the state Redis
    ("GET", "/queue", None),
    ("GET", "/history", None),
    ("GET", "/api/jobs", None),
    ("GET", "/api/jobs/x/", None),
    ("POST", "/prompt", "PROMPT"),
    ("POST", "/queue", {"clear": True}),
    ("POST", "/interrupt", {}),
    ("GET", "/nodefarm/dashboard/snapshot", None),
    ("GET", "/nodefarm/runs/x/events", None),
    ("GET", "/metrics", None),
]


def prompt() -> dict:
    return {"1": {"class_type": "TestSlowValue", "inputs": {"value": random.random(), "seconds": 0.0, "tag": "down"}},
            "2": {"class_type": "TestFloatOutput", "inputs": {"value": ["1", 0]}}}


def test_routes_answer_503_while_the_state_redis_is_down_and_serve_again_after(tmp_path: Path) -> None:
    farm = Farm(tmp_path, workers=1)
    try:
        farm.state.stop()
        seen: dict[str, int] = {}
        for method, path, body in ROUTES:
            started = time.time()
            res = requests.request(method, farm.url + path, json={"prompt": prompt()} if body == "PROMPT" else body, timeout=30,
                                   headers={"Content-Type": "application/json"} if body is not None else {})
            assert time.time() - started < 10, f"{method} {path} took {time.time() - started:.1f} s"
            seen[f"{method} {path}"] = res.status_code
            assert res.status_code != 500 and res.status_code < 600, (method, path, res.status_code, res.text[:300])
            if res.status_code == 503:
                assert res.headers["Retry-After"] == "2"
                error = res.json()["error"]
                assert error["type"] == "farm_unavailable" and "Redis" in error["message"], res.text
        assert seen["POST /prompt"] == 503 and seen["GET /queue"] == 503, seen
        assert requests.get(farm.url + "/object_info/EmptyImage", timeout=10).status_code == 200  # needs no Redis
        farm.state.restart(down_s=0.0)  # back, empty (this one keeps nothing, not even the farm's functions)
        first = farm.post(prompt())  # 503 while the functions are loaded again (here or by a heartbeat), or taken
        assert first.status_code in (200, 503), first.text
        if first.status_code == 503:
            assert "set up again" in first.json()["error"]["message"] or "not reachable" in first.json()["error"]["message"]
        entry = farm.run(prompt(), timeout=90)
        assert entry["status"]["status_str"] == "success"
    finally:
        farm.stop()
