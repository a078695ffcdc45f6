"""The corpus of issue 9's table: malformed requests to every route family that answered 500 before.

Each answers a 4xx (a 400 in ComfyUI's error shape where the body or query does not fit the route's
schema), promptly; the farm still runs a prompt afterwards. The fuzz tier (test_fuzz.py) covers the
same routes with generated inputs; these are the named cases, kept so they stay fixed.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
import requests

from tests.farm import Farm

pytestmark = pytest.mark.integration


def png(size: tuple[int, int] = (4, 4), mode: str = "RGBA") -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, format="PNG")
    return buffer.getvalue()


CASES: list[tuple[str, str, str, dict[str, Any]]] = [
    # /view
    ("view-no-filename", "GET", "/view", {"params": {}}),
    ("view-bad-type", "GET", "/view", {"params": {"filename": "x.png", "type": "models"}}),
    ("view-nul", "GET", "/view", {"params": {"filename": "x\x00.png"}}),
    ("view-bad-channel", "GET", "/view", {"params": {"filename": "x.png", "channel": "zz"}}),
    ("view-preview-junk", "GET", "/view", {"params": {"filename": "x.png", "preview": "webp;" + "9" * 80}}),
    ("view-subfolder-nul", "GET", "/view", {"params": {"filename": "x.png", "subfolder": "\x00"}}),
    ("view-long-name", "GET", "/view", {"params": {"filename": "x" * 5000}}),
    # /userdata, /v2/userdata
    ("userdata-no-dir", "GET", "/userdata", {"params": {}}),
    ("userdata-dir-nul", "GET", "/userdata", {"params": {"dir": "a\x00b"}}),
    ("userdata-file-nul", "GET", "/userdata/a%00b.json", {}),
    ("userdata-overwrite-junk", "POST", "/userdata/x.json", {"params": {"overwrite": "x" * 100}, "data": b"{}"}),
    ("userdata-move-onto-file", "POST", "/userdata/a.json/move/a.json%2Fb.json", {"data": b""}),
    ("v2-userdata-nul", "GET", "/v2/userdata", {"params": {"path": "\x00"}}),
    # /settings
    ("settings-list", "POST", "/settings", {"json": [1, 2]}),
    ("settings-nan", "POST", "/settings", {"data": b'{"a": NaN}'}),
    ("settings-not-json", "POST", "/settings", {"data": b"{nope"}),
    ("setting-nan", "POST", "/settings/Comfy.X", {"data": b"NaN"}),
    ("setting-deep", "POST", "/settings/Comfy.X", {"data": b"[" * 500 + b"]" * 500}),
    # uploads
    ("upload-no-file", "POST", "/upload/image", {"data": {"type": "input"}}),
    ("upload-bad-type", "POST", "/upload/image", {"files": {"image": ("a.png", b"x")}, "data": {"type": "models"}}),
    ("upload-dotdot-name", "POST", "/upload/image", {"files": {"image": ("..", b"x")}}),
    ("mask-no-ref", "POST", "/upload/mask", {"files": {"image": ("m.png", b"x")}}),
    ("mask-ref-not-json", "POST", "/upload/mask", {"files": {"image": ("m.png", b"x")}, "data": {"original_ref": "{x"}}),
    ("mask-ref-list", "POST", "/upload/mask", {"files": {"image": ("m.png", b"x")}, "data": {"original_ref": "[1]"}}),
    # /queue, /history, /interrupt, /free
    ("queue-delete-text", "POST", "/queue", {"json": {"delete": "abc"}}),
    ("queue-delete-objects", "POST", "/queue", {"json": {"delete": [{"a": 1}]}}),
    ("queue-list-body", "POST", "/queue", {"json": [1]}),
    ("history-max-text", "GET", "/history", {"params": {"max_items": "many"}}),
    ("history-offset-text", "GET", "/history", {"params": {"offset": "x"}}),
    ("history-delete-text", "POST", "/history", {"json": {"delete": 5}}),
    ("interrupt-list", "POST", "/interrupt", {"json": [1]}),
    ("interrupt-pid-object", "POST", "/interrupt", {"json": {"prompt_id": {"a": 1}}}),
    ("free-list", "POST", "/free", {"json": [True]}),
    ("free-not-json", "POST", "/free", {"data": b"{"}),
    # jobs
    ("jobs-limit-text", "GET", "/api/jobs", {"params": {"limit": "ten"}}),
    ("jobs-sort-junk", "GET", "/api/jobs", {"params": {"sort_by": "x"}}),
    ("jobs-cancel-text", "POST", "/api/jobs/cancel", {"json": {"job_ids": "abc"}}),
    ("jobs-cancel-list-body", "POST", "/api/jobs/cancel", {"json": ["abc"]}),
    # internal and events
    ("logs-subscribe-empty", "PATCH", "/internal/logs/subscribe", {"json": {}}),
    ("files-bad-type", "GET", "/internal/files/models", {}),
    ("events-bad-cursor", "GET", "/nodefarm/runs/x/events", {"params": {"after": "not-a-stream-id"}}),
]


@pytest.mark.parametrize(("method", "path", "kwargs"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_requests_get_a_prompt_4xx(farm: Farm, method: str, path: str, kwargs: dict[str, Any]) -> None:
    res = requests.request(method, farm.url + path, timeout=10, **kwargs)
    assert 400 <= res.status_code < 500, (res.status_code, res.text[:300])
    assert res.elapsed.total_seconds() < 5


def test_schema_errors_name_the_field_in_comfyuis_shape(farm: Farm) -> None:
    res = requests.get(farm.url + "/history", params={"max_items": "many"}, timeout=10)
    body = res.json()
    assert res.status_code == 400 and set(body) == {"error", "node_errors"}
    assert set(body["error"]) == {"type", "message", "details", "extra_info"}
    assert body["error"]["type"] == "invalid_request" and "max_items" in body["error"]["details"]


def test_a_mask_of_another_size_is_a_400_not_a_500(farm: Farm) -> None:
    base = requests.post(farm.url + "/upload/image", timeout=10, files={"image": ("base.png", png((8, 8)), "image/png")}).json()
    res = requests.post(farm.url + "/upload/mask", timeout=10, files={"image": ("m.png", png((3, 5)), "image/png")},
                        data={"original_ref": f'{{"filename": "{base["name"]}", "type": "input"}}'})
    assert res.status_code == 400, res.text[:200]
    res = requests.post(farm.url + "/upload/mask", timeout=10, files={"image": ("m.png", b"not an image", "image/png")},
                        data={"original_ref": f'{{"filename": "{base["name"]}", "type": "input"}}'})
    assert res.status_code == 400, res.text[:200]


def test_a_decompression_bomb_preview_is_a_413(farm: Farm) -> None:
    """A PNG whose header claims 30000x30000: converting it would cost seconds of CPU per request."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)) + \
        chunk(b"IDAT", zlib.compress(b"\x00" * 1024)) + chunk(b"IEND", b"")
    up = requests.post(farm.url + "/upload/image", timeout=10, files={"image": ("bomb.png", bomb, "image/png")}).json()
    res = requests.get(farm.url + "/view", params={"filename": up["name"], "type": "input", "preview": "webp;90"},
                       timeout=10)
    assert res.status_code == 413, res.text[:200]
    assert res.elapsed.total_seconds() < 2


def test_the_farm_still_runs_after_the_corpus(farm: Farm) -> None:
    entry = farm.run({"1": {"class_type": "PrimitiveFloat", "inputs": {"value": 3.0}},
                      "2": {"class_type": "TestFloatOutput", "inputs": {"value": ["1", 0]}}})
    assert entry["status"]["status_str"] == "success"
