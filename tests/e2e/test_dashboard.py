"""The farm dashboard (/nodefarm/, frontend/dashboard/ built by make, api/dashboard.py) in a real headless Chromium
against a real farm of two workers: the worker list and its update when a worker stops; a run submitted from the
page followed live (its DAG colours to done, its image); cancel from the dashboard; a PNG made by SaveImage dropped
on the page runs again fully cached; a failed run shows its failing node and error; the page at phone width.

Every test saves a screenshot under tests/screenshots/ (gitignored) and asserts no page error, console error,
failed request or Content-Security-Policy violation (the Editor recorder of test_editor.py).
"""

from __future__ import annotations

import base64
import json
import random
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.test_editor import Editor, browser  # noqa: F401  (browser: the fixture)
from tests.farm import ROOT, Farm

pytestmark = pytest.mark.e2e

BUILT = ROOT / "frontend" / "dashboard" / "dist" / "index.html"
TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def board_farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    if not BUILT.is_file():
        pytest.fail(f"{BUILT} is missing: build the dashboard first (`make dashboard`; `make test` does it)")
    # one run at a time, so that a test can hold runs in the queue (each test waits for its own runs)
    f = Farm(Path(tmp_path_factory.mktemp("dashboard")), workers=2, env={"NODEFARM_MAX_ACTIVE_RUNS": "1"})
    yield f
    f.stop()


class Board(Editor):
    """A dashboard page at 1280x800, recording what would show a problem (see Editor)."""

    def __init__(self, browser: Any, farm: Farm, name: str, hash_: str = "#/") -> None:  # noqa: F811
        super().__init__(browser, farm, name)
        self.page.set_viewport_size({"width": 1280, "height": 800})
        self.page.goto(f"{farm.url}/nodefarm/{hash_}")
        self.page.locator("#conn[data-conn=live]").wait_for(timeout=TIMEOUT_MS)

    def problems(self) -> list[str]:
        return [p for p in self.backend_problems() if not ("/favicon.ico" in p and "404" in p)]

    def unnamed_controls(self) -> list[str]:
        """Buttons, inputs and selects without an accessible name."""
        return self.js("""() => [...document.querySelectorAll('button, input, select')].filter(el => {
            const named = (el.getAttribute('aria-label') || '').trim() || (el.textContent || '').trim() ||
                          (el.id && document.querySelector(`label[for="${el.id}"]`)) || el.closest('label');
            return !named; }).map(el => el.outerHTML.slice(0, 120))""")

    def outside_drawing(self) -> list[str]:
        """Boxes and edges of the run's graph that reach beyond its drawing (where they would be cut off)."""
        return self.js("""() => { const svg = document.querySelector('svg.dag'); const b = svg.getBoundingClientRect();
            return [...svg.querySelectorAll('path.edge, g.dag-node')].filter(el => { const r = el.getBoundingClientRect();
                return r.left < b.left - 1 || r.top < b.top - 1 || r.right > b.right + 1 || r.bottom > b.bottom + 1; })
              .map(el => el.outerHTML.slice(0, 120)); }""")

    def state_of(self, nid: str) -> str:
        return str(self.page.locator(f"g.dag-node[data-node='{nid}']").get_attribute("data-state"))

    def wait_state(self, nid: str, *states: str, timeout: int = TIMEOUT_MS) -> None:
        self.page.wait_for_function(
            "([nid, states]) => { const g = document.querySelector(`g.dag-node[data-node='${nid}']`);"
            " return g && states.includes(g.dataset.state); }", arg=[nid, list(states)], timeout=timeout)

    def run_status(self, *states: str, timeout: int = TIMEOUT_MS) -> None:
        self.page.wait_for_function("states => states.includes(document.querySelector('#run-status')?.dataset.status)",
                                    arg=list(states), timeout=timeout)

    def drop(self, name: str, mime: str, data: bytes) -> None:
        """Drop a file on the submit page's drop area, as a user dragging it from the desktop does."""
        self.page.evaluate("""([name, mime, b64]) => {
            const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], name, {type: mime}));
            const drop = document.getElementById('drop');
            drop.dispatchEvent(new DragEvent('dragover', {dataTransfer: dt, bubbles: true, cancelable: true}));
            drop.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
        }""", [name, mime, base64.b64encode(data).decode()])


