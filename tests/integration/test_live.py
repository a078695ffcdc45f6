"""Live events: feature_flags handshake, binary preview frames per negotiated flag, replay."""

from __future__ import annotations

import json
import struct
import time
import uuid

import pytest
import requests

from tests.farm import Farm, WsClient

pytestmark = pytest.mark.integration


def preview_prompt(value: float) -> dict:
    return {
        "1": {"class_type": "TestPreview", "inputs": {"value": value}},
        "2": {"class_type": "TestFloatOutput", "inputs": {"value": ["1", 0]}},
    }


def test_feature_flags_handshake_and_preview_frames_per_client(farm: Farm) -> None:
    flagged, plain = WsClient(farm.url), WsClient(farm.url)
    flagged.ws.send(json.dumps({"type": "feature_flags", "data": {"supports_preview_metadata": True}}))
    reply = flagged.until(lambda m: isinstance(m, dict) and m["type"] == "feature_flags")[-1]
    assert reply["data"]["supports_preview_metadata"] is True and reply["data"]["max_upload_size"] > 0
    # no client_id: previews (and progress) are broadcast to every socket, as in ComfyUI
    pid = farm.submit(preview_prompt(uuid.uuid4().int % 1000 / 7))
    got_flagged = flagged.until(lambda m: isinstance(m, bytes))[-1]
    got_plain = plain.until(lambda m: isinstance(m, bytes))[-1]
    farm.wait(pid)
    flagged.close()
    plain.close()
    (event,) = struct.unpack(">I", got_flagged[:4])
    assert event == 4
    (n,) = struct.unpack(">I", got_flagged[4:8])
    meta = json.loads(got_flagged[8 : 8 + n])
    assert meta["node_id"] == "1" and meta["prompt_id"] == pid and meta["image_type"] == "image/png"
    assert meta["display_node_id"] == "1" and meta["real_node_id"] == "1" and meta["parent_node_id"] is None
    assert got_flagged[8 + n : 8 + n + 4] == b"\x89PNG"
    event, image_type = struct.unpack(">II", got_plain[:8])
    assert (event, image_type) == (1, 2) and got_plain[8:12] == b"\x89PNG"


