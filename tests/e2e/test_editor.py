"""The official ComfyUI editor (comfyui-frontend-package) in headless Chromium against a real farm:
first and later boot without errors from our backend, the node library, Run showing the result image,
the seed's legacy extension (setup, its button) and custom events sent by a node on a worker.

Every test saves a screenshot under tests/screenshots/ (gitignored).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.farm import ROOT, Farm

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOTS = ROOT / "tests" / "screenshots"
BOOT_TIMEOUT_MS = 60_000
APP = "window.comfyAPI.app.app"


def allowed_failure(method: str, url: str, status: int) -> bool:
    """Answers ComfyUI itself gives while the user has no such data yet (spec 2.2)."""
    parts = urlsplit(url)
    if method == "GET" and status == 404 and parts.path == "/api/userdata" and "dir=" in parts.query:
        return True  # listing a user folder that does not exist yet (workflows/, subgraphs/)
    if method == "GET" and status == 404 and parts.path.startswith("/api/userdata/"):
        return True  # a user file not written yet (comfy.templates.json)
    return False


class Editor:
    """One page of the editor, recording what would show a problem with our backend."""

    def __init__(self, browser: Any, farm: Farm, name: str) -> None:
        self.farm = farm
        self.name = name
        self.origin = farm.url
        self.context = browser.new_context(viewport={"width": 1400, "height": 900})
        self.page = self.context.new_page()
        self.console: list[tuple[str, str, str]] = []
        self.page_errors: list[str] = []
        self.failed: list[tuple[str, str, int]] = []
        self.ws_urls: list[str] = []
        self.ws_sent: list[str] = []
        self.ws_received: list[str] = []
        self.prompt_bodies: list[dict] = []
        # what the farm's Content-Security-Policy (api/browser.py) blocked on the page
        self.page.add_init_script("window.__csp = []; document.addEventListener('securitypolicyviolation', "
                                  "e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI))")
        self.page.on("console", lambda m: self.console.append((m.type, m.text, (m.location or {}).get("url", ""))))
        self.page.on("pageerror", lambda e: self.page_errors.append(str(e)))
        self.page.on("response", self._on_response)
        self.page.on("request", self._on_request)
        self.page.on("websocket", self._on_ws)

    def _on_response(self, response: Any) -> None:
        if response.status >= 400 and response.url.startswith(self.origin):
            self.failed.append((response.request.method, response.url, response.status))

    def _on_request(self, req: Any) -> None:
        if req.method == "POST" and urlsplit(req.url).path == "/api/prompt":
            try:
                self.prompt_bodies.append(json.loads(req.post_data or "{}"))
            except ValueError:
                pass

    def _on_ws(self, ws: Any) -> None:
        self.ws_urls.append(ws.url)
        ws.on("framesent", lambda payload: self.ws_sent.append(payload if isinstance(payload, str) else "<binary>"))
        ws.on("framereceived", lambda payload: self.ws_received.append(payload if isinstance(payload, str) else "<binary>"))

    def boot(self) -> None:
        self.page.goto(self.origin + "/")
        self.page.wait_for_function(
            "() => window.comfyAPI?.app?.app?.graph && 'SaveImage' in (window.LiteGraph?.registered_node_types || {})",
            timeout=BOOT_TIMEOUT_MS,
        )
        self.page.locator("canvas").first.wait_for(timeout=BOOT_TIMEOUT_MS)

    def wait_until(self, predicate: Any, timeout: float = 10.0) -> None:
        deadline = time.time() + timeout
        while not predicate():
            assert time.time() < deadline, "timed out"
            self.page.wait_for_timeout(100)

    def js(self, script: str, arg: Any = None) -> Any:
        return self.page.evaluate(script, arg)

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path))
        return path

    def backend_problems(self) -> list[str]:
        """Page errors, failed responses from the farm and console errors, except ComfyUI's expected
        404s and resources outside the farm (the editor's calls to comfy.org fail offline)."""
        problems = [f"page error: {e}" for e in self.page_errors]
        problems += [f"blocked by the page's policy: {v}" for v in self.js("() => window.__csp || []")]
        expected = [f for f in self.failed if allowed_failure(*f)]
        problems += [f"{m} {u} -> {s}" for m, u, s in self.failed if not allowed_failure(m, u, s)]
        for kind, text, url in self.console:
            if kind != "error":
                continue
            if url and not url.startswith(self.origin):
                continue  # not our backend (offline look-ups of comfy.org)
            if text.startswith("Failed to load resource") and any(url == u for _m, u, _s in expected):
                continue
            problems.append(f"console error: {text[:300]} ({url})")
        return problems

    def close_dialogs(self) -> None:
        for _ in range(3):
            if not self.page.locator("[role=dialog]:visible").count():
                return
            self.page.keyboard.press("Escape")
            self.page.wait_for_timeout(300)

    def load_api_workflow(self, prompt: dict, name: str) -> None:
        self.js(f"([p, n]) => {APP}.loadApiJson(p, n)", [prompt, name])
        self.page.wait_for_function(f"() => {APP}.graph.nodes.length === {len(prompt)}", timeout=10_000)

    def run(self) -> None:
        self.page.get_by_role("button", name="Run", exact=True).first.click()

    def close(self) -> None:
        self.context.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (`make chromium`) to run the browser tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def booted(browser: Any, farm: Farm) -> Iterator[Editor]:
    """An editor booted once (not the first boot) that the later tests share."""
    editor = Editor(browser, farm, "shared")
    editor.boot()
    editor.close_dialogs()
    yield editor
    editor.close()


def test_first_boot_with_an_empty_user_dir(browser: Any, farm: Farm) -> None:
    shutil.rmtree(farm.api_dir / "user" / "default", ignore_errors=True)
    assert requests.get(farm.url + "/api/users", timeout=5).json() == {"storage": "server", "migrated": False}
    editor = Editor(browser, farm, "first")
    try:
        editor.boot()
        # a first boot opens the templates browser (the tutorial is not completed yet)
        dialog = editor.page.locator("[role=dialog]:visible")
        dialog.first.wait_for(timeout=20_000)
        assert "Templates" in dialog.first.inner_text()
        editor.screenshot("01_first_boot_templates_dialog")
        editor.close_dialogs()
        assert editor.page.locator("[role=dialog]:visible").count() == 0
        editor.page.wait_for_function(
            "async () => (await (await fetch('/api/settings')).json())['Comfy.TutorialCompleted'] === true", timeout=10_000
        )
        assert editor.ws_urls and urlsplit(editor.ws_urls[0]).path == "/ws" and "clientId" not in editor.ws_urls[0]
        editor.wait_until(lambda: editor.ws_sent)
        first_frame = json.loads(editor.ws_sent[0])
        assert first_frame["type"] == "feature_flags"
        assert ("log", "Extension loaded") in [(k, t) for k, t, _u in editor.console]  # the seed's setup()
        # a pack script that imports app itself ran once, and so did the nested module of its folder
        assert editor.js("() => [window.__editorTestModern, window.__editorTestHelper]") == [1, True]
        editor.screenshot("02_first_boot")
        assert editor.backend_problems() == []
        assert (farm.api_dir / "user" / "default" / "comfy.settings.json").is_file()
    finally:
        editor.close()


def test_later_boot(booted: Editor) -> None:
    booted.page.wait_for_timeout(1500)
    assert booted.page.locator("[role=dialog]:visible").count() == 0  # no templates browser this time
    assert "my.custom.extension" in booted.js(f"() => {APP}.extensions.map(e => e.name)")
    booted.screenshot("03_later_boot")
    assert booted.backend_problems() == []


def test_node_library_lists_builtin_and_custom_nodes(booted: Editor) -> None:
    page = booted.page
    booted.js(f"() => {APP}.graph.clear()")  # the stock default graph needs model nodes the farm lacks
    page.get_by_role("button", name="Node Library (n)").click()
    panel = page.locator(".side-bar-panel, [class*=sidebar]").filter(has_text="COMFY NODES").first
    panel.wait_for(timeout=10_000)
    text = panel.inner_text()
    for category in ("image", "latent", "seed_examples", "editor_test"):
        assert category in text, text
    search = page.get_by_placeholder("Search Nodes...").first
    for query, shown in (("Invert Image", "Invert Image"), ("My Custom Node", "My Custom Node"), ("InteractiveNode", "InteractiveNode")):
        search.fill(query)
        page.get_by_text(shown, exact=True).first.wait_for(timeout=10_000)
    booted.screenshot("04_node_library")
    search.fill("")
    page.get_by_role("button", name="Node Library (n)").click()
    assert booted.backend_problems() == []


def test_run_api_workflow_shows_the_result_image(booted: Editor) -> None:
    prefix = f"editor_{uuid.uuid4().hex[:8]}"
    prompt = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 96, "height": 64, "batch_size": 1, "color": 0x3366CC}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": prefix}},
        "4": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
    }
    booted.load_api_workflow(prompt, "api_workflow.json")
    booted.run()
    booted.page.wait_for_function(
        f"""() => {{ const n = {APP}.graph.getNodeById(3);
                     return n && n.imgs && n.imgs.length && n.imgs[0].complete && n.imgs[0].naturalWidth === 96
                            && n.imgs[0].src.includes('{prefix}') }}""",
        timeout=60_000,
    )
    body = booted.prompt_bodies[-1]
    assert body["prompt"]["3"]["inputs"]["filename_prefix"] == prefix
    assert body["client_id"] and isinstance(body["extra_data"]["extra_pnginfo"]["workflow"], dict)
    src = booted.js(f"() => {APP}.graph.getNodeById(3).imgs[0].src")
    assert "/api/view?" in src and "type=output" in src
    booted.page.wait_for_function(  # PreviewImage: a temp file shown through /view?...&type=temp
        f"() => {APP}.graph.getNodeById(4).imgs?.[0]?.complete && {APP}.graph.getNodeById(4).imgs[0].naturalWidth === 96",
        timeout=30_000,
    )
    assert "type=temp" in booted.js(f"() => {APP}.graph.getNodeById(4).imgs[0].src")
    image = requests.get(src, timeout=10)
    assert image.status_code == 200 and image.content[:8] == b"\x89PNG\r\n\x1a\n"
    booted.page.wait_for_timeout(500)
    booted.screenshot("05_run_result")
    assert booted.backend_problems() == []