def slow_chain(n: int, seconds: float) -> dict:
    """n TestSlowValue nodes in a chain, then an output node (a value of its own: never cached)."""
    prompt: dict[str, Any] = {"1": {"class_type": "TestSlowValue",
                                    "inputs": {"value": random.random(), "seconds": seconds, "tag": "board"}}}
    for i in range(2, n + 1):
        prompt[str(i)] = {"class_type": "TestSlowValue", "inputs": {"value": [str(i - 1), 0], "seconds": seconds, "tag": "board"}}
    prompt[str(n + 1)] = {"class_type": "TestFloatOutput", "inputs": {"value": [str(n), 0]}}
    return prompt


def image_prompt(seconds: float) -> dict:
    """An image branch (EmptyImage -> ImageInvert -> SaveImage) and a slow branch, both fresh."""
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 48, "height": 32, "batch_size": 1,
                                                     "color": random.randrange(1 << 24)}, "_meta": {"title": "Fresh colour"}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "board/run"}},
        "4": {"class_type": "TestSlowValue", "inputs": {"value": random.random(), "seconds": seconds, "tag": "board"},
              "_meta": {"title": "Slow"}},
        "5": {"class_type": "TestFloatOutput", "inputs": {"value": ["4", 0]}},
    }


def test_a_run_submitted_from_the_page_is_followed_live_to_done_with_its_image(browser: Any, board_farm: Farm) -> None:  # noqa: F811
    board = Board(browser, board_farm, "submit", "#/submit")
    try:
        prompt = image_prompt(seconds=3.0)
        board.page.set_input_files("#submit-file", files=[{"name": "fresh.json", "mimeType": "application/json",
                                                           "buffer": json.dumps({"prompt": prompt}).encode()}])
        board.page.wait_for_url("**/nodefarm/#/run/*", timeout=TIMEOUT_MS)
        pid = board.page.url.split("#/run/")[1]
        board.wait_state("4", "running")  # the slow node, live, with the worker that took it
        board.page.locator("g.dag-node[data-node='4'] text.t3").filter(has_text="@test").wait_for(timeout=TIMEOUT_MS)
        board.screenshot("dashboard_01_run_running")
        board.run_status("done")
        for nid in prompt:
            assert board.state_of(nid) == "done", nid
        img = board.page.locator("#run-images-body img.output[data-kind=output]").first
        img.wait_for(timeout=TIMEOUT_MS)
        board.page.wait_for_function("img => img.complete && img.naturalWidth === 48", arg=img.element_handle(), timeout=TIMEOUT_MS)
        lanes = board.page.locator(".timeline .lane-name").all_inner_texts()
        assert lanes and all(lane.endswith("@test") for lane in lanes), lanes  # the timeline: which worker ran what
        board.screenshot("dashboard_02_run_done")
        board.page.goto(f"{board_farm.url}/nodefarm/#/")  # the runs list has it, done, with its image
        row = board.page.locator(f"#runs-body tr[data-run='{pid}']")
        row.wait_for(timeout=TIMEOUT_MS)
        assert row.get_attribute("data-status") == "done"
        board.page.locator(f"#runs-body tr[data-run='{pid}'] img.thumb").wait_for(timeout=TIMEOUT_MS)
        board.screenshot("dashboard_03_overview")
        assert board.unnamed_controls() == []
        assert board.problems() == []
    finally:
        board.close()


