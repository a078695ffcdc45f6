"""The farm dashboard (/nodefarm/) in a real headless Chromium: a blocklisted worker shows its state and
reason, and its Lift button takes it off the blocklist (worker/blocklist.py, api/routes/blocklist.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import requests

from nodes.settings import Settings
from tests.e2e.test_editor import CHROMIUM, CHROMIUM_ARGS
from tests.farm import Farm
from worker import blocklist

pytestmark = pytest.mark.e2e


def test_the_dashboard_shows_a_blocklisted_worker_and_its_lift_button_lifts_it(tmp_path: Path) -> None:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (`make chromium`) to run the browser tests")
    from playwright.sync_api import sync_playwright

    farm = Farm(tmp_path, workers=1)
    try:
        for _ in range(3):
            blocklist.charge(farm.r, Settings(), "w0@test", "TestBadWorker failed there (RuntimeError: <b>CUDA</b>)")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                errors: list[str] = []  # script errors and failed requests (the browser's own favicon probe aside)
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.on("response", lambda r: errors.append(f"{r.status} {r.url}")
                        if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
                page.goto(farm.url + "/nodefarm/")
                state = page.locator("#devices [data-state=blocklisted]")
                state.wait_for(timeout=15_000)
                assert "TestBadWorker failed there (RuntimeError: <b>CUDA</b>)" in state.inner_text()  # text, not markup
                page.locator("#devices button[data-lift='w0@test']").click()
                page.wait_for_function("!document.querySelector('#devices [data-state=blocklisted]')", timeout=15_000)
                assert errors == []
            finally:
                browser.close()
        assert requests.get(farm.url + "/nodefarm/blocklist", timeout=10).json()["blocklist"] == {}
    finally:
        farm.stop()
