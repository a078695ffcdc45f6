"""No pickle anywhere: every value in both Redis roles, during and after real runs, is JSON, our
tensor buffers, PNG bytes or plain text; Celery's task messages are JSON (issue 9, point 8)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator

import pytest
import redis

from tests.farm import Farm, marks

pytestmark = pytest.mark.integration

PICKLE_PROTOCOLS = (2, 3, 4, 5)


def looks_pickled(value: bytes) -> bool:
    return len(value) > 2 and value[0] == 0x80 and value[1] in PICKLE_PROTOCOLS


def values(r: redis.Redis) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) for every value stored under every key, whatever the key's type."""
    for key in r.scan_iter(count=1000):
        kind = r.type(key).decode()
        if kind == "string":
            found = [r.get(key) or b""]
        elif kind == "hash":
            found = [v for kv in r.hgetall(key).items() for v in kv]
        elif kind == "list":
            found = r.lrange(key, 0, -1)
        elif kind == "set":
            found = list(r.smembers(key))
        elif kind == "zset":
            found = r.zrange(key, 0, -1)
        elif kind == "stream":
            found = [v for _, fields in r.xrange(key) for kv in fields.items() for v in kv]
        else:
            found = []
        for value in found:
            yield key, value


def check_message(key: bytes, value: bytes) -> int:
    """A Celery/kombu message: JSON whose body is JSON (base64-wrapped as kombu does); in a queue as
    is, in the unacked hash as ``[message, exchange, routing key]``. 1 if it was one."""
    try:
        message = json.loads(value)
    except ValueError:
        return 0
    if isinstance(message, list) and message and isinstance(message[0], dict):
        message = message[0]
    if not isinstance(message, dict) or "content-type" not in message:
        return 0
    assert message["content-type"] == "application/json", (key, message["content-type"])
    body = message["body"]
    raw = base64.b64decode(body) if message.get("properties", {}).get("body_encoding") == "base64" else body.encode()
    assert not looks_pickled(raw)
    json.loads(raw)
    return 1


def scan(farm: Farm) -> tuple[int, int]:
    seen = messages = 0
    for r in (farm.r, redis.Redis.from_url(farm.results.url)):
        for key, value in values(r):
            seen += 1
            assert not looks_pickled(value), key
            if value[:1] in (b"{", b"[") and b"content-type" in value:
                messages += check_message(key, value)
    return seen, messages


def test_the_detector_knows_a_pickle() -> None:
    import pickle

    assert all(looks_pickled(pickle.dumps({"a": [1.5]}, protocol=p)) for p in PICKLE_PROTOCOLS)
    assert not looks_pickled(json.dumps({"a": 1}).encode()) and not looks_pickled(b"\x89PNG\r\n")


def test_no_value_in_either_redis_is_a_pickle(farm: Farm) -> None:
    tag = f"nopickle-{time.time_ns()}"
    # three slow runs on two workers: one node task waits in a queue, two sit in the unacked set
    slow = [farm.submit({
        "1": {"class_type": "TestSlowValue", "inputs": {"value": 2.5 + i, "seconds": 2.0, "tag": tag}},
        "2": {"class_type": "TestFloatOutput", "inputs": {"value": ["1", 0]}},
    }) for i in range(3)]
    queued = [farm.submit({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 16, "height": 16, "batch_size": 1, "color": i}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "nopickle"}},
    }) for i in range(4)]
    deadline = time.time() + 30
    while not marks(farm, tag) and time.time() < deadline:
        time.sleep(0.05)
    during, messages = scan(farm)  # runs in flight: task messages in the queues, run state, events
    deadline = time.time() + 4
    while not messages and time.time() < deadline:  # a message is read off its queue in a blink
        time.sleep(0.05)
        during, messages = scan(farm)
    for pid in [*slow, *queued]:
        assert farm.wait(pid)["status"]["status_str"] == "success"
    after, _ = scan(farm)  # results (tensors, images), history, files
    assert during > 50 and after > 50
    assert messages >= 1, "task messages were queued or unacked while the runs were in flight"
