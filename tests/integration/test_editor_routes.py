"""The routes the editor and ComfyUI's managers add (spec 2, 11), custom node web extensions and server
routes, against a real farm; the multi-user rules and the extension-script rewriting in process."""

from __future__ import annotations

import io
import json
import struct
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from flask import Flask
from PIL import Image

from api.routes import editor, memory, templates, userdata
from tests.farm import TEST_NODES, Farm, WsClient

pytestmark = pytest.mark.integration

SEED_SCRIPT = TEST_NODES / "seed_examples" / "web" / "js" / "my_extension.js"
MODERN_SCRIPT = TEST_NODES / "editor_test_nodes" / "web" / "modern_extension.js"


def get(farm: Farm, path: str, **kw: Any) -> requests.Response:
    return requests.get(farm.url + path, timeout=10, **kw)


def png(color: tuple[int, ...], mode: str = "RGB", size: tuple[int, int] = (8, 8)) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color).save(buffer, format="PNG")
    return buffer.getvalue()


# ---- the editor and its files ----------------------------------------------------------------------


def test_root_serves_the_frontend_package(farm: Farm) -> None:
    res = get(farm, "/")
    assert res.status_code == 200 and "text/html" in res.headers["Content-Type"]
    assert "no-store" in res.headers["Cache-Control"]
    assert '<div id="vue-app">' in res.text or "vue-app" in res.text
    assert get(farm, "/scripts/app.js").headers["Content-Type"].startswith("text/javascript")
    assert get(farm, "/nodefarm/").status_code == 200 and "nodefarm" in get(farm, "/nodefarm/").text
    assert get(farm, "/user.css").status_code == 200
    assert get(farm, "/assets/../../../etc/passwd").status_code == 404
    assert get(farm, "/no/such/file.js").status_code == 404


def test_extensions_list_core_and_pack_scripts(farm: Farm) -> None:
    for prefix in ("", "/api"):
        urls = get(farm, prefix + "/extensions").json()
        assert "/extensions/seed_examples/my_extension.js" in urls
        assert "/extensions/editor_test_nodes/modern_extension.js" in urls
        assert "/extensions/editor_test_nodes/lib/helper.js" in urls
        assert any(u.startswith("/extensions/core/") for u in urls)
    core = next(u for u in urls if u.startswith("/extensions/core/"))
    assert get(farm, core).status_code == 200


def test_legacy_script_gets_the_imports_and_modern_script_is_untouched(farm: Farm) -> None:
    seed = get(farm, "/extensions/seed_examples/my_extension.js")
    assert seed.status_code == 200 and seed.headers["Content-Type"].startswith("text/javascript")
    first_line = seed.text.split("\n", 1)[0]
    assert 'import "../../nodefarm/editor_compat.js";' in first_line
    assert 'import { app } from "../../scripts/app.js";' in first_line
    assert "api.js" not in first_line
    assert seed.text.endswith(SEED_SCRIPT.read_text())  # the seed's own text follows unchanged
    assert seed.text.count("\n") == SEED_SCRIPT.read_text().count("\n")  # line numbers kept
    modern = get(farm, "/extensions/editor_test_nodes/modern_extension.js")
    assert modern.content == MODERN_SCRIPT.read_bytes()
    compat = get(farm, "/nodefarm/editor_compat.js")
    assert compat.status_code == 200 and "registerExtension" in compat.text
    assert get(farm, "/extensions/editor_test_nodes/../__init__.py").status_code == 404
    assert get(farm, "/extensions/no_such_pack/x.js").status_code == 404


# ---- ComfyUI's routes and their /api twins --------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/users", "/settings", "/i18n", "/workflow_templates", "/experiment/models", "/experiment/models/checkpoints",
     "/global_subgraphs", "/features", "/embeddings", "/models", "/system_stats", "/extensions"],
)
def test_get_routes_have_api_twins(farm: Farm, path: str) -> None:
    plain, api = get(farm, path), get(farm, "/api" + path)
    assert plain.status_code == api.status_code == 200, (plain.text, api.text)
    assert plain.headers["Content-Type"].startswith("application/json")


