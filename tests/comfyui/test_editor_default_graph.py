"""The official ComfyUI editor, in headless Chromium, runs ComfyUI's default text-to-image graph on a
farm that runs the user's ComfyUI: the user picks the checkpoint the farm has, makes the picture small
(this is a CPU), presses Run and gets the image. The farm's dashboard (/nodefarm/) runs examples/txt2img.json
and follows it live to its image, with the sampler's latent previews."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.e2e.test_dashboard import TIMEOUT_MS, Board
from tests.e2e.test_editor import APP, CHROMIUM, CHROMIUM_ARGS, Editor
from tests.farm import ROOT, Farm

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def editor(cfarm: Farm) -> Iterator[Editor]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (`make chromium`) to run the browser tests")
    from playwright.sync_api import sync_playwright

    # not a first visit: no templates dialog opening over the graph this test loads
    requests.post(cfarm.url + "/settings/Comfy.TutorialCompleted", json=True, timeout=10)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = Editor(browser, cfarm, "comfyui")
        page.boot()
        page.close_dialogs()
        yield page
        page.close()
        browser.close()


def widget(editor: Editor, node_type: str, name: str, value: Any) -> None:
    editor.js(
        f"""([t, n, v]) => {{ const node = {APP}.graph.nodes.find(x => x.type === t);
                               const w = node.widgets.find(x => x.name === n); w.value = v;
                               w.callback?.(v); }}""",
        [node_type, name, value],
    )


# ComfyUI 0.3.64's default graph (its frontend 1.27's "default" workflow), in API form. The newer editor
# this farm serves opens on another model family's graph (UNETLoader, AuraFlow), so the test loads this
# one as a user who opens ComfyUI's classic default would.
DEFAULT_GRAPH = {
    "3": {"class_type": "KSampler", "inputs": {
        "seed": 156680208700286, "steps": 20, "cfg": 8.0, "sampler_name": "euler", "scheduler": "normal",
        "denoise": 1.0, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5-pruned-emaonly-fp16.safetensors"}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 1}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {
        "text": "beautiful scenery nature glass bottle landscape, , purple galaxy bottle,", "clip": ["4", 1]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "text, watermark", "clip": ["4", 1]}},
    "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
    "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}},
}


def test_the_default_text_to_image_graph_runs_and_shows_its_image(editor: Editor) -> None:
    editor.close_dialogs()  # a first boot may open the templates dialog late
    editor.load_api_workflow(DEFAULT_GRAPH, "default.json")
    types = sorted(editor.js(f"() => {APP}.graph.nodes.map(n => n.type)"))
    assert types == ["CLIPTextEncode", "CLIPTextEncode", "CheckpointLoaderSimple", "EmptyLatentImage", "KSampler",
                     "SaveImage", "VAEDecode"]
    options = editor.js(f"""() => {APP}.graph.nodes.find(x => x.type === 'CheckpointLoaderSimple')
                                  .widgets.find(w => w.name === 'ckpt_name').options.values""")
    assert options == ["tiny-sd15.safetensors"]  # the editor lists the farm's models
    editor.close_dialogs()
    widget(editor, "CheckpointLoaderSimple", "ckpt_name", "tiny-sd15.safetensors")
    widget(editor, "EmptyLatentImage", "width", 128)
    widget(editor, "EmptyLatentImage", "height", 128)
    widget(editor, "KSampler", "steps", 4)
    queued = editor.js(f"async () => (await {APP}.graphToPrompt()).output")
    assert next(n for n in queued.values() if n["class_type"] == "CheckpointLoaderSimple")["inputs"] == {
        "ckpt_name": "tiny-sd15.safetensors"}
    # the whole graph in view (the editor draws, and so loads the image of, nodes on screen only)
    editor.js(f"() => {{ const ds = {APP}.canvas.ds; ds.scale = 0.6; ds.offset = [20, 20]; {APP}.canvas.setDirty(true, true) }}")
    editor.run()  # the Run button, as a user presses it
    try:
        editor.page.wait_for_function(
            f"""() => {{ const n = {APP}.graph.nodes.find(x => x.type === 'SaveImage');
                         return n && n.imgs && n.imgs.length && n.imgs[0].complete && n.imgs[0].naturalWidth === 128 }}""",
            timeout=120_000,
        )
    except Exception as exc:
        editor.screenshot("comfyui_default_graph_failed")
        raise AssertionError(f"no image; queued {editor.prompt_bodies[-1:]!r:.600}, failed {editor.failed}") from exc
    body = editor.prompt_bodies[-1]
    sampler = next(n for n in body["prompt"].values() if n["class_type"] == "KSampler")
    assert sampler["inputs"]["steps"] == 4
    assert "<binary>" in editor.ws_received  # latent previews reached the editor
    editor.page.wait_for_timeout(500)
    editor.screenshot("comfyui_default_graph")
    assert editor.backend_problems() == []


def test_the_txt2img_example_runs_from_the_dashboard_followed_to_its_image_with_previews(editor: Editor, cfarm: Farm) -> None:
    board = Board(editor.context.browser, cfarm, "txt2img", "#/submit")
    try:
        # dropped as a user's file, with a seed of its own (a fresh sampling, not the cache's)
        prompt = json.loads((ROOT / "examples" / "txt2img.json").read_text())
        prompt["3"]["inputs"]["seed"] = random.randrange(1 << 40)
        board.drop("txt2img.json", "application/json", json.dumps(prompt).encode())
        board.page.wait_for_url("**/nodefarm/#/run/*", timeout=TIMEOUT_MS)
        board.run_status("done", timeout=120_000)
        states = {nid: board.state_of(nid) for nid in prompt}
        assert {states[n] for n in ("3", "8", "9")} == {"done"}, states  # sampled, decoded, saved now
        assert set(states.values()) <= {"done", "cached"}, states  # the checkpoint may be loaded already
        image = board.page.locator("#run-images-body figure[data-node='9'] img.output").first
        image.wait_for(timeout=TIMEOUT_MS)
        board.page.wait_for_function("img => img.complete && img.naturalWidth === 64", arg=image.element_handle(),
                                     timeout=TIMEOUT_MS)
        preview = board.page.locator("#run-images-body img.preview").first  # TAESD, one per sampler step
        preview.wait_for(timeout=TIMEOUT_MS)
        board.page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=preview.element_handle(),
                                     timeout=TIMEOUT_MS)
        assert board.outside_drawing() == []
        board.screenshot("dashboard_txt2img")
        # ... and the example itself, picked on the Submit page
        board.page.goto(f"{cfarm.url}/nodefarm/#/submit")
        option = board.page.locator("#example option[value='txt2img.json']")
        option.wait_for(state="attached", timeout=TIMEOUT_MS)
        assert option.inner_text() == "txt2img.json"  # this farm can run it (ComfyUI and the checkpoint are here)
        board.page.get_by_role("combobox", name="Example workflow").select_option("txt2img.json")
        board.page.get_by_role("button", name="Run example").click()
        board.page.wait_for_url("**/nodefarm/#/run/*", timeout=TIMEOUT_MS)
        board.run_status("done", timeout=120_000)
        board.page.locator("#run-images-body figure[data-node='9'] img.output").first.wait_for(timeout=TIMEOUT_MS)
        assert board.problems() == []
    finally:
        board.close()
