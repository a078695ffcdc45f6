"""The HTTP contract: validation errors in ComfyUI's shapes, /view refusing traversal, bodies parsed
as JSON whatever the Content-Type."""

from __future__ import annotations

import json
import os

import pytest
import requests

from tests.farm import Farm

pytestmark = pytest.mark.integration

GOOD_SAVE = {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}


def empty_image(**inputs: object) -> dict:
    base: dict[str, object] = {"width": 8, "height": 8, "batch_size": 1, "color": 0}
    base.update(inputs)
    return {"class_type": "EmptyImage", "inputs": base}


def post(farm: Farm, prompt: object, **extra: object) -> requests.Response:
    return requests.post(farm.url + "/prompt", json={"prompt": prompt, **extra}, timeout=10)


def first_error(body: dict, node: str) -> dict:
    return dict(body["node_errors"][node]["errors"][0])


def test_no_prompt(farm: Farm) -> None:
    res = requests.post(farm.url + "/prompt", json={"client_id": "x"}, timeout=10)
    assert res.status_code == 400
    assert res.json() == {"error": {"type": "no_prompt", "message": "No prompt provided", "details": "No prompt provided", "extra_info": {}}, "node_errors": {}}


def test_unknown_class_and_missing_class_type(farm: Farm) -> None:
    res = post(farm, {"1": {"class_type": "NoSuchNode", "inputs": {}}})
    assert res.status_code == 400
    err = res.json()["error"]
    assert err["type"] == "invalid_prompt" and "NoSuchNode" in err["message"] and res.json()["node_errors"] == {}
    res = post(farm, {"1": {"inputs": {}}})
    assert res.status_code == 400 and res.json()["error"]["details"] == "Node ID '#1'"


def test_no_outputs(farm: Farm) -> None:
    res = post(farm, {"1": empty_image()})
    assert res.status_code == 400 and res.json()["error"]["type"] == "prompt_no_outputs"