def test_internal_routes_have_no_api_twin(farm: Farm) -> None:
    assert isinstance(get(farm, "/internal/logs").json(), str)
    raw = get(farm, "/internal/logs/raw").json()
    assert set(raw) == {"entries", "size"} and set(raw["size"]) == {"cols", "rows"}
    assert all(set(e) == {"t", "m"} for e in raw["entries"])
    paths = get(farm, "/internal/folder_paths").json()
    assert paths["checkpoints"][0].endswith("checkpoints")
    assert requests.patch(farm.url + "/internal/logs/subscribe", json={"clientId": "x", "enabled": True}, timeout=5).status_code == 200
    assert get(farm, "/internal/files/bogus").status_code == 400
    for path in ("/internal/logs", "/internal/folder_paths", "/internal/files/output"):
        assert get(farm, "/api" + path).status_code == 404


def test_internal_files_newest_first(farm: Farm) -> None:
    names = []
    for i in range(2):
        res = requests.post(farm.url + "/upload/image", files={"image": (f"newest_{uuid.uuid4().hex[:6]}_{i}.png", png((i, 0, 0)))},
                            timeout=10)
        names.append(res.json()["name"])
        time.sleep(0.05)
    listed = get(farm, "/internal/files/input").json()
    assert listed.index(names[1]) < listed.index(names[0])


def test_i18n_merges_pack_locales(farm: Farm) -> None:
    data = get(farm, "/api/i18n").json()
    assert data["en"]["editorTest"] == {"greeting": "Hello"}
    assert data["en"]["nodeDefs"]["MyCustomNode"]["display_name"] == "My Custom Node"
    assert data["fr"]["editorTest"] == {"greeting": "Bonjour"}


def test_workflow_templates_of_packs(farm: Farm) -> None:
    assert get(farm, "/api/workflow_templates").json()["editor_test_nodes"] == ["demo"]
    assert get(farm, "/api/workflow_templates/editor_test_nodes/demo.json").json()["version"] == 0.4
    assert get(farm, "/api/workflow_templates/editor_test_nodes/nope.json").status_code == 404
    assert get(farm, "/templates/index.json").json() == []  # no templates package: an empty index


