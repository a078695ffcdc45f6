"""Live events: feature_flags handshake, binary preview frames per negotiated flag, replay."""

from __future__ import annotations

import json
import struct
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