@pytest.mark.parametrize("example", ["invert.json", "blend_batch.json"])
def test_an_example_picked_on_the_page_runs_and_is_followed_to_its_images(browser: Any, board_farm: Farm, example: str) -> None:  # noqa: F811
    """examples/*.json from the Submit page (txt2img.json needs ComfyUI: tests/comfyui runs it from the page)."""
    prompt = json.loads((ROOT / "examples" / example).read_text())
    board = Board(browser, board_farm, "example", "#/submit")
    try:
        board.page.get_by_role("combobox", name="Example workflow").select_option(example)
        board.page.get_by_role("button", name="Run example").click()
        board.page.wait_for_url("**/nodefarm/#/run/*", timeout=TIMEOUT_MS)
        board.run_status("done")
        for nid in prompt:
            assert board.state_of(nid) in ("done", "cached"), nid
        saver = next(nid for nid, node in prompt.items() if node["class_type"] == "SaveImage")
        board.page.locator(f"#run-images-body figure[data-node='{saver}'] img.output").first.wait_for(timeout=TIMEOUT_MS)
        board.screenshot(f"dashboard_example_{example.removesuffix('.json')}")
        assert board.problems() == []
    finally:
        board.close()


def test_an_example_this_farm_cannot_run_says_why_before_it_is_sent(browser: Any, board_farm: Farm) -> None:  # noqa: F811
    """txt2img.json needs ComfyUI's model nodes and a checkpoint: a farm without --comfyui says so, and runs nothing."""
    board = Board(browser, board_farm, "example-refused", "#/submit")
    try:
        picker = board.page.get_by_role("combobox", name="Example workflow")
        board.page.locator("#example option[value='txt2img.json']").wait_for(state="attached", timeout=TIMEOUT_MS)
        labels = picker.locator("option").all_inner_texts()
        assert "txt2img.json (cannot run here)" in labels and "invert.json" in labels, labels
        picker.select_option("txt2img.json")
        note = board.page.locator("#example-note")
        assert "is one of ComfyUI's core nodes: start the farm with --comfyui" in note.inner_text()
        before = requests.get(board_farm.url + "/queue", timeout=10).json()
        board.page.get_by_role("button", name="Run example").click()
        board.page.locator("#submit-result .error").wait_for(timeout=TIMEOUT_MS)
        assert "--comfyui" in board.page.locator("#submit").inner_text()
        assert "#/run/" not in board.page.url
        assert requests.get(board_farm.url + "/queue", timeout=10).json() == before
        problems = board.problems()  # only the refusal itself, as the browser reports it
        assert problems and all("/prompt" in p and "400" in p for p in problems), problems
    finally:
        board.close()


def test_the_drawing_holds_every_node_and_edge_of_a_graph_with_long_links(browser: Any, board_farm: Farm) -> None:  # noqa: F811
    """Links that skip ranks (a checkpoint's model and VAE in txt2img) are routed around the boxes between."""
    color = random.randrange(1 << 24)
    blend = {"blend_factor": 0.5, "blend_mode": "normal"}
    prompt = {"1": {"class_type": "EmptyImage", "inputs": {"width": 16, "height": 16, "batch_size": 1, "color": color}},
              **{n: {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}} for n in ("2", "3", "4")},
              "5": {"class_type": "ImageBlend", "inputs": {"image1": ["2", 0], "image2": ["3", 0], **blend}},
              "6": {"class_type": "ImageBlend", "inputs": {"image1": ["5", 0], "image2": ["4", 0], **blend}},
              "7": {"class_type": "ImageBlend", "inputs": {"image1": ["6", 0], "image2": ["1", 0], **blend}},
              "8": {"class_type": "SaveImage", "inputs": {"images": ["7", 0], "filename_prefix": "board/long"}}}
    pid = board_farm.submit(prompt)
    board = Board(browser, board_farm, "long", f"#/run/{pid}")
    try:
        board.run_status("done")
        links = sum(isinstance(v, list) for node in prompt.values() for v in node["inputs"].values())
        assert board.page.locator("svg.dag path.edge").count() == links == 10
        assert board.outside_drawing() == []
        assert board.problems() == []
    finally:
        board.close()