def test_experiment_models_and_view_metadata(farm: Farm) -> None:
    folders = get(farm, "/api/experiment/models").json()
    names = [f["name"] for f in folders]
    assert "checkpoints" in names and "configs" not in names and "custom_nodes" not in names
    ckpt_dir = Path(next(f["folders"][0] for f in folders if f["name"] == "checkpoints"))
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    header = json.dumps({"__metadata__": {"ss_name": "tiny"}, "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    (ckpt_dir / "tiny_meta.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + b"\0\0\0\0")
    listed = get(farm, "/api/experiment/models/checkpoints").json()
    entry = next(e for e in listed if e["name"] == "tiny_meta.safetensors")
    assert entry["pathIndex"] == 0 and entry["size"] > 0 and {"modified", "created"} <= set(entry)
    assert get(farm, "/api/experiment/models/nope").status_code == 404
    assert get(farm, "/api/view_metadata/checkpoints", params={"filename": "tiny_meta.safetensors"}).json() == {"ss_name": "tiny"}
    assert get(farm, "/view_metadata/checkpoints", params={"filename": "tiny_meta.ckpt"}).status_code == 404
    assert get(farm, "/view_metadata/checkpoints", params={"filename": "missing.safetensors"}).status_code == 404
    Image.new("RGB", (4, 4), (1, 2, 3)).save(ckpt_dir / "tiny_meta.preview.png")
    preview = get(farm, "/api/experiment/models/preview/checkpoints/0/tiny_meta.safetensors")
    assert preview.status_code == 200 and preview.headers["Content-Type"] == "image/webp"
    assert get(farm, "/api/experiment/models/preview/checkpoints/0/none.safetensors").status_code == 404


def test_free_records_flags(farm: Farm) -> None:
    res = requests.post(farm.url + "/api/free", data=json.dumps({"unload_models": True, "free_memory": True}),
                        headers={"Content-Type": "text/plain"}, timeout=5)
    assert res.status_code == 200 and res.content == b""
    assert farm.r.hget(memory.FREE_FLAGS, "free_memory") == b"1"


# ---- users, settings, user data ----------------------------------------------------------------------


def test_settings_roundtrip_with_any_content_type(farm: Farm) -> None:
    key = f"NodeFarm.Test.{uuid.uuid4().hex[:6]}"
    res = requests.post(f"{farm.url}/api/settings/{key}", data=json.dumps({"a": [1, 2]}), headers={"Content-Type": "text/plain"}, timeout=5)
    assert res.status_code == 200
    assert get(farm, f"/api/settings/{key}").json() == {"a": [1, 2]}
    assert get(farm, "/settings/NodeFarm.Missing").json() is None
    res = requests.post(farm.url + "/settings", data=json.dumps({key + ".b": True}), timeout=5)
    assert res.status_code == 200
    settings = get(farm, "/api/settings").json()
    assert settings[key] == {"a": [1, 2]} and settings[key + ".b"] is True
    assert get(farm, "/api/users").json() == {"storage": "server", "migrated": True}


def test_userdata_files(farm: Farm) -> None:
    folder = f"nf_{uuid.uuid4().hex[:6]}"
    name = f"{folder}%2Fwf%201.json"
    res = requests.post(f"{farm.url}/api/userdata/{name}", data=b'{"x": 1}', timeout=5)
    assert res.status_code == 200 and res.json() == f"{folder}/wf 1.json"
    assert get(farm, f"/api/userdata/{name}").json() == {"x": 1}
    res = requests.post(f"{farm.url}/api/userdata/{name}?overwrite=false", data=b"{}", timeout=5)
    assert res.status_code == 409
    info = requests.post(f"{farm.url}/api/userdata/{name}?full_info=true", data=b'{"x": 2}', timeout=5).json()
    assert info["path"] == f"{folder}/wf 1.json" and info["size"] == 8 and {"modified", "created"} <= set(info)
    requests.post(f"{farm.url}/api/userdata/{folder}%2Fsub%2Fdeep.json", data=b"[]", timeout=5)
    assert get(farm, f"/api/userdata?dir={folder}").json() == ["wf 1.json"]
    assert sorted(get(farm, f"/api/userdata?dir={folder}&recurse=true").json()) == ["sub/deep.json", "wf 1.json"]
    assert sorted(get(farm, f"/api/userdata?dir={folder}&recurse=true&split=true").json()) == [
        ["sub/deep.json", "sub", "deep.json"], ["wf 1.json", "wf 1.json"]]
    full = get(farm, f"/api/userdata?dir={folder}&recurse=true&full_info=true").json()
    assert {f["path"] for f in full} == {"sub/deep.json", "wf 1.json"}
    v2 = get(farm, "/api/v2/userdata", params={"path": folder}).json()
    assert [(e["type"], e["path"]) for e in v2] == [("directory", f"{folder}/sub"), ("file", f"{folder}/sub/deep.json"), ("file", f"{folder}/wf 1.json")]
    moved = requests.post(f"{farm.url}/api/userdata/{name}/move/{folder}%2Fmoved.json", timeout=5)
    assert moved.status_code == 200 and moved.json() == f"{folder}/moved.json"
    assert get(farm, f"/api/userdata/{name}").status_code == 404
    assert requests.delete(f"{farm.url}/api/userdata/{folder}%2Fmoved.json", timeout=5).status_code == 204
    assert requests.delete(f"{farm.url}/api/userdata/{folder}%2Fmoved.json", timeout=5).status_code == 404
    assert get(farm, "/api/userdata").status_code == 400
    assert get(farm, "/api/userdata?dir=nope_" + folder).status_code == 404
    assert get(farm, "/api/userdata?dir=..%2F..").status_code == 403
    assert get(farm, "/api/userdata/..%2F..%2Fusers.json").status_code == 403
    assert get(farm, "/api/v2/userdata", params={"path": "../x"}).status_code == 400
    assert get(farm, "/api/v2/userdata", params={"path": "missing_" + folder}).status_code == 404


def user_app(tmp: Path, multi_user: bool) -> Flask:
    app = Flask("userdata_test")
    app.extensions["nodefarm"] = SimpleNamespace(settings=SimpleNamespace(user_dir=tmp, multi_user=multi_user))
    app.register_blueprint(userdata.bp)
    return app


def test_single_user_ignores_the_user_header(tmp_path: Path) -> None:
    client = user_app(tmp_path, multi_user=False).test_client()
    assert client.get("/api/users").json == {"storage": "server", "migrated": False}
    assert client.post("/api/settings/a", data="1", headers={"comfy-user": "someone"}).status_code == 200
    assert json.loads((tmp_path / "default" / "comfy.settings.json").read_text()) == {"a": 1}
    assert client.get("/api/users").json == {"storage": "server", "migrated": True}


def test_multi_user_header_rules(tmp_path: Path) -> None:
    client = user_app(tmp_path, multi_user=True).test_client()
    assert client.get("/users").json == {"storage": "server", "users": {}}
    user_id = client.post("/users", data=json.dumps({"username": "Ann Lee"})).json
    assert user_id.startswith("Ann-Lee_")
    assert client.post("/users", data=json.dumps({"username": "Ann Lee"})).status_code == 400
    assert client.get("/users").json == {"storage": "server", "users": {user_id: "Ann Lee"}}
    assert client.post("/settings/x", data="2", headers={"comfy-user": user_id}).status_code == 200
    assert client.get("/settings", headers={"comfy-user": user_id}).json == {"x": 2}
    assert json.loads((tmp_path / user_id / "comfy.settings.json").read_text()) == {"x": 2}
    assert client.get("/settings", headers={"comfy-user": "stranger"}).status_code == 401
    assert client.get("/settings").status_code == 401  # "default" is not a user here
    assert client.get("/userdata?dir=x", headers={"comfy-user": "__system"}).status_code == 403
    assert client.post("/userdata/f.txt", data=b"hi", headers={"comfy-user": user_id}).json == "f.txt"
    assert client.get("/userdata/f.txt", headers={"comfy-user": user_id}).data == b"hi"


# ---- /view conversions and /upload/mask ----------------------------------------------------------------


def test_view_preview_and_channels(farm: Farm) -> None:
    name = f"rgba_{uuid.uuid4().hex[:6]}.png"
    requests.post(farm.url + "/upload/image", files={"image": (name, png((10, 20, 30, 40), "RGBA"))}, timeout=10)
    base = {"filename": name, "type": "input"}
    webp = get(farm, "/api/view", params={**base, "preview": "webp;50"})
    assert webp.headers["Content-Type"] == "image/webp" and Image.open(io.BytesIO(webp.content)).format == "WEBP"
    jpeg = get(farm, "/view", params={**base, "preview": "jpeg;80"})
    assert jpeg.headers["Content-Type"] == "image/jpeg"
    rgb = Image.open(io.BytesIO(get(farm, "/view", params={**base, "channel": "rgb"}).content))
    assert rgb.mode == "RGB" and rgb.getpixel((0, 0)) == (10, 20, 30)
    alpha = Image.open(io.BytesIO(get(farm, "/view", params={**base, "channel": "a"}).content))
    assert alpha.mode == "RGBA" and alpha.getpixel((0, 0)) == (0, 0, 0, 40)
    assert Image.open(io.BytesIO(get(farm, "/view", params=base).content)).getpixel((0, 0)) == (10, 20, 30, 40)


def test_upload_mask_copies_alpha_onto_the_original(farm: Farm) -> None:
    original = f"orig_{uuid.uuid4().hex[:6]}.png"
    requests.post(farm.url + "/upload/image", files={"image": (original, png((200, 100, 50)))}, timeout=10)
    ref = json.dumps({"filename": original, "subfolder": "", "type": "input"})
    res = requests.post(farm.url + "/api/upload/mask", files={"image": ("clipspace-mask.png", png((0, 0, 0, 77), "RGBA"))},
                        data={"original_ref": ref, "type": "input", "subfolder": "clipspace"}, timeout=10)
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["subfolder"] == "clipspace" and body["type"] == "input"
    merged = Image.open(io.BytesIO(get(farm, "/view", params={"filename": body["name"], "subfolder": "clipspace", "type": "input"}).content))
    assert merged.mode == "RGBA" and merged.getpixel((0, 0)) == (200, 100, 50, 77)


# ---- custom node server routes -------------------------------------------------------------------------


def test_pack_routes_with_api_twins(farm: Farm) -> None:
    for prefix in ("", "/api"):
        res = get(farm, prefix + "/editor_test/echo/bob?x=1&x=2", headers={"X-Test": "yes"})
        assert res.json() == {"name": "bob", "query": {"x": "1"}, "all": ["1", "2"], "method": "GET",
                              "path": prefix + "/editor_test/echo/bob", "header": "yes"}
    assert get(farm, "/editor_test/rest/a/b.txt").text == "tail=a/b.txt"
    assert get(farm, "/api/editor_test/plain").status_code == 404  # app.router routes get no twin
    assert get(farm, "/editor_test/plain").text == "plain"
    assert get(farm, "/api/models").json() != ["shadowed"]  # the farm's own route wins


def test_pack_route_bodies_and_responses(farm: Farm) -> None:
    res = requests.post(farm.url + "/api/editor_test/json", data='{"k": 1}', headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=5)
    assert res.status_code == 201 and res.json() == {"got": {"k": 1}, "content_type": "application/x-www-form-urlencoded"}
    res = requests.post(farm.url + "/editor_test/form", data={"field": "v"}, files={"file": ("a.bin", b"12345")}, timeout=5)
    assert res.json() == {"field": "v", "filename": "a.bin", "size": 5}
    res = requests.post(farm.url + "/editor_test/multipart", data={"field": "v"}, files={"file": ("a.bin", b"123")}, timeout=5)
    assert sorted(map(tuple, res.json())) == [("field", None, 1), ("file", "a.bin", 3)]
    assert get(farm, "/editor_test/file").text == "hello from a pack\n"
    missing = get(farm, "/editor_test/missing")
    assert missing.status_code == 404 and missing.text == "nothing here"
    redirect = get(farm, "/editor_test/redirect", allow_redirects=False)
    assert redirect.status_code == 302 and redirect.headers["Location"] == "/editor_test/file"
    assert get(farm, "/editor_test/static/hello.txt").text == "hello from a pack\n"
    assert get(farm, "/editor_test/static/../__init__.py").status_code == 404


def test_pack_route_send_sync_reaches_clients(farm: Farm) -> None:
    ws = WsClient(farm.url)
    try:
        ws.until(lambda m: isinstance(m, dict) and m["type"] == "status")
        res = requests.post(farm.url + "/editor_test/notify", json={"n": 7}, timeout=5)
        assert res.status_code == 204
        got = ws.until(lambda m: isinstance(m, dict) and m["type"] == "editor_test.notice", timeout=10)
        assert got[-1]["data"] == {"n": 7}
    finally:
        ws.close()


# ---- the jobs API ----------------------------------------------------------------------------------------


def test_jobs_list_detail_and_cancel(farm: Farm) -> None:
    prefix = f"jobs_{uuid.uuid4().hex[:6]}"
    prompt = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 7}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": prefix}},
    }
    workflow = {"id": "wf-" + prefix, "nodes": []}
    pid = farm.submit(prompt, extra_data={"extra_pnginfo": {"workflow": workflow}})
    farm.wait(pid)
    listed = get(farm, "/api/jobs", params={"status": "completed", "limit": 200}).json()
    job = next(j for j in listed["jobs"] if j["id"] == pid)
    assert job["status"] == "completed" and job["outputs_count"] == 1 and job["workflow_id"] == workflow["id"]
    assert job["preview_output"]["filename"].startswith(prefix) and job["preview_output"]["nodeId"] == "2"
    assert isinstance(job["create_time"], int) and job["execution_end_time"] >= job["execution_start_time"]
    assert listed["pagination"]["total"] >= 1 and set(listed["pagination"]) == {"offset", "limit", "total", "has_more"}
    only = get(farm, "/api/jobs", params={"workflow_id": workflow["id"]}).json()["jobs"]
    assert [j["id"] for j in only] == [pid]
    detail = get(farm, f"/api/jobs/{pid}").json()
    assert detail["outputs"]["2"]["images"][0]["filename"].startswith(prefix)
    assert detail["workflow"]["prompt"] == prompt and detail["execution_status"]["status_str"] == "success"
    assert get(farm, f"/api/jobs/{uuid.uuid4()}").status_code == 404
    assert get(farm, "/api/jobs", params={"status": "bogus"}).status_code == 400
    assert get(farm, "/api/jobs", params={"limit": "0"}).status_code == 400
    page = get(farm, "/api/jobs", params={"limit": 1, "offset": 0}).json()
    assert len(page["jobs"]) == 1 and page["pagination"]["limit"] == 1

    assert requests.post(f"{farm.url}/api/jobs/{pid}/cancel", timeout=5).json() == {"cancelled": False}
    slow = farm.submit({"1": {"class_type": "TestSlowValue", "inputs": {"value": time.time(), "seconds": 5.0, "tag": "jobs_cancel"}},
                        "2": {"class_type": "TestFloatOutput", "inputs": {"value": ["1", 0]}}})
    deadline = time.time() + 20
    while get(farm, f"/api/jobs/{slow}").json().get("status") != "in_progress":
        assert time.time() < deadline
        time.sleep(0.1)
    assert requests.post(f"{farm.url}/api/jobs/{slow}/cancel", timeout=5).json() == {"cancelled": True}
    entry = farm.wait(slow, timeout=30)
    assert entry["status"]["status_str"] == "error"
    assert get(farm, f"/api/jobs/{slow}").json()["status"] == "cancelled"
    bad = requests.post(farm.url + "/api/jobs/cancel", json={"job_ids": ["nope"]}, timeout=5)
    assert bad.status_code == 400 and bad.json()["invalid_ids"] == ["nope"]
    assert requests.post(farm.url + "/api/jobs/cancel", json={"job_ids": [str(uuid.uuid4())]}, timeout=5).json() == {"cancelled": False}


