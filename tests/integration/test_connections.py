"""Connections: malformed websocket handshakes, half-sent requests and stalled bodies get an answer or
are dropped within the time limits, never a 500 or a hang; websockets idle past those limits live on;
pages carry their security headers."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import websocket

from tests.farm import Farm

pytestmark = pytest.mark.integration

HEADER_TIMEOUT_S = 1.5
BODY_TIMEOUT_S = 2.0
KEY = "dGhlIHNhbXBsZSBub25jZQ=="


@pytest.fixture(scope="module")
def timed_farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    f = Farm(Path(tmp_path_factory.mktemp("conn")), workers=0,
             env={"NODEFARM_HEADER_TIMEOUT": str(HEADER_TIMEOUT_S), "NODEFARM_BODY_TIMEOUT": str(BODY_TIMEOUT_S)})
    yield f
    f.stop()


def raw(farm: Farm, data: bytes, wait_s: float = 10.0) -> tuple[bytes, float]:
    """Send ``data`` on a new connection; what comes back until the server closes it (or ``wait_s``)."""
    s = socket.create_connection(("127.0.0.1", farm.port))
    s.settimeout(wait_s)
    start = time.monotonic()
    s.sendall(data)
    got = b""
    try:
        while chunk := s.recv(65536):
            got += chunk
            if b"\r\n\r\n" in got and not got.startswith(b"HTTP/1.1 101"):
                break
    except TimeoutError:
        pass
    finally:
        s.close()
    return got, time.monotonic() - start


def upgrade(extra: str, path: str = "/ws", version: str = "HTTP/1.1") -> bytes:
    return f"GET {path} {version}\r\nHost: x\r\n{extra}\r\n".encode()


UPGRADE = "Upgrade: websocket\r\nConnection: Upgrade\r\n"


@pytest.mark.parametrize(("headers", "version", "status"), [
    ("", "HTTP/1.1", 400),  # a plain GET
    (UPGRADE + "Sec-WebSocket-Version: 13\r\n", "HTTP/1.1", 400),  # no key
    (UPGRADE + f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 7\r\n", "HTTP/1.1", 426),
    (UPGRADE + f"Sec-WebSocket-Key: {KEY}\r\n", "HTTP/1.1", 426),  # no version
    ("Upgrade: websocket\r\n" + f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n", "HTTP/1.1", 400),
    ("Connection: Upgrade\r\n" + f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n", "HTTP/1.1", 400),
    ("Upgrade: h2c\r\nConnection: Upgrade\r\n", "HTTP/1.1", 400),
    (UPGRADE + "Sec-WebSocket-Key: !!!\r\nSec-WebSocket-Version: 13\r\n", "HTTP/1.1", 400),
    (UPGRADE + "Sec-WebSocket-Key: c2hvcnQ=\r\nSec-WebSocket-Version: 13\r\n", "HTTP/1.1", 400),  # 5 bytes
    (UPGRADE + f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n", "HTTP/1.0", 400),
], ids=["plain-get", "no-key", "version-7", "no-version", "no-connection", "no-upgrade", "h2c", "bad-key",
        "short-key", "http-1.0"])
def test_malformed_websocket_handshakes_get_a_4xx_at_once(timed_farm: Farm, headers: str, version: str,
                                                          status: int) -> None:
    for path in ("/ws", "/api/ws"):
        got, took = raw(timed_farm, upgrade(headers, path, version))
        assert got.startswith(f"HTTP/1.1 {status} ".encode()), got[:200]
        assert took < 1.0, took
    if status == 426:
        assert b"Sec-WebSocket-Version: 13" in got


def test_a_half_sent_request_is_dropped_after_the_header_timeout(timed_farm: Farm) -> None:
    got, took = raw(timed_farm, b"GET /system_stats HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
    assert HEADER_TIMEOUT_S * 0.8 < took < HEADER_TIMEOUT_S + 3, took
    assert not got.startswith(b"HTTP/1.1 2"), got[:200]


def test_a_stalled_body_is_dropped_and_others_are_served_meanwhile(timed_farm: Farm) -> None:
    head = b"POST /prompt HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"pro"
    s = socket.create_connection(("127.0.0.1", timed_farm.port))
    s.settimeout(15)
    start = time.monotonic()
    s.sendall(head)
    assert requests.get(timed_farm.url + "/queue", timeout=5).status_code == 200  # not blocked by it
    got = b""
    try:
        while chunk := s.recv(65536):
            got += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    took = time.monotonic() - start
    s.close()
    assert took < BODY_TIMEOUT_S + HEADER_TIMEOUT_S + 4, took
    assert not got.startswith(b"HTTP/1.1 2"), got[:200]
    assert not got.startswith(b"HTTP/1.1 5"), got[:200]
    running = requests.get(timed_farm.url + "/queue", timeout=5).json()
    assert running == {"queue_running": [], "queue_pending": []}  # nothing half-made was queued


def test_a_websocket_idle_past_every_timeout_still_gets_events(timed_farm: Farm) -> None:
    ws = websocket.create_connection(f"ws://127.0.0.1:{timed_farm.port}/ws?clientId=idle-client", timeout=10)
    try:
        first = json.loads(ws.recv())
        assert first["type"] == "status"
        time.sleep(HEADER_TIMEOUT_S + BODY_TIMEOUT_S + 1)
        res = requests.post(timed_farm.url + "/prompt", timeout=10, json={
            "client_id": "idle-client",
            "prompt": {"1": {"class_type": "PrimitiveFloat", "inputs": {"value": 1.0}},
                       "2": {"class_type": "TestFloatOutput", "inputs": {"value": ["1", 0]}}}})
        assert res.status_code == 200, res.text
        got = json.loads(ws.recv())  # no worker runs it: the queue's status update is enough
        assert got["type"] == "status", got
    finally:
        ws.close()
        requests.post(timed_farm.url + "/queue", json={"clear": True}, timeout=5)
        requests.post(timed_farm.url + "/interrupt", json={}, timeout=5)


def test_pages_carry_a_policy_and_json_is_never_sniffed(timed_farm: Farm) -> None:
    for path in ("/", "/nodefarm/"):
        res = requests.get(timed_farm.url + path, timeout=10)
        assert res.status_code == 200
        policy = res.headers["Content-Security-Policy"]
        assert "frame-ancestors 'self'" in policy and "object-src 'none'" in policy
        assert "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
        assert "'sha256-" in policy  # the page's own inline script, by hash
        assert res.headers["X-Frame-Options"] == "SAMEORIGIN"
    api = requests.get(timed_farm.url + "/queue", timeout=10)
    assert api.headers["X-Content-Type-Options"] == "nosniff"