def test_a_nodes_live_preview_shows_on_the_run_page(browser: Any, board_farm: Farm) -> None:  # noqa: F811
    prompt = {"1": {"class_type": "TestSlowValue", "inputs": {"value": random.random(), "seconds": 1.5, "tag": "board"}},
              "2": {"class_type": "TestPreview", "inputs": {"value": ["1", 0]}},
              "3": {"class_type": "TestFloatOutput", "inputs": {"value": ["2", 0]}}}
    board = Board(browser, board_farm, "preview", "#/submit")
    try:
        board.drop("preview.json", "application/json", json.dumps(prompt).encode())
        board.page.wait_for_url("**/nodefarm/#/run/*", timeout=TIMEOUT_MS)
        board.run_status("done")
        preview = board.page.locator("#run-images-body figure[data-node='2'] img.preview")  # a binary event 4, as a blob
        preview.wait_for(timeout=TIMEOUT_MS)
        board.page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=preview.element_handle(),
                                     timeout=TIMEOUT_MS)
        # a page opened after the preview was sent shows it too: served from the run's stream
        pid = board.page.url.rsplit("/", 1)[-1]
        board.page.reload()
        board.run_status("done")
        stored = board.page.locator("#run-images-body figure[data-node='2'] img.preview[src^='/nodefarm/dashboard/preview?']")
        stored.wait_for(timeout=TIMEOUT_MS)
        board.page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=stored.element_handle(),
                                     timeout=TIMEOUT_MS)
        src = stored.get_attribute("src")
        res = requests.get(board_farm.url + src, timeout=10)
        assert res.status_code == 200 and res.headers["Content-Type"].startswith("image/") and len(res.content) > 0
        missing = requests.get(f"{board_farm.url}/nodefarm/dashboard/preview", params={"run": pid, "event": "1-0"}, timeout=10)
        assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found"
        bad = requests.get(f"{board_farm.url}/nodefarm/dashboard/preview", params={"run": pid, "event": "x"}, timeout=10)
        assert bad.status_code == 400
        assert board.problems() == []
    finally:
        board.close()


def test_cancel_from_the_dashboard_stops_a_running_run(browser: Any, board_farm: Farm) -> None:  # noqa: F811
    board = Board(browser, board_farm, "cancel")
    try:
        pid = board_farm.submit(slow_chain(8, seconds=1.5))
        row = board.page.locator(f"#queue-body tr[data-run='{pid}'][data-status=running]")
        row.wait_for(timeout=TIMEOUT_MS)
        board.screenshot("dashboard_04_queue_running")
        # the run's page, opened while a node runs, names the worker running it
        board.page.goto(f"{board_farm.url}/nodefarm/#/run/{pid}")
        board.page.locator("g.dag-node.st-running text.t3").filter(has_text="@test").wait_for(timeout=TIMEOUT_MS)
        board.page.goto(f"{board_farm.url}/nodefarm/#/")
        started = time.time()
        board.page.get_by_role("button", name=f"Cancel run {pid}").click()
        entry = board_farm.wait(pid, timeout=30)
        assert time.time() - started < 8, "the run went on after the cancel"
        assert entry["status"]["status_str"] == "error"
        assert [m[0] for m in entry["status"]["messages"]][-1] == "execution_interrupted"
        ran = (board_farm.marks / "board").read_text().splitlines() if (board_farm.marks / "board").exists() else []
        assert len(ran) < 8
        board.page.locator(f"#queue-body tr[data-run='{pid}']").wait_for(state="detached", timeout=TIMEOUT_MS)
        board.page.goto(f"{board_farm.url}/nodefarm/#/run/{pid}")
        board.run_status("cancelled")
        assert board.state_of("8") == "blocked"
        board.screenshot("dashboard_05_cancelled")
        assert board.problems() == []
    finally:
        board.close()