# ---- scripts that drive ComfyUI's API ------------------------------------------------------------------


def test_script_client_reusing_its_client_id_across_reconnects(farm: Farm) -> None:
    client_id = uuid.uuid4().hex
    old = WsClient(farm.url, client_id)
    old.until(lambda m: isinstance(m, dict) and m["type"] == "status")
    new = WsClient(farm.url, client_id)
    new.until(lambda m: isinstance(m, dict) and m["type"] == "status")
    old.close()  # the old socket closing must not drop the new one
    time.sleep(0.3)
    prompt = {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": int(time.time()) % 9999}},
              "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "reconnect"}}}
    res = requests.post(farm.url + "/prompt", data=json.dumps({"prompt": prompt, "client_id": client_id}),
                        headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=10)
    pid = res.json()["prompt_id"]
    try:
        messages = new.until_done(pid)
        executed = [m for m in messages if m["type"] == "executed"]
        assert executed and executed[0]["data"]["output"]["images"][0]["filename"].startswith("reconnect")
        image = executed[0]["data"]["output"]["images"][0]
        assert get(farm, "/view", params=image).content[:4] == b"\x89PNG"
        assert pid in get(farm, f"/history/{pid}").json()
    finally:
        new.close()


# ---- in-process pieces -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (SEED_SCRIPT.read_text(), {"app"}),
        ('import { app } from "../../scripts/app.js";\napp.registerExtension({});', set()),
        ("import {app as a} from '/scripts/app.js'; app.x()", {"app"}),
        ('app.api.addEventListener("x", e => e); api.fetchApi("/x")', {"app", "api"}),
        ("const app = window.comfyAPI.app.app; app.registerExtension({})", set()),
        ("function f() { const app = 1; return app } app.registerExtension({})", {"app"}),
        ('console.log("app api"); // app\n/* api */ const s = `api`', set()),
        ("let r = /app/g; let q = a / b / c; window.app.x; obj.api", set()),
        ("foo({ app: 1, api: 2 })", set()),
        ("const s = `a ${ {a: 1}.a } ${api.x}`;", {"api"}),
        ('import * as api from "x"; api.y()', set()),
        ("const { app, api } = window.comfyAPI.app;", set()),
        ("export function api() {} api()", set()),
    ],
)
def test_free_globals(source: str, expected: set[str]) -> None:
    assert editor.free_globals(source) == expected