def test_seed_extension_adds_its_button(booted: Editor) -> None:
    booted.js(f"() => {APP}.graph.clear()")
    booted.js(f"""() => {{ const n = window.LiteGraph.createNode('MyCustomNode'); n.pos = [200, 200];
                          {APP}.graph.add(n); {APP}.canvas.setDirty(true, true) }}""")
    booted.page.wait_for_function(
        f"() => {APP}.graph.nodes.some(n => n.type === 'MyCustomNode' && n.widgets?.some(w => w.type === 'button' && w.name === 'Click Me'))",
        timeout=10_000,
    )
    messages: list[str] = []
    booted.page.once("dialog", lambda d: (messages.append(d.message), d.accept()))
    booted.js(f"""() => {{ const n = {APP}.graph.nodes.find(n => n.type === 'MyCustomNode');
                          const w = n.widgets.find(w => w.name === 'Click Me'); w.callback(w.value, {APP}.canvas, n) }}""")
    booted.page.wait_for_timeout(300)
    assert messages == ["Button clicked!"]
    booted.screenshot("06_seed_extension_button")
    assert booted.backend_problems() == []


def test_page_listener_gets_custom_events_from_a_worker_node(booted: Editor) -> None:
    booted.js(f"""() => {{ window.__events = [];
        {APP}.api.addEventListener('my_node.progress', e => window.__events.push(['progress', e.detail]));
        {APP}.api.addEventListener('my_node.complete', e => window.__events.push(['complete', e.detail])); }}""")
    value = round(random.uniform(1.0, 1000.0), 1)  # a new value (a cached node sends nothing); the widget keeps 0.1 steps
    prompt = {
        "1": {"class_type": "InteractiveNode", "inputs": {"value": value}},
        "2": {"class_type": "TestFloatOutput", "inputs": {"value": ["1", 0]}},
    }
    booted.load_api_workflow(prompt, "interactive.json")
    with booted.page.expect_response(lambda r: urlsplit(r.url).path == "/api/prompt" and r.request.method == "POST") as posted:
        booted.run()
    pid = posted.value.json()["prompt_id"]
    booted.page.wait_for_function("() => window.__events.length >= 2", timeout=60_000)
    events = booted.js("() => window.__events")
    assert events[0] == ["progress", {"node_id": "1", "progress": 0.5, "message": "Processing..."}]
    assert events[1][0] == "complete" and events[1][1]["node_id"] == "1"
    sent = booted.prompt_bodies[-1]["prompt"]["1"]["inputs"]["value"]
    assert abs(sent - value) < 1e-6 and abs(events[1][1]["result"] - sent * 2) < 1e-6
    booted.wait_until(lambda: requests.get(f"{booted.farm.url}/api/jobs/{pid}", timeout=5).json().get("status") == "completed", 30)
    booted.screenshot("07_custom_events")
    assert booted.backend_problems() == []


