"""The official editor and the dashboard on a farm with named tokens (issue 9, item 3), in headless
Chromium: the editor's URL leads to the login page; after the token is entered there, the cookie
carries the editor's HTTP calls and its ``/ws``, a prompt queued with the Run button runs to success
under the token's name, and the dashboard opens too. ``?token=`` in a page URL logs a browser in once.

Screenshots go to tests/screenshots/ (gitignored).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.e2e.test_editor import APP, BOOT_TIMEOUT_MS, Editor, browser  # noqa: F401  (browser: the fixture)
from tests.farm import Farm

pytestmark = pytest.mark.e2e

ALICE = secrets.token_urlsafe(32)
BOB = secrets.token_urlsafe(32)


@pytest.fixture(scope="module")
def token_farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    tmp = Path(tmp_path_factory.mktemp("auth_editor"))
    tokens = tmp / "tokens.txt"
    tokens.write_text(f"alice {ALICE}\nbob {BOB}\n")
    f = Farm(tmp, workers=1, token=ALICE, env={"NODEFARM_AUTH_TOKEN_FILE": str(tokens),
                                                "NODEFARM_API_TOKEN": secrets.token_urlsafe(32)})
    yield f
    f.stop()


def the_cookie(editor: Editor) -> dict:
    (cookie,) = [c for c in editor.context.cookies() if c["name"] == "nodefarm_token"]
    return cookie


def problems(editor: Editor) -> list[str]:
    """The editor's backend problems, less its look-ups of comfy.org (offline here; a CSP may block them)
    and the dashboard's missing icon (a 404 with or without tokens; a 401 would still count)."""
    return [p for p in editor.backend_problems()
            if "https://api.comfy.org" not in p and not ("/favicon.ico" in p and "404" in p)]


def test_the_editor_after_login_runs_a_prompt_under_the_tokens_name(browser: Any, token_farm: Farm) -> None:  # noqa: F811
    editor = Editor(browser, token_farm, "auth")
    try:
        editor.page.goto(token_farm.url + "/")
        login = urlsplit(editor.page.url)
        assert login.path == "/nodefarm/login" and parse_qs(login.query)["next"] == ["/"]
        assert not editor.ws_urls  # nothing of the editor loaded before the login
        editor.screenshot("auth_01_login_page")
        editor.page.locator("#token").fill(ALICE)
        editor.page.get_by_role("button", name="Sign in").click()
        editor.page.wait_for_function(
            "() => window.comfyAPI?.app?.app?.graph && 'SaveImage' in (window.LiteGraph?.registered_node_types || {})",
            timeout=BOOT_TIMEOUT_MS,
        )
        editor.page.locator("canvas").first.wait_for(timeout=BOOT_TIMEOUT_MS)
        assert urlsplit(editor.page.url).path == "/"
        cookie = the_cookie(editor)
        assert cookie["value"] == ALICE and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert editor.js("() => document.cookie").find("nodefarm_token") == -1  # HttpOnly: scripts never see it
        editor.close_dialogs()

        prefix = f"auth_{uuid.uuid4().hex[:8]}"
        prompt = {
            "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 48, "batch_size": 1, "color": 0x22AA44}},
            "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
            "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": prefix}},
        }
        editor.load_api_workflow(prompt, "auth_workflow.json")
        with editor.page.expect_response(lambda r: urlsplit(r.url).path == "/api/prompt" and r.request.method == "POST") as posted:
            editor.run()
        assert posted.value.status == 200
        pid = posted.value.json()["prompt_id"]
        editor.page.wait_for_function(  # the image comes back: /view with the cookie, status over /ws
            f"""() => {{ const n = {APP}.graph.getNodeById(3);
                         return n && n.imgs && n.imgs.length && n.imgs[0].complete && n.imgs[0].naturalWidth === 64
                                && n.imgs[0].src.includes('{prefix}') }}""",
            timeout=60_000,
        )
        assert editor.ws_urls and urlsplit(editor.ws_urls[0]).path == "/ws" and "token" not in editor.ws_urls[0]
        assert any(f'"prompt_id": "{pid}"' in m for m in editor.ws_received)  # /ws opened with the cookie alone
        job = requests.get(f"{token_farm.url}/api/jobs/{pid}", headers=token_farm.headers, timeout=10).json()
        assert job["status"] == "completed" and job["submitter"] == "alice"
        editor.screenshot("auth_02_editor_ran")
        assert problems(editor) == []

        editor.page.goto(token_farm.url + "/nodefarm/")  # the dashboard, with the same cookie
        assert urlsplit(editor.page.url).path == "/nodefarm/"
        editor.page.wait_for_timeout(1500)
        editor.screenshot("auth_03_dashboard")
        assert problems(editor) == []
    finally:
        editor.close()


def test_a_token_in_the_url_logs_a_browser_in_once(browser: Any, token_farm: Farm) -> None:  # noqa: F811
    editor = Editor(browser, token_farm, "auth_url")
    try:
        editor.page.goto(token_farm.url + f"/nodefarm/?token={BOB}")
        assert urlsplit(editor.page.url).path == "/nodefarm/" and "token" not in editor.page.url
        assert the_cookie(editor)["value"] == BOB
        editor.page.goto(token_farm.url + "/")
        editor.page.wait_for_function("() => window.comfyAPI?.app?.app?.graph", timeout=BOOT_TIMEOUT_MS)
        assert urlsplit(editor.page.url).path == "/"
        assert problems(editor) == []
    finally:
        editor.close()