def test_rewrite_keeps_modern_scripts_byte_for_byte() -> None:
    modern = MODERN_SCRIPT.read_text()
    assert editor.rewrite_extension_script(modern, "../../") == modern
    out = editor.rewrite_extension_script("api.fetchApi('/x')\n", "../../../")
    assert out.startswith('import "../../../nodefarm/editor_compat.js"; import { api } from "../../../scripts/api.js";')
    assert out.endswith("api.fetchApi('/x')\n") and out.count("\n") == 1


def test_global_subgraphs_of_packs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pack = tmp_path / "pack_a"
    (pack / "subgraphs").mkdir(parents=True)
    (pack / "subgraphs" / "blue.json").write_text('{"definitions": {"subgraphs": []}}')
    monkeypatch.setattr(templates, "custom_node_dirs", lambda: [pack])
    app = Flask("subgraphs_test")
    app.register_blueprint(templates.bp)
    client = app.test_client()
    listed = client.get("/api/global_subgraphs").json
    (key, entry), = listed.items()
    assert entry == {"source": "custom_node", "name": "blue", "info": {"node_pack": "custom_nodes.pack_a"}}
    assert client.get(f"/global_subgraphs/{key}").json["data"] == '{"definitions": {"subgraphs": []}}'
    assert client.get("/global_subgraphs/unknown").json is None