def test_progress_travels_as_deltas_and_the_editor_gets_comfyuis_frames(booted: Editor) -> None:
    """nodefarm's editor extension asks for progress deltas and rebuilds ComfyUI's full
    progress_state frames in the page: the editor receives what ComfyUI would send, for far fewer bytes."""
    assert "/extensions/nodefarm/nodefarm.js" in requests.get(booted.farm.url + "/api/extensions", timeout=5).json()
    booted.wait_until(lambda: any('"nodefarm.flags"' in m for m in booted.ws_sent))
    booted.js(f"() => {{ window.__ps = []; {APP}.api.addEventListener('progress_state', e => window.__ps.push(e.detail)) }}")
    length = 30
    seed = round(random.uniform(1.0, 1000.0), 1)
    prompt: dict[str, Any] = {"0": {"class_type": "PrimitiveFloat", "inputs": {"value": seed}}}
    for i in range(1, length):
        prompt[str(i)] = {"class_type": "MathOperation", "inputs": {"a": [str(i - 1), 0], "b": 1.0, "operation": "add"}}
    prompt[str(length)] = {"class_type": "TestFloatOutput", "inputs": {"value": [str(length - 1), 0]}}
    booted.load_api_workflow(prompt, "chain.json")
    received_before = len(booted.ws_received)
    with booted.page.expect_response(lambda r: urlsplit(r.url).path == "/api/prompt" and r.request.method == "POST") as posted:
        booted.run()
    pid = posted.value.json()["prompt_id"]
    booted.page.wait_for_function(
        f"""() => window.__ps.some(f => f.prompt_id === '{pid}' && Object.keys(f.nodes).length === {length + 1}
                                     && Object.values(f.nodes).every(n => n.state === 'finished'))""",
        timeout=60_000,
    )
    frames = [json.loads(m) for m in booted.ws_received[received_before:] if m.startswith("{")]
    kinds = {f["type"] for f in frames if isinstance(f.get("data"), dict) and f["data"].get("prompt_id") == pid}
    assert "nodefarm.progress_delta" in kinds and "progress_state" not in kinds
    assert all(len(f["data"]["nodes"]) <= 2 for f in frames if f["type"] == "nodefarm.progress_delta")
    seen = [f for f in booted.js("() => window.__ps") if f["prompt_id"] == pid]
    replayed = [e["data"] for e in requests.get(f"{booted.farm.url}/nodefarm/runs/{pid}/events", timeout=5).json()
                if e["type"] == "progress_state"]
    assert seen[-1] == replayed[-1]  # the last frame the editor applied is ComfyUI's last frame
    booted.screenshot("08_progress_deltas")
    assert booted.backend_problems() == []


def test_the_editor_and_the_dashboard_work_under_the_farms_policy(booted: Editor) -> None:
    """Both pages come with a strict Content-Security-Policy (inline scripts by hash, frame-ancestors)
    and nothing on them is blocked by it: the editor ran workflows above, the dashboard lists workers."""
    policy = booted.page.request.get(booted.origin + "/").headers["content-security-policy"]
    assert "frame-ancestors 'self'" in policy and "'sha256-" in policy
    assert booted.js("() => window.__csp") == []
    dashboard = Editor(booted.page.context.browser, booted.farm, "dashboard")
    try:
        dashboard.page.goto(booted.origin + "/nodefarm/")
        dashboard.page.wait_for_function("() => document.body.innerText.includes('@test')", timeout=20_000)
        assert "'sha256-" in dashboard.page.request.get(booted.origin + "/nodefarm/").headers["content-security-policy"]
        assert dashboard.backend_problems() == []
    finally:
        dashboard.close()