def test_queue_actions_priority_move_to_front_and_cancel_of_pending_runs(browser: Any, board_farm: Farm) -> None:  # noqa: F811
    board = Board(browser, board_farm, "queue")
    try:
        running = board_farm.submit(slow_chain(2, seconds=2.0))
        b = board_farm.submit(slow_chain(1, seconds=0.1))
        c = board_farm.submit(slow_chain(1, seconds=0.1))
        pending = "#queue-body tr[data-status=pending]"
        board.page.locator(f"#queue-body tr[data-run='{running}'][data-status=running]").wait_for(timeout=TIMEOUT_MS)
        board.page.wait_for_function(f"() => [...document.querySelectorAll('{pending}')].map(r => r.dataset.run).join() === '{b},{c}'",
                                     timeout=TIMEOUT_MS)
        board.page.get_by_role("spinbutton", name=f"Priority of run {c}").fill("5")
        board.page.get_by_role("button", name=f"Set the priority of run {c}").click()
        board.page.wait_for_function(f"() => document.querySelector('{pending}')?.dataset.run === '{c}'", timeout=TIMEOUT_MS)
        board.screenshot("dashboard_14_queue_priority")
        # to the front: the same run (its id and extra data kept) is next, raised to the top level
        board.page.get_by_role("button", name=f"Move run {b} to the front").click()
        board.page.wait_for_function(f"() => [...document.querySelectorAll('{pending}')].map(r => r.dataset.run).join() === '{b},{c}'",
                                     timeout=TIMEOUT_MS)
        assert board.page.locator(f"#queue-body tr[data-run='{b}'] td").nth(3).inner_text() == "5"
        assert board.page.locator(f"#queue-body tr[data-run='{b}'] td").nth(5).inner_text().endswith("s")  # its age
        board.page.get_by_role("button", name=f"Cancel run {c}").click()  # a pending run
        board.page.locator(f"#queue-body tr[data-run='{c}']").wait_for(state="detached", timeout=TIMEOUT_MS)
        assert board.page.locator(pending).evaluate_all("rows => rows.map(r => r.dataset.run)") == [b]
        board_farm.wait(running)
        assert board_farm.wait(b)["status"]["status_str"] == "success"
        assert board.unnamed_controls() == []
        assert board.problems() == []
    finally:
        board.close()


def test_a_png_made_by_saveimage_dropped_on_the_page_runs_again_fully_cached(browser: Any, board_farm: Farm) -> None:  # noqa: F811
    prompt = {k: v for k, v in image_prompt(0.1).items() if k in ("1", "2", "3")}
    entry = board_farm.run(prompt)
    (image,) = entry["outputs"]["3"]["images"]
    png = board_farm.image(image)
    board = Board(browser, board_farm, "png", "#/submit")
    try:
        board.drop(image["filename"], "image/png", png)
        board.page.wait_for_url("**/nodefarm/#/run/*", timeout=TIMEOUT_MS)
        pid = board.page.url.split("#/run/")[1]
        board.run_status("done")
        for nid in prompt:
            assert board.state_of(nid) == "cached", nid
        history = requests.get(f"{board_farm.url}/history/{pid}", timeout=10).json()[pid]
        cached = [m[1]["nodes"] for m in history["status"]["messages"] if m[0] == "execution_cached"]
        assert sorted(cached[0]) == sorted(prompt)
        board.page.locator("#run-images-body img.output").first.wait_for(timeout=TIMEOUT_MS)
        board.screenshot("dashboard_06_png_cached")
        assert board.problems() == []
    finally:
        board.close()