@pytest.mark.parametrize(
    ("node1", "save", "etype", "extra_keys"),
    [
        (empty_image(height=0), GOOD_SAVE, "value_smaller_than_min", {"input_name", "input_config", "received_value"}),
        (empty_image(width=99999), GOOD_SAVE, "value_bigger_than_max", {"input_name", "input_config", "received_value"}),
        (empty_image(width="wide"), GOOD_SAVE, "invalid_input_type", {"input_name", "input_config", "received_value", "exception_message"}),
        ({"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "color": 0}}, GOOD_SAVE, "required_input_missing", {"input_name"}),
        ({"class_type": "MathOperation", "inputs": {"a": 1.0, "b": 2.0, "operation": "power"}},
         {"class_type": "TestFloatOutput", "inputs": {"value": ["1", 0]}}, "value_not_in_list", {"input_name", "input_config", "received_value"}),
        ({"class_type": "PrimitiveInt", "inputs": {"value": 3}}, GOOD_SAVE, "return_type_mismatch", {"input_name", "input_config", "received_type", "linked_node"}),
        ({"class_type": "LoadImage", "inputs": {"image": "missing.png"}}, GOOD_SAVE, "custom_validation_failed", {"input_name"}),
    ],
)
def test_validation_errors_have_comfyui_shape(farm: Farm, node1: dict, save: dict, etype: str, extra_keys: set) -> None:
    res = post(farm, {"1": node1, "2": save})
    assert res.status_code == 400, res.text
    body = res.json()
    assert body["error"]["type"] == "prompt_outputs_failed_validation"
    assert set(body["error"]) == {"type", "message", "details", "extra_info"}
    failing = "2" if etype == "return_type_mismatch" else "1"
    err = first_error(body, failing)
    assert err["type"] == etype
    assert set(err) == {"type", "message", "details", "extra_info"}
    assert extra_keys <= set(err["extra_info"])
    assert body["node_errors"][failing]["class_type"] == {"1": node1, "2": save}[failing]["class_type"]
    assert body["node_errors"][failing]["dependent_outputs"] == ["2"]


def test_bad_linked_input(farm: Farm) -> None:
    res = post(farm, {"1": empty_image(), "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0, 1], "filename_prefix": "x"}}})
    assert res.status_code == 400 and first_error(res.json(), "2")["type"] == "bad_linked_input"


def test_link_to_missing_node(farm: Farm) -> None:
    res = post(farm, {"2": {"class_type": "SaveImage", "inputs": {"images": ["99", 0], "filename_prefix": "x"}}})
    assert res.status_code == 400
    assert res.json()["error"]["type"] in ("prompt_outputs_failed_validation", "exception_during_validation")


def test_partially_valid_prompt_runs_the_valid_output(farm: Farm) -> None:
    prompt = {"1": empty_image(), "2": GOOD_SAVE, "3": {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": "y"}},
              "4": empty_image(height=0)}
    res = post(farm, prompt)
    assert res.status_code == 200, res.text
    body = res.json()
    assert set(body["node_errors"]) == {"4"} and body["node_errors"]["4"]["dependent_outputs"] == ["3"]
    entry = farm.wait(body["prompt_id"])
    assert entry["prompt"][4] == ["2"] and list(entry["outputs"]) == ["2"]


def test_body_is_json_whatever_the_content_type(farm: Farm) -> None:
    body = json.dumps({"prompt": {"1": empty_image(), "2": GOOD_SAVE}, "prompt_id": "form-labelled"})
    res = requests.post(farm.url + "/api/prompt", data=body, headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=10)
    assert res.status_code == 200 and res.json()["prompt_id"] == "form-labelled"
    assert isinstance(res.json()["number"], int)
    farm.wait("form-labelled")


def test_view_refuses_traversal(farm: Farm) -> None:
    outside = farm.tmp / "secret.txt"
    outside.write_text("secret")
    os.symlink(outside, farm.api_dir / "output" / "link.txt")
    cases = [
        ({"filename": "../secret.txt"}, 400),
        ({"filename": "/etc/passwd"}, 400),
        ({"filename": "secret.txt", "subfolder": "../.."}, 403),
        ({"filename": "passwd", "subfolder": "/etc"}, 403),
        ({"filename": "link.txt"}, 403),
        ({"filename": "x.png", "type": "models"}, 400),
        ({"filename": "nope.png"}, 404),
    ]
    for params, status in cases:
        res = requests.get(farm.url + "/view", params=params, timeout=5)
        assert res.status_code == status, (params, res.status_code)
        assert b"secret" not in res.content


def test_object_info_lists_builtin_and_custom_nodes(farm: Farm) -> None:
    info = requests.get(farm.url + "/object_info", timeout=10).json()
    assert {"SaveImage", "LoadImage", "MathOperation", "TestSlowValue"} <= set(info)
    save = info["SaveImage"]
    assert save["output_node"] is True and save["input"]["hidden"] == {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}
    assert info["TestSlowValue"]["python_module"] == "custom_nodes.farm_test_nodes"
    one = requests.get(farm.url + "/api/object_info/MathOperation", timeout=5).json()
    assert list(one) == ["MathOperation"]
    assert requests.get(farm.url + "/object_info/Nope", timeout=5).json() == {}


# ---- bad submissions leave nothing behind and never stop the farm (issue 9's wedge) ----------------


def running_and_pending(farm: Farm) -> tuple[int, int]:
    queue = requests.get(farm.url + "/queue", timeout=10).json()
    return len(queue["queue_running"]), len(queue["queue_pending"])


@pytest.mark.parametrize("body", [
    {"client_id": True}, {"client_id": [1]}, {"client_id": {"a": 1}}, {"prompt_id": 7}, {"prompt_id": ""},
    {"prompt_id": {"x": 1}}, {"number": float("nan")}, {"number": "abc"}, {"number": [1]},
    {"extra_data": [1]}, {"extra_data": "x"}, {"partial_execution_targets": "1"}, {"partial_execution_targets": [[1]]},
    {"prompt_id": "a\u0000b"}, {"client_id": "x" * 300},
], ids=["cid-bool", "cid-list", "cid-dict", "pid-int", "pid-empty", "pid-dict", "number-nan", "number-text",
        "number-list", "extra-list", "extra-text", "targets-text", "targets-nested", "pid-nul", "cid-long"])
def test_a_malformed_field_is_a_400_and_leaves_no_run(farm: Farm, body: dict) -> None:
    before = running_and_pending(farm)
    raw = json.dumps({"prompt": {"1": empty_image(), "2": GOOD_SAVE}, **body})  # NaN as the bare token
    res = requests.post(farm.url + "/prompt", data=raw, timeout=10)
    assert res.status_code == 400, res.text
    assert "error" in res.json() and res.json()["node_errors"] == {}
    assert running_and_pending(farm) == before
    assert farm.run({"1": empty_image(), "2": GOOD_SAVE})["status"]["status_str"] == "success"


def test_a_rejected_submission_leaves_no_run_slot_or_number(farm: Farm) -> None:
    first = requests.post(farm.url + "/prompt", json={"prompt": {"1": empty_image(), "2": GOOD_SAVE}}, timeout=10).json()
    for bad in ({"prompt": {"1": {"class_type": "Nope", "inputs": {}}}}, {"prompt": {"1": empty_image()}},
                {"prompt": {"1": empty_image(), "2": GOOD_SAVE}, "client_id": 5}):
        assert requests.post(farm.url + "/prompt", json=bad, timeout=10).status_code == 400
    second = requests.post(farm.url + "/prompt", json={"prompt": {"1": empty_image(), "2": GOOD_SAVE}}, timeout=10).json()
    assert second["number"] == first["number"] + 1  # the rejected ones took no number
    farm.wait(first["prompt_id"])
    farm.wait(second["prompt_id"])


@pytest.mark.parametrize("raw", [
    '{"prompt": {}, "extra_data": {"create_time": Infinity}}',
    '{"prompt": {"1": {"class_type": "EmptyImage"}}, "extra_data": {"create_time": 1e999}}',
    '{"prompt": {"1": {"class_type": "EmptyImage", "inputs": {"width": Infinity}}}}',
    '{"prompt": {}, "client_id": "\\ud800"}',
    '{"prompt": ' + "[" * 100_000 + "]" * 100_000 + "}",
    '{"prompt": {"1": {"class_type": "EmptyImage"}}, "extra_data": ' + '{"a": ' * 200 + "1" + "}" * 200 + "}",
], ids=["create-time-infinity", "create-time-1e999", "infinity", "lone-surrogate", "deep-nesting", "nesting-200"])
def test_bodies_that_are_not_strict_json_are_a_400(farm: Farm, raw: str) -> None:
    res = requests.post(farm.url + "/prompt", data=raw, timeout=30)
    assert res.status_code == 400, res.text[:300]
    assert res.json()["error"]["type"] == "invalid_prompt"


def test_a_prompt_id_that_ran_is_refused_not_merged(farm: Farm) -> None:
    pid = f"reuse-{os.getpid()}-{id(farm)}"
    first = farm.post({"1": empty_image(), "2": GOOD_SAVE}, prompt_id=pid)
    assert first.status_code == 200 and first.json()["prompt_id"] == pid
    farm.wait(pid)
    again = farm.post({"1": empty_image(), "2": GOOD_SAVE}, prompt_id=pid)
    assert again.status_code == 400
    assert "already used" in again.json()["error"]["message"]
    assert farm.wait(pid)["status"]["status_str"] == "success"  # the first run's history is untouched


def test_load_image_stays_inside_the_roots(farm: Farm) -> None:
    """A canary image beside the API's folders, named every way out of the input root: refused at
    validation (a 400 naming LoadImage), never read, never re-served from output/."""
    from PIL import Image

    canary = farm.api_dir / "secret.png"
    Image.new("RGB", (4, 4), (255, 0, 0)).save(canary)
    (farm.api_dir / "input" / "link_out.png").unlink(missing_ok=True)
    (farm.api_dir / "input").mkdir(parents=True, exist_ok=True)
    (farm.api_dir / "input" / "link_out.png").symlink_to(canary)
    names = ["../secret.png", str(canary), "../secret.png [output]", "../../api/secret.png", "sub/../../secret.png",
             "link_out.png", "..\\secret.png", "secret.png\x00.png"]
    for name in names:
        res = post(farm, {"1": {"class_type": "LoadImage", "inputs": {"image": name}},
                          "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "leak"}}})
        assert res.status_code == 400, (name, res.text[:200])
        assert "1" in res.json()["node_errors"], name
    assert not list((farm.api_dir / "output").glob("leak*"))


# ---- a page of another origin cannot drive the farm (issue 9) ------------------------------------


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1:1"])
def test_a_foreign_origin_is_refused_on_http_ws_and_socketio(farm: Farm, origin: str) -> None:
    import socketio
    import websocket

    before = running_and_pending(farm)
    prompt = json.dumps({"prompt": {"1": empty_image(), "2": GOOD_SAVE}})
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "application/json"):
        res = requests.post(farm.url + "/prompt", data=prompt, headers={"Origin": origin, "Content-Type": ctype}, timeout=10)
        assert res.status_code == 403, (ctype, res.status_code)
    assert requests.post(farm.url + "/interrupt", headers={"Origin": origin}, timeout=10).status_code == 403
    assert running_and_pending(farm) == before
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(farm.url.replace("http", "ws") + "/ws?clientId=x", origin=origin, timeout=10)
    assert refused.value.status_code == 403
    client = socketio.Client(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect(farm.url, headers={"Origin": origin}, transports=["polling"], wait_timeout=5)


def test_the_farms_own_origin_and_clients_without_one_are_served(farm: Farm) -> None:
    import websocket

    own = requests.post(farm.url + "/prompt", json={"prompt": {"1": empty_image(), "2": GOOD_SAVE}},
                        headers={"Origin": farm.url}, timeout=10)
    assert own.status_code == 200
    farm.wait(own.json()["prompt_id"])
    ws = websocket.create_connection(farm.url.replace("http", "ws") + "/ws?clientId=y", origin=farm.url, timeout=10)
    ws.close()
