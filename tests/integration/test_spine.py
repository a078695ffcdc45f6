"""The spine, end to end on a real farm: pixels, cache, re-runs, history, files, errors."""

from __future__ import annotations

import io
import time
import uuid

import pytest
import requests
from PIL import Image

from tests.farm import Farm, WsClient

pytestmark = pytest.mark.integration


def image_prompt(color: int = 0x102030, prefix: str = "spine") -> dict:
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 4, "batch_size": 2, "color": color}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": prefix}},
    }


def executed_nodes(messages: list[dict]) -> list[str]:
    return [m["data"]["node"] for m in messages if m["type"] == "executing" and m["data"]["node"] is not None]


def test_image_workflow_returns_the_right_pixels_from_the_api_host(farm: Farm) -> None:
    prefix = f"px_{uuid.uuid4().hex[:6]}"
    entry = farm.run(image_prompt(0x102030, prefix))
    assert entry["status"]["status_str"] == "success"
    images = entry["outputs"]["3"]["images"]
    assert [i["filename"] for i in images] == [f"{prefix}_00001_.png", f"{prefix}_00002_.png"]
    for info in images:
        png = Image.open(io.BytesIO(farm.image(info)))
        assert png.size == (8, 4)
        assert png.convert("RGB").getpixel((3, 2)) == (255 - 0x10, 255 - 0x20, 255 - 0x30)
        assert '"class_type": "EmptyImage"' in png.info["prompt"]
        # the worker saved it in its own folder; the API host has it in its output folder
        assert (farm.api_dir / "output" / info["filename"]).is_file()


def test_counters_continue_and_never_collide_across_workers(farm: Farm) -> None:
    prefix = f"ctr_{uuid.uuid4().hex[:6]}"
    pids = [farm.submit(image_prompt(0x010101 * (i + 1), prefix)) for i in range(4)]
    names = [i["filename"] for pid in pids for i in farm.wait(pid)["outputs"]["3"]["images"]]
    assert sorted(names) == [f"{prefix}_{n:05}_.png" for n in range(1, 9)]


def test_full_cache_resubmission_executes_nothing_and_lists_images(farm: Farm) -> None:
    prompt = image_prompt(0x445566, f"cache_{uuid.uuid4().hex[:6]}")
    first = farm.run(prompt)
    ws = WsClient(farm.url)
    pid = farm.submit(prompt, client_id=ws.client_id)
    messages = ws.until_done(pid)
    ws.close()
    assert executed_nodes(messages) == []
    cached = next(m for m in messages if m["type"] == "execution_cached")
    assert sorted(cached["data"]["nodes"]) == ["1", "2", "3"]
    executed = [m for m in messages if m["type"] == "executed"]
    assert executed and executed[0]["data"]["output"] == first["outputs"]["3"]
    types = [m["type"] for m in messages if m["type"] != "progress_state"]
    assert types[-3:] == ["execution_success", "status", "executing"]
    second = farm.wait(pid)
    assert second["outputs"] == first["outputs"]
    assert second["status"]["status_str"] == "success"


def test_changing_one_input_reruns_only_what_depends_on_it(farm: Farm) -> None:
    prompt = image_prompt(0x778899, f"dep_{uuid.uuid4().hex[:6]}")
    farm.run(prompt)
    prompt["3"]["inputs"]["filename_prefix"] += "_b"
    ws = WsClient(farm.url)
    pid = farm.submit(prompt, client_id=ws.client_id)
    assert executed_nodes(ws.until_done(pid)) == ["3"]
    ws.messages.clear()
    prompt["1"]["inputs"]["color"] = 0x111111
    pid = farm.submit(prompt, client_id=ws.client_id)
    assert executed_nodes(ws.until_done(pid)) == ["1", "2", "3"]
    ws.close()


def test_identical_nodes_in_one_prompt_are_computed_once(farm: Farm) -> None:
    color = 0x123456 + int(time.time()) % 1000
    prompt = {
        "a": {"class_type": "EmptyImage", "inputs": {"width": 4, "height": 4, "batch_size": 1, "color": color}},
        "b": {"class_type": "EmptyImage", "inputs": {"width": 4, "height": 4, "batch_size": 1, "color": color}},
        "c": {"class_type": "ImageBatch", "inputs": {"image1": ["a", 0], "image2": ["b", 0]}},
        "d": {"class_type": "PreviewImage", "inputs": {"images": ["c", 0]}},
    }
    ws = WsClient(farm.url)
    pid = farm.submit(prompt, client_id=ws.client_id)
    ran = executed_nodes(ws.until_done(pid))
    ws.close()
    assert sorted(ran) in (["a", "c", "d"], ["b", "c", "d"])
    entry = farm.wait(pid)
    assert len(entry["outputs"]["d"]["images"]) == 2
    assert entry["outputs"]["d"]["images"][0]["type"] == "temp"


