"""The dashboard's server side, pure parts (api/dashboard.py): a finished run as the runs list shows it,
totals per host (each GPU once, a host's RAM once), and binary preview events for the page."""

from __future__ import annotations

import json
import struct

from api import dashboard
from worker import events

PROMPT = {"1": {"class_type": "EmptyImage", "inputs": {}}, "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
          "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0]}}}


def entry(messages: list, outputs: dict | None = None, status_str: str = "success") -> dict:
    return {"prompt": [7, "p", PROMPT, {"client_id": "c1"}, ["3"]], "outputs": outputs or {},
            "status": {"status_str": status_str, "completed": status_str == "success", "messages": messages}}


def test_a_finished_run_summary_counts_cached_nodes_and_finds_its_image() -> None:
    image = {"filename": "a.png", "subfolder": "", "type": "output"}
    got = dashboard.run_summary("p", entry([["execution_start", {"timestamp": 1000}],
                                            ["execution_cached", {"nodes": ["1"], "timestamp": 1001}],
                                            ["execution_success", {"timestamp": 1500}]], {"3": {"images": [image]}}))
    assert got["status"] == "done" and got["duration_ms"] == 500
    assert (got["nodes"], got["cached"], got["executed"]) == (3, 1, 2)
    assert got["image"] == image and got["submitter"] == "c1" and got["error"] is None


def test_a_failed_and_a_cancelled_run_summary() -> None:
    failed = dashboard.run_summary("p", entry([["execution_start", {"timestamp": 1}], ["execution_error", {
        "timestamp": 2, "node_id": "2", "node_type": "ImageInvert", "exception_message": "boom"}]], status_str="error"))
    assert failed["status"] == "failed" and failed["executed"] is None
    assert failed["error"] == {"node": "2", "type": "ImageInvert", "message": "boom"}
    cancelled = dashboard.run_summary("p", entry([["execution_start", {"timestamp": 1}],
                                                  ["execution_interrupted", {"timestamp": 3}]], status_str="error"))
    assert cancelled["status"] == "cancelled" and cancelled["duration_ms"] == 2


def test_host_totals_count_each_gpu_once_and_the_hosts_ram_once() -> None:
    cpu = {"type": "cpu", "name": "cpu", "index": None, "vram_total": 100, "vram_free": 40}
    gpu0 = {"type": "cuda", "name": "cuda:0 H200", "index": 0, "vram_total": 1000, "vram_free": 500}
    found = [{"host": "a", "state": "busy", "devices": [cpu]}, {"host": "a", "state": "idle", "devices": [cpu]},
             {"host": "b", "state": "idle", "devices": [gpu0]}, {"host": "b", "state": "busy", "devices": [gpu0]}]
    assert dashboard.hosts(found) == [
        {"host": "a", "workers": 2, "busy": 1, "memory_total": 100, "memory_free": 40},
        {"host": "b", "workers": 2, "busy": 1, "memory_total": 1000, "memory_free": 500},
    ]


def test_preview_events_become_node_mime_and_image() -> None:
    meta = json.dumps({"node_id": "5", "image_type": "image/png"}).encode()
    with_meta = struct.pack(">I", len(meta)) + meta + b"PNGDATA"
    assert dashboard._preview(events.PREVIEW_IMAGE_WITH_METADATA, with_meta) == {"node": "5", "mime": "image/png", "image": b"PNGDATA"}
    assert dashboard._preview(events.PREVIEW_IMAGE, struct.pack(">I", 1) + b"JPG") == {"node": None, "mime": "image/jpeg", "image": b"JPG"}
    assert dashboard._preview(events.PREVIEW_IMAGE_WITH_METADATA, b"\x00\x00") is None  # damaged: dropped
    assert dashboard._preview(events.UNENCODED_PREVIEW_IMAGE, b"raw") is None