def test_events_of_a_run_are_replayable_after_a_reconnect(farm: Farm) -> None:
    ws = WsClient(farm.url)
    pid = farm.submit(preview_prompt(uuid.uuid4().int % 1000 / 3), client_id=ws.client_id)
    live = [m for m in ws.until_done(pid) if isinstance(m, dict)]
    ws.close()
    replayed = requests.get(f"{farm.url}/nodefarm/runs/{pid}/events", timeout=5).json()
    kinds = [e["type"] for e in replayed if e["type"] != "status"]
    assert kinds == [m["type"] for m in live if m["type"] != "status"]
    # progress_state frames replay whole (ComfyUI's shape), not as stored deltas
    last_live = [m["data"] for m in live if m["type"] == "progress_state"][-1]
    last_replayed = [e["data"] for e in replayed if e["type"] == "progress_state"][-1]
    assert last_replayed == last_live and set(last_live["nodes"]) == {"1", "2"}
    middle = replayed[len(replayed) // 2]["id"]
    newer = requests.get(f"{farm.url}/nodefarm/runs/{pid}/events", params={"after": middle}, timeout=5).json()
    assert [e["id"] for e in newer] == [e["id"] for e in replayed[len(replayed) // 2 + 1 :]]


def chain_prompt(value: float, length: int) -> dict:
    prompt: dict = {"0": {"class_type": "PrimitiveFloat", "inputs": {"value": value}}}
    for i in range(1, length):
        prompt[str(i)] = {"class_type": "MathOperation", "inputs": {"a": [str(i - 1), 0], "b": 1.0, "operation": "add"}}
    prompt[str(length)] = {"class_type": "TestFloatOutput", "inputs": {"value": [str(length - 1), 0]}}
    return prompt


def rebuild(frames: list[dict]) -> list[dict]:
    """What the editor extension does with nodefarm.progress_delta: ComfyUI's full frames, in order."""
    registry: dict[str, dict] = {}
    out = []
    for data in frames:
        registry.setdefault(data["prompt_id"], {}).update(data["nodes"])
        out.append({"prompt_id": data["prompt_id"], "nodes": dict(registry[data["prompt_id"]])})
    return out


def test_a_client_asking_for_progress_deltas_rebuilds_comfyuis_frames_from_far_fewer_bytes(farm: Farm) -> None:
    plain, delta = WsClient(farm.url), WsClient(farm.url)
    delta.ws.send(json.dumps({"type": "feature_flags", "data": {}}))
    delta.ws.send(json.dumps({"type": "nodefarm.flags", "data": {"progress_delta": True}}))
    delta.until(lambda m: isinstance(m, dict) and m["type"] == "feature_flags")
    # no client id: progress is broadcast, so both sockets see the same run
    pid = farm.submit(chain_prompt(uuid.uuid4().int % 1000 / 7, 30))
    farm.wait(pid)
    def last(kind: str):  # noqa: ANN202
        return lambda m: (isinstance(m, dict) and m["type"] == kind and m["data"]["prompt_id"] == pid
                          and m["data"]["nodes"].get("30", {}).get("state") == "finished")

    seen_plain = plain.until(last("progress_state"))
    seen_delta = delta.until(last("nodefarm.progress_delta"))
    plain.close()
    delta.close()
    full = [m["data"] for m in seen_plain if m["type"] == "progress_state" and m["data"]["prompt_id"] == pid]
    deltas = [m["data"] for m in seen_delta if m["type"] == "nodefarm.progress_delta" and m["data"]["prompt_id"] == pid]
    assert not [m for m in seen_delta if isinstance(m, dict) and m["type"] == "progress_state"]
    assert rebuild(deltas) == full  # frame for frame, what a plain ComfyUI client gets
    assert all(len(d["nodes"]) == 1 for d in deltas[1:])
    assert len(json.dumps(deltas)) * 5 < len(json.dumps(full))


def test_a_delta_client_connecting_mid_run_first_gets_the_whole_registry(farm: Farm) -> None:
    plain = WsClient(farm.url)
    pid = farm.submit(chain_prompt(uuid.uuid4().int % 1000 / 11, 120), client_id=plain.client_id)
    plain.until(lambda m: isinstance(m, dict) and m["type"] == "executing" and m["data"]["node"] == "20")
    late = WsClient(farm.url, client_id=plain.client_id)  # a reconnect: replaces the first socket
    late.ws.send(json.dumps({"type": "nodefarm.flags", "data": {"progress_delta": True}}))
    late.until_done(pid)
    late.close()
    plain.close()
    deltas = [m["data"] for m in late.messages if isinstance(m, dict) and m["type"] == "nodefarm.progress_delta"]
    first = deltas[0]["nodes"]
    assert "0" in first and first["0"]["state"] == "finished" and len(first) > 2
    assert set(rebuild(deltas)[-1]["nodes"]) == {str(i) for i in range(121)}


def test_socketio_clients_choose_full_frames_or_deltas(farm: Farm) -> None:
    import socketio

    got: dict[str, list[tuple[str, dict]]] = {"full": [], "delta": []}
    clients = []
    for kind in ("full", "delta"):
        sio = socketio.Client()
        sio.on("progress_state", lambda data, kind=kind: got[kind].append(("progress_state", data)))
        sio.on("nodefarm.progress_delta", lambda data, kind=kind: got[kind].append(("delta", data)))
        sio.connect(farm.url, auth={"clientId": uuid.uuid4().hex, "progress_delta": kind == "delta"}, wait_timeout=10)
        clients.append(sio)
    try:
        pid = farm.submit(chain_prompt(uuid.uuid4().int % 1000 / 13, 10))
        farm.wait(pid)
        deadline = time.time() + 10
        while time.time() < deadline and not any(d["prompt_id"] == pid and d["nodes"].get("10", {}).get("state") == "finished"
                                                 for _k, d in got["delta"]):
            time.sleep(0.05)
    finally:
        for sio in clients:
            sio.disconnect()
    full = [d for k, d in got["full"] if k == "progress_state" and d["prompt_id"] == pid]
    deltas = [d for k, d in got["delta"] if k == "delta" and d["prompt_id"] == pid]
    assert {k for k, _ in got["full"]} == {"progress_state"} and {k for k, _ in got["delta"]} == {"delta"}
    assert rebuild(deltas)[-1] == full[-1] and len(full[-1]["nodes"]) == 11


def drain(client: WsClient, seconds: float) -> list[object]:
    """Every message ``client`` gets within ``seconds``."""
    import websocket

    deadline = time.time() + seconds
    while time.time() < deadline:
        client.ws.settimeout(max(0.05, deadline - time.time()))
        try:
            raw = client.ws.recv()
        except websocket.WebSocketTimeoutException:
            break
        client.messages.append(json.loads(raw) if isinstance(raw, str) else raw)
    return client.messages


def test_a_client_sees_only_its_own_runs_and_the_broadcasts(farm: Farm) -> None:
    """A run submitted with a client id: its events go to that client alone; another /ws client and
    another Socket.IO client get only what ComfyUI sends to everyone (``status``)."""
    import socketio

    owner, other = WsClient(farm.url), WsClient(farm.url)
    sio_events: list[tuple[str, object]] = []
    sio = socketio.Client()
    sio.on("*", lambda event, data: sio_events.append((event, data)))
    sio.connect(farm.url, auth={"clientId": uuid.uuid4().hex}, wait_timeout=10)
    try:
        pid = farm.submit(preview_prompt(uuid.uuid4().int % 1000 / 11), client_id=owner.client_id)
        mine = owner.until_done(pid)
        farm.wait(pid)
        theirs = drain(other, 1.5)  # anything misrouted would have arrived by now
    finally:
        sio.disconnect()
        owner.close()
        other.close()
    assert {"execution_start", "executing", "executed", "execution_success"} <= {m["type"] for m in mine if isinstance(m, dict)}
    assert any(isinstance(m, bytes) for m in owner.messages)  # the preview
    assert {m["type"] for m in theirs if isinstance(m, dict)} <= {"status"}, [m for m in theirs if isinstance(m, dict)]
    assert not any(isinstance(m, bytes) for m in theirs)
    assert {event for event, _ in sio_events} <= {"status"}, sio_events[:5]
    assert pid not in json.dumps([m for m in theirs if isinstance(m, dict)]) + json.dumps([d for _e, d in sio_events])
