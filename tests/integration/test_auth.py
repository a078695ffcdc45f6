"""Named API tokens on a real farm (issue 9, item 3): with ``NODEFARM_AUTH_TOKEN_FILE`` every route,
``/ws`` and Socket.IO refuse a client without a valid token; a header, the cookie or ``?token=``
opens them; a run completes (its workers reach ``/internal`` with the farm's own token) and names the
token as its submitter; browsers get a login page that sets the cookie; the file is re-read when it
changes."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import socketio
import websocket

from nodes.settings import Settings
from tests.farm import Farm, WsClient, assert_success
from worker import keys
from worker.files import make_model_fetch

ALICE = secrets.token_urlsafe(32)
BOB = secrets.token_urlsafe(32)
INTERNAL = secrets.token_urlsafe(32)


def image_prompt(prefix: str) -> dict:
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0x123456}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": prefix}},
    }


@pytest.fixture(scope="module")
def token_farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    tmp = Path(tmp_path_factory.mktemp("auth"))
    tokens = tmp / "tokens.txt"
    tokens.write_text(f"# who may use the farm\nalice {ALICE}\n\nbob {BOB}  # the second user\n")
    f = Farm(tmp, workers=1, token=ALICE,
             env={"NODEFARM_AUTH_TOKEN_FILE": str(tokens), "NODEFARM_API_TOKEN": INTERNAL})
    f.tokens = tokens  # type: ignore[attr-defined]
    yield f
    f.stop()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_unauthorized(res: requests.Response) -> None:
    assert res.status_code == 401, (res.request.method, res.url, res.status_code, res.text[:200])
    assert res.json()["error"]["type"] == "unauthorized"
    assert res.json()["error"]["message"]


ROUTES = [("GET", "/prompt"), ("GET", "/queue"), ("GET", "/history"), ("GET", "/api/history"),
          ("GET", "/view?filename=x.png&type=output"), ("GET", "/internal/folder_paths"), ("GET", "/internal/logs"),
          ("GET", "/api/jobs"), ("GET", "/system_stats"), ("GET", "/object_info"), ("POST", "/interrupt"),
          ("POST", "/queue"), ("GET", "/api/userdata?dir=workflows"), ("GET", "/nodefarm/runs/x/events")]


@pytest.mark.parametrize("credentials", [{}, bearer("not-a-token-at-all-but-long"), bearer(ALICE[:-1]),
                                         {"Authorization": f"Basic {ALICE}"}, {"Cookie": "nodefarm_token=wrong"}])
def test_without_a_valid_token_every_route_answers_401(token_farm: Farm, credentials: dict[str, str]) -> None:
    before = token_farm.r.zcard(keys.HISTORY)
    res = requests.post(token_farm.url + "/prompt", json={"prompt": image_prompt("refused")}, headers=credentials, timeout=10)
    assert_unauthorized(res)
    for method, path in ROUTES:
        assert_unauthorized(requests.request(method, token_farm.url + path, headers=credentials, timeout=10))
    assert token_farm.r.zcard(keys.HISTORY) == before
    assert not token_farm.r.zrange(keys.QUEUE, 0, -1)


def test_ws_upgrade_and_socketio_connect_are_refused_without_a_token(token_farm: Farm) -> None:
    url = token_farm.url.replace("http", "ws") + "/ws?clientId=stranger"
    for extra in ("", "&token=wrong-token-wrong-token"):
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            websocket.create_connection(url + extra, timeout=10)
        assert refused.value.status_code == 401
    for transports in (["polling"], ["websocket"]):
        client = socketio.Client(reconnection=False)
        with pytest.raises(socketio.exceptions.ConnectionError):
            client.connect(token_farm.url, transports=transports, auth={"token": "wrong-token-wrong-token"}, wait_timeout=5)
        assert not client.connected


def test_a_header_a_cookie_or_the_query_opens_http_ws_and_socketio(token_farm: Farm) -> None:
    url = token_farm.url
    assert requests.get(url + "/queue", headers=bearer(BOB), timeout=10).status_code == 200
    assert requests.get(url + "/queue", cookies={"nodefarm_token": ALICE}, timeout=10).status_code == 200
    assert requests.get(url + "/queue", params={"token": BOB}, timeout=10).status_code == 200
    assert requests.get(url + "/internal/folder_paths", headers=bearer(INTERNAL), timeout=10).status_code == 200
    ws_url = url.replace("http", "ws") + "/ws?clientId=" + uuid.uuid4().hex
    for options in ({"header": [f"Authorization: Bearer {ALICE}"]}, {"cookie": f"nodefarm_token={BOB}"}):
        ws = websocket.create_connection(ws_url, timeout=10, **options)  # type: ignore[arg-type]
        assert '"status"' in ws.recv()
        ws.close()
    ws = websocket.create_connection(ws_url + f"&token={ALICE}", timeout=10)
    assert '"status"' in ws.recv()
    ws.close()
    for kwargs in ({"auth": {"token": BOB}}, {"headers": bearer(ALICE)}, {"headers": {"Cookie": f"nodefarm_token={BOB}"}}):
        client = socketio.Client(reconnection=False)
        got: list[dict] = []
        client.on("status", got.append)
        client.connect(url, transports=["websocket"], wait_timeout=10, **kwargs)  # type: ignore[arg-type]
        deadline = time.time() + 10
        while not got and time.time() < deadline:
            time.sleep(0.05)
        client.disconnect()
        assert got and "exec_info" in got[0]["status"], kwargs


def test_a_run_completes_and_its_submitter_is_the_tokens_name(token_farm: Farm) -> None:
    ws = WsClient(token_farm.url, token=BOB)
    try:
        res = requests.post(token_farm.url + "/prompt", headers=bearer(BOB), timeout=10, json={
            "prompt": {**image_prompt("bob_run"),
                       "9": {"class_type": "TestSlowValue", "inputs": {"value": 1.0, "seconds": 2.0, "tag": "auth"}},
                       "10": {"class_type": "TestFloatOutput", "inputs": {"value": ["9", 0]}}},
            "client_id": ws.client_id, "extra_data": {"nodefarm_submitter": "mallory"}})
        assert res.status_code == 200, res.text
        pid = res.json()["prompt_id"]
        queue = requests.get(token_farm.url + "/queue", headers=bearer(ALICE), timeout=10).json()
        items = [i for i in queue["queue_running"] + queue["queue_pending"] if i[1] == pid]
        assert items and items[0][3]["nodefarm_submitter"] == "bob"
        job = requests.get(f"{token_farm.url}/api/jobs/{pid}", headers=bearer(ALICE), timeout=10).json()
        assert job["submitter"] == "bob" and job["status"] in ("pending", "in_progress")
        ws.until_done(pid)
    finally:
        ws.close()
    entry = token_farm.wait(pid)
    assert_success(entry)
    image = entry["outputs"]["3"]["images"][0]
    assert token_farm.image(image)[:8] == b"\x89PNG\r\n\x1a\n"
    jobs = requests.get(token_farm.url + "/api/jobs", headers=bearer(ALICE), timeout=10).json()["jobs"]
    assert [j["submitter"] for j in jobs if j["id"] == pid] == ["bob"]
    assert entry["prompt"][3]["nodefarm_submitter"] == "bob"
    alice = token_farm.run(image_prompt("alice_run"))  # Farm sends alice's token
    assert_success(alice)
    assert alice["prompt"][3]["nodefarm_submitter"] == "alice"


def test_a_worker_fetches_a_model_from_internal_with_the_farms_token(token_farm: Farm) -> None:
    model = token_farm.api_dir / "models" / "checkpoints" / "auth-test.safetensors"
    model.parent.mkdir(parents=True, exist_ok=True)
    payload = secrets.token_bytes(4096)
    model.write_bytes(payload)
    settings = Settings(api_url=token_farm.url)
    for token in ("", "wrong-token-wrong-token"):
        target = token_farm.tmp / f"fetch-{token or 'none'}"
        assert make_model_fetch(settings.with_(api_token=token))("checkpoints", model.name, str(target)) is None
        assert not (target / model.name).exists()
    target = token_farm.tmp / "fetch-internal"
    got = make_model_fetch(settings.with_(api_token=INTERNAL))("checkpoints", model.name, str(target))
    assert got is not None and got.read_bytes() == payload


def test_a_token_added_to_the_file_works_at_once_and_a_removed_one_stops(token_farm: Farm) -> None:
    tokens: Path = token_farm.tokens  # type: ignore[attr-defined]
    carol = secrets.token_urlsafe(32)
    original = tokens.read_text()
    assert requests.get(token_farm.url + "/queue", headers=bearer(carol), timeout=10).status_code == 401
    try:
        tokens.write_text(original + f"carol {carol}\n")
        assert requests.get(token_farm.url + "/queue", headers=bearer(carol), timeout=10).status_code == 200
        tokens.write_text(original.replace(f"bob {BOB}", "") + f"carol {carol}\n")
        assert requests.get(token_farm.url + "/queue", headers=bearer(BOB), timeout=10).status_code == 401
    finally:
        tokens.write_text(original)
    assert requests.get(token_farm.url + "/queue", headers=bearer(carol), timeout=10).status_code == 401
    assert requests.get(token_farm.url + "/queue", headers=bearer(BOB), timeout=10).status_code == 200


# ---- browsers: the login page and the cookie ------------------------------------------------------

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def test_a_browser_without_a_token_is_sent_to_the_login_page(token_farm: Farm) -> None:
    url = token_farm.url
    for path, next_path in (("/", "/"), ("/nodefarm/", "/nodefarm/"), ("/api/jobs?limit=1", "/api/jobs?limit=1")):
        res = requests.get(url + path, headers=HTML, allow_redirects=False, timeout=10)
        assert res.status_code in (302, 303), (path, res.status_code)
        assert res.headers["Location"].startswith("/nodefarm/login?next=")
        assert requests.utils.unquote(res.headers["Location"].split("next=", 1)[1]) == next_path
    page = requests.get(url + "/nodefarm/login?next=/nodefarm/", timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert '<form method="post" action="/nodefarm/login">' in page.text and 'value="/nodefarm/"' in page.text
    assert "http" not in page.text.replace("http-equiv", "")  # self-contained: no external resources


def test_the_login_form_sets_an_httponly_strict_cookie_and_goes_to_next(token_farm: Farm) -> None:
    url = token_farm.url
    res = requests.post(url + "/nodefarm/login", data={"token": ALICE, "next": "/nodefarm/"}, allow_redirects=False, timeout=10)
    assert res.status_code == 303 and res.headers["Location"] == "/nodefarm/"
    cookie = res.headers["Set-Cookie"]
    assert cookie.startswith(f"nodefarm_token={ALICE};") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    session = requests.Session()
    session.cookies.set("nodefarm_token", ALICE)
    assert session.get(url + "/nodefarm/", headers=HTML, allow_redirects=False, timeout=10).status_code == 200
    for bad_next in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)", ""):
        res = requests.post(url + "/nodefarm/login", data={"token": ALICE, "next": bad_next}, allow_redirects=False, timeout=10)
        assert res.status_code == 303 and res.headers["Location"] == "/", bad_next
    wrong = requests.post(url + "/nodefarm/login", data={"token": "nope-nope-nope-nope", "next": "/"}, allow_redirects=False, timeout=10)
    assert wrong.status_code == 401 and "Set-Cookie" not in wrong.headers and "not valid" in wrong.text
    out = session.post(url + "/nodefarm/logout", allow_redirects=False, timeout=10)
    assert out.status_code == 303 and "nodefarm_token=;" in out.headers["Set-Cookie"]
    foreign = requests.post(url + "/nodefarm/login", data={"token": ALICE, "next": "/"}, headers={"Origin": "http://evil.example"},
                            allow_redirects=False, timeout=10)
    assert foreign.status_code == 403  # the Origin guard still runs first


def test_a_token_in_a_page_url_becomes_the_cookie_and_leaves_the_url(token_farm: Farm) -> None:
    res = requests.get(token_farm.url + f"/nodefarm/?token={BOB}&tab=runs", headers=HTML, allow_redirects=False, timeout=10)
    assert res.status_code == 303 and res.headers["Location"] == "/nodefarm/?tab=runs"
    assert res.headers["Set-Cookie"].startswith(f"nodefarm_token={BOB};") and "HttpOnly" in res.headers["Set-Cookie"]
    bad = requests.get(token_farm.url + "/nodefarm/?token=wrong-wrong-wrong-wrong", headers=HTML, allow_redirects=False, timeout=10)
    assert bad.status_code in (302, 303) and bad.headers["Location"].startswith("/nodefarm/login?next=")
    assert "wrong-wrong" not in bad.headers["Location"]
    elsewhere = requests.get(token_farm.url + f"//evil.example/?token={BOB}", headers=HTML, allow_redirects=False, timeout=10)
    location = elsewhere.headers["Location"]
    assert elsewhere.status_code == 303 and location.startswith("/") and not location.startswith("//")  # never off-site


def test_without_tokens_the_submitter_is_the_client_id(farm: Farm) -> None:
    client_id = uuid.uuid4().hex
    pid = farm.submit(image_prompt("no_auth"), client_id=client_id, extra_data={"nodefarm_submitter": "mallory"})
    entry = farm.wait(pid)
    assert entry["prompt"][3]["nodefarm_submitter"] == client_id
    job = requests.get(f"{farm.url}/api/jobs/{pid}", timeout=10).json()
    assert job["submitter"] == client_id
    assert requests.get(farm.url + "/nodefarm/login", timeout=10).status_code == 404  # no login without tokens