# ---- user files are never active content on the farm's origin (issue 9) ----------------------------


@pytest.mark.parametrize("name", ["page.html", "pic.svg", "doc.xhtml"])
def test_userdata_of_an_active_type_is_a_download(farm: Farm, name: str) -> None:
    body = b"<html><script>alert(document.cookie)</script></html>"
    res = requests.post(f"{farm.url}/userdata/{name}?overwrite=true", data=body, timeout=10)
    assert res.status_code == 200, res.text
    got = get(farm, f"/userdata/{name}")
    assert got.status_code == 200 and got.content == body
    assert got.headers["Content-Type"] == "application/octet-stream"
    assert got.headers["Content-Disposition"].startswith("attachment")
    assert got.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("name", ["page.xhtml", "feed.xml", "style.xsl", "x.html", "x.svg"])
def test_view_of_an_active_type_is_a_download(farm: Farm, name: str) -> None:
    (farm.api_dir / "output" / name).write_bytes(b"<x/>")
    got = get(farm, "/view", params={"filename": name, "type": "output"})
    assert got.status_code == 200
    assert got.headers["Content-Type"] == "application/octet-stream"
    assert got.headers["Content-Disposition"].startswith("attachment")


def test_view_of_a_png_that_claims_30000_pixels_square_is_a_413(farm: Farm) -> None:
    import zlib

    raw = bytearray(png((1, 2, 3)))
    ihdr = raw.index(b"IHDR")
    raw[ihdr + 4:ihdr + 12] = struct.pack(">II", 30000, 30000)
    raw[ihdr + 17:ihdr + 21] = struct.pack(">I", zlib.crc32(bytes(raw[ihdr:ihdr + 17])))
    (farm.api_dir / "output" / "bomb.png").write_bytes(bytes(raw))
    got = get(farm, "/view", params={"filename": "bomb.png", "type": "output", "preview": "webp;90"})
    assert got.status_code == 413, got.text[:200]
    assert get(farm, "/view", params={"filename": "bomb.png", "type": "output"}).status_code == 200  # the file as is