def test_execution_error_has_comfyui_fields_and_ends_the_run(farm: Farm) -> None:
    ws = WsClient(farm.url)
    prompt = {
        "1": {"class_type": "TestRaise", "inputs": {"value": 2.5}},
        "2": {"class_type": "TestFloatOutput", "inputs": {"value": ["1", 0]}},
    }
    pid = farm.submit(prompt, client_id=ws.client_id)
    messages = ws.until_done(pid)
    ws.close()
    error = next(m["data"] for m in messages if m["type"] == "execution_error")
    assert set(error) == {
        "prompt_id", "node_id", "node_type", "executed", "exception_message", "exception_type",
        "traceback", "current_inputs", "current_outputs", "timestamp",
    }
    assert error["node_id"] == "1" and error["node_type"] == "TestRaise"
    assert error["exception_type"] == "ValueError"
    assert error["exception_message"] == "broken on purpose (2.5)\n"
    assert error["current_inputs"] == {"value": [2.5]}
    assert error["traceback"]
    types = [m["type"] for m in messages if m["type"] != "progress_state"]
    assert types[-3:] == ["execution_error", "status", "executing"]
    entry = farm.wait(pid)
    assert entry["status"]["status_str"] == "error" and entry["status"]["completed"] is False


def test_uploaded_image_is_loaded_by_a_worker_on_another_filesystem(farm: Farm) -> None:
    buf = io.BytesIO()
    Image.new("RGBA", (5, 3), (10, 200, 30, 128)).save(buf, format="PNG")
    name = f"up_{uuid.uuid4().hex[:6]}.png"
    res = requests.post(farm.url + "/upload/image", files={"image": (name, buf.getvalue(), "image/png")}, timeout=10)
    assert res.status_code == 200 and res.json() == {"name": name, "subfolder": "", "type": "input"}
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": name}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "loaded"}},
    }
    entry = farm.run(prompt)
    png = Image.open(io.BytesIO(farm.image(entry["outputs"]["3"]["images"][0]))).convert("RGB")
    # 1 - x in float32, then ComfyUI's truncating uint8 conversion: 255 - 200 lands on 54
    assert png.size == (5, 3)
    assert all(abs(a - b) <= 1 for a, b in zip(png.getpixel((0, 0)), (245, 55, 225), strict=True))


def test_history_paging_and_queue_routes(farm: Farm) -> None:
    pids = [farm.submit(image_prompt(0x202020 + i, f"pg{i}")) for i in range(3)]
    for pid in pids:
        farm.wait(pid)
    everything = requests.get(farm.url + "/history", timeout=5).json()
    done = list(everything)[-3:]  # completion order: runs execute side by side
    assert sorted(done) == sorted(pids)
    last_two = requests.get(farm.url + "/api/history", params={"max_items": 2}, timeout=5).json()
    assert list(last_two) == done[1:]
    total = len(everything)
    window = requests.get(farm.url + "/history", params={"max_items": 1, "offset": total - 3}, timeout=5).json()
    assert list(window) == [done[0]]
    assert requests.get(farm.url + "/history", params={"offset": total}, timeout=5).json() == {}
    requests.post(farm.url + "/history", json={"delete": [done[0]]}, timeout=5)
    assert requests.get(f"{farm.url}/history/{done[0]}", timeout=5).json() == {}
    queue = requests.get(farm.url + "/queue", timeout=5).json()
    assert set(queue) == {"queue_running", "queue_pending"}
    assert requests.get(farm.url + "/prompt", timeout=5).json() == {"exec_info": {"queue_remaining": 0}}


def test_system_stats_lists_every_live_worker(farm: Farm) -> None:
    stats = requests.get(farm.url + "/api/system_stats", timeout=5).json()
    names = [d["name"] for d in stats["devices"]]
    assert any("w0@test" in n for n in names) and any("w1@test" in n for n in names)
    assert {"vram_total", "vram_free", "type", "index"} <= set(stats["devices"][0])