def test_a_failed_run_shows_the_failing_node_and_its_error(browser: Any, board_farm: Farm) -> None:  # noqa: F811
    prompt = {"1": {"class_type": "TestRaise", "inputs": {"value": random.random()}},
              "2": {"class_type": "TestFloatOutput", "inputs": {"value": ["1", 0]}}}
    extra = {"extra_pnginfo": {"workflow": {"note": "from the editor"}}, "priority": 2}
    pid = board_farm.submit(prompt, extra_data=extra)
    board = Board(browser, board_farm, "failed", f"#/run/{pid}")
    try:
        board.run_status("failed")
        board.wait_state("1", "failed")
        assert board.state_of("2") == "blocked"
        board.page.locator("g.dag-node[data-node='1'] text.t3").filter(has_text="@test").wait_for(timeout=TIMEOUT_MS)
        error = board.page.locator("#run-error-body")
        assert error.locator("[data-error-node='1']").count() == 1
        text = error.inner_text()
        assert "TestRaise" in text and "broken on purpose" in text and "ValueError" in text
        assert "Traceback" in text or "raise ValueError" in board.page.locator("pre.traceback").inner_text()
        board.screenshot("dashboard_07_failed")
        board.page.goto(f"{board_farm.url}/nodefarm/#/")
        board.page.locator(f"#runs-body tr[data-run='{pid}'][data-status=failed]").wait_for(timeout=TIMEOUT_MS)
        # Retry: the same graph and extra data run again, as a new run whose page opens
        board.page.get_by_role("button", name=f"Retry run {pid}").click()
        board.page.wait_for_function(f"() => location.hash.startsWith('#/run/') && !location.hash.endsWith('{pid}')",
                                     timeout=TIMEOUT_MS)
        again = board.page.url.split("#/run/")[1]
        board.run_status("failed")  # it raises again: on purpose
        _number, _pid, sent, sent_extra, _outputs = board_farm.wait(again)["prompt"][:5]
        assert sent == prompt
        assert {k: sent_extra[k] for k in extra} == extra and sent_extra["client_id"].startswith("dashboard-")
        assert board.problems() == []
    finally:
        board.close()


def test_a_validation_error_is_shown_node_by_node_before_anything_runs(browser: Any, board_farm: Farm) -> None:  # noqa: F811
    board = Board(browser, board_farm, "invalid", "#/submit")
    try:
        bad = {"1": {"class_type": "EmptyImage", "inputs": {"width": "wide", "height": 8, "batch_size": 1, "color": 0}},
               "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}
        queued = len(board_farm.r.zrange("nf:history", 0, -1))
        board.drop("bad.json", "application/json", json.dumps(bad).encode())
        board.page.locator("#submit-result .node-errors li[data-node='1']").wait_for(timeout=TIMEOUT_MS)
        assert "EmptyImage" in board.page.locator("#submit-result").inner_text()
        assert len(board_farm.r.zrange("nf:history", 0, -1)) == queued
        board.screenshot("dashboard_08_invalid")
        # the 400 of POST /prompt is the answer shown here, not a problem of the page
        assert [p for p in board.problems() if not ("/prompt" in p and "400" in p)] == []
    finally:
        board.close()


def test_the_dashboard_is_usable_at_phone_width(browser: Any, board_farm: Farm) -> None:  # noqa: F811
    board = Board(browser, board_farm, "phone")
    try:
        board.page.set_viewport_size({"width": 390, "height": 844})
        board.page.locator("#devices article.worker").first.wait_for(timeout=TIMEOUT_MS)
        assert board.js("() => document.documentElement.scrollWidth") <= 392
        board.screenshot("dashboard_09_phone")
        assert board.unnamed_controls() == []
        assert board.problems() == []
    finally:
        board.close()


def test_the_editor_has_a_farm_sidebar_tab_with_workers_and_queue(browser: Any, board_farm: Farm) -> None:  # noqa: F811
    editor = Editor(browser, board_farm, "sidebar")
    try:
        editor.boot()
        editor.close_dialogs()
        pid = board_farm.submit(slow_chain(2, seconds=2.0))
        editor.page.get_by_role("button", name="nodefarm: the farm's workers and queue").click()
        panel = editor.page.locator(".nodefarm-farm")
        panel.wait_for(timeout=TIMEOUT_MS)
        editor.page.wait_for_function("() => ['w0@test', 'w1@test'].every(w => "
                                      "document.querySelector('.nodefarm-farm')?.innerText.includes(w))", timeout=TIMEOUT_MS)
        panel.locator(f"li[data-run='{pid}']").wait_for(timeout=TIMEOUT_MS)  # its run, in the queue
        editor.screenshot("dashboard_12_editor_sidebar")
        board_farm.wait(pid)
        panel.locator(f"li[data-run='{pid}']").wait_for(state="detached", timeout=TIMEOUT_MS)
        assert [p for p in editor.backend_problems() if "https://api.comfy.org" not in p] == []
    finally:
        editor.close()


def test_the_page_reconnects_and_catches_up_after_an_api_restart(browser: Any, tmp_path: Path) -> None:  # noqa: F811
    """The API goes away mid-run and comes back after the run ended: the page reconnects by itself and
    replays what it missed (GET /nodefarm/runs/<id>/events?after=), so its DAG ends done."""
    farm = Farm(tmp_path, workers=1)
    try:
        prompt = slow_chain(3, seconds=1.5)
        pid = farm.submit(prompt)
        board = Board(browser, farm, "reconnect", f"#/run/{pid}")
        try:
            board.wait_state("1", "running", "done")
            farm.kill("api", signal.SIGTERM)
            board.page.locator("#conn[data-conn=offline]").wait_for(timeout=TIMEOUT_MS)
            deadline = time.time() + 60
            while farm.r.zscore("nf:history", pid) is None:  # the workers end the run without the API
                assert time.time() < deadline, "the run did not end"
                time.sleep(0.2)
            assert board.page.locator("#run-status").get_attribute("data-status") == "running"  # it missed the end
            farm.start_api()
            board.page.locator("#conn[data-conn=live]").wait_for(timeout=TIMEOUT_MS)
            board.run_status("done")
            for nid in prompt:
                assert board.state_of(nid) == "done", nid
            assert board.page.locator("#conn").get_attribute("data-connects") == "2"
            board.screenshot("dashboard_13_reconnected")
            # while the API was down the socket's retries could not connect: those are expected
            assert [p for p in board.problems() if "ERR_CONNECTION_REFUSED" not in p and "socket.io" not in p] == []
        finally:
            board.close()
    finally:
        farm.stop()


def test_an_idle_dashboard_stays_connected(browser: Any, tmp_path: Path) -> None:  # noqa: F811
    """The server's header read limit (1 s here) does not drop the page's idle Socket.IO websocket."""
    farm = Farm(tmp_path, workers=1, env={"NODEFARM_HEADER_TIMEOUT": "1"})
    try:
        board = Board(browser, farm, "idle")
        try:
            board.page.wait_for_timeout(6000)
            assert board.page.locator("#conn").get_attribute("data-conn") == "live"
            assert board.page.locator("#conn").get_attribute("data-connects") == "1"
            assert board.problems() == []
        finally:
            board.close()
    finally:
        farm.stop()


def test_the_worker_list_shows_both_workers_and_updates_when_one_stops(browser: Any, board_farm: Farm) -> None:  # noqa: F811
    board = Board(browser, board_farm, "workers")  # last: it stops a worker of the module's farm
    try:
        workers = board.page.locator("#devices article.worker")
        board.page.wait_for_function("() => document.querySelectorAll('#devices article.worker').length === 2", timeout=TIMEOUT_MS)
        assert sorted(workers.evaluate_all("els => els.map(e => e.dataset.worker)")) == ["w0@test", "w1@test"]
        for name in ("w0@test", "w1@test"):
            row = board.page.locator(f"#devices article[data-worker='{name}']")
            assert row.get_attribute("data-worker-state") in ("idle", "busy")
            assert row.locator("[role=meter]").count() >= 1  # its device memory
        board.screenshot("dashboard_10_workers")
        board_farm.kill("w1", signal.SIGTERM)
        board.page.wait_for_function(
            "() => { const w = document.querySelector(`#devices article[data-worker='w1@test']`);"
            " return !w || w.dataset.workerState === 'lost'; }", timeout=TIMEOUT_MS)
        assert board.page.locator("#devices article[data-worker='w0@test']").count() == 1
        board.screenshot("dashboard_11_worker_stopped")
        assert board.problems() == []
    finally:
        board.close()
