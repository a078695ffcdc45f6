"""Hosts without a shared filesystem, for real (issue 9, item 7): a Redis host, an API host and two
worker hosts in network namespaces, each with its own base directory (tests/netns/hosts.py).

Which worker ran a node is read from the run's ``made`` record on the Redis host (node -> the worker
that computed it): the test nodes' marks folder would be a shared filesystem, and events do not name
workers. Figures (seconds) are printed; run with ``-s`` to see them.
"""

from __future__ import annotations

import io
import json
import time
import uuid

import numpy as np
import pytest
import requests
from PIL import Image

from tests.netns.hosts import NetnsFarm

pytestmark = [pytest.mark.netns, pytest.mark.slow]


def _upload(hosts: NetnsFarm, pixels: np.ndarray) -> tuple[str, bytes]:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    name = f"netns_{uuid.uuid4().hex[:8]}.png"
    res = requests.post(hosts.url + "/upload/image", files={"image": (name, buf.getvalue(), "image/png")}, timeout=30)
    assert res.status_code == 200 and res.json() == {"name": name, "subfolder": "", "type": "input"}, res.text
    return name, buf.getvalue()


def _saved(pixels: np.ndarray, scale: int, invert: bool) -> np.ndarray:
    """What LoadImage -> ImageScaleBy(nearest-exact, integer scale) [-> ImageInvert] -> SaveImage
    writes, computed as the nodes compute it (float32 in 0..1, truncating uint8 conversion)."""
    x = pixels.astype(np.float32) / 255.0
    x = np.repeat(np.repeat(x, scale, axis=0), scale, axis=1)
    if invert:
        x = np.float32(1.0) - x
    return np.clip(np.float32(255.0) * x, 0, 255).astype(np.uint8)


def test_a_run_spans_both_worker_hosts_with_an_upload_and_saved_images(hosts: NetnsFarm) -> None:
    rng = np.random.default_rng()
    pixels = rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    name, uploaded = _upload(hosts, pixels)
    assert (hosts.base["api"] / "input" / name).read_bytes() == uploaded
    assert not any((hosts.base[w] / "input" / name).exists() for w in hosts.WORKERS)
    # two slow scale factors run side by side, one per worker host (each runs one node at a time)
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": name}},
        "2": {"class_type": "TestSlowValue", "inputs": {"value": 2.0, "seconds": 2.0, "tag": "a"}},
        "3": {"class_type": "TestSlowValue", "inputs": {"value": 3.0, "seconds": 2.0, "tag": "b"}},
        "4": {"class_type": "ImageScaleBy", "inputs": {"image": ["1", 0], "upscale_method": "nearest-exact",
                                                       "scale_by": ["2", 0]}},
        "5": {"class_type": "ImageInvert", "inputs": {"image": ["4", 0]}},
        "6": {"class_type": "SaveImage", "inputs": {"images": ["5", 0], "filename_prefix": "netns_inverted"}},
        "7": {"class_type": "ImageScaleBy", "inputs": {"image": ["1", 0], "upscale_method": "nearest-exact",
                                                       "scale_by": ["3", 0]}},
        "8": {"class_type": "SaveImage", "inputs": {"images": ["7", 0], "filename_prefix": "netns_scaled"}},
        "9": {"class_type": "PreviewImage", "inputs": {"images": ["4", 0]}},
    }
    started = time.monotonic()
    pid = hosts.submit(prompt)
    entry = hosts.wait(pid, timeout=90)
    print(f"\nnetns: a run over two worker hosts, upload to saved images: {time.monotonic() - started:.1f} s")
    assert entry["status"]["status_str"] == "success", entry["status"]

    made = hosts.made(pid)
    assert set(made) == set(prompt), made
    assert set(made.values()) == set(hosts.WORKERS.values()), f"not both hosts ran nodes: {made}"
    by_name = {v: k for k, v in hosts.WORKERS.items()}
    # the upload reached the worker host that loaded it through Redis, not through a shared folder
    assert (hosts.base[by_name[made["1"]]] / "input" / name).read_bytes() == uploaded

    for nid, kind, scale, invert in (("6", "output", 2, True), ("8", "output", 3, False), ("9", "temp", 2, False)):
        [info] = entry["outputs"][nid]["images"]
        assert info["type"] == kind
        res = requests.get(hosts.url + "/view", params=info, timeout=30)
        assert res.status_code == 200, res.text
        served = res.content
        # byte for byte what the worker host saved in its own folder, landed in the API host's
        saver = hosts.base[by_name[made[nid]]]
        assert (saver / kind / info["subfolder"] / info["filename"]).read_bytes() == served
        assert (hosts.base["api"] / kind / info["subfolder"] / info["filename"]).read_bytes() == served
        png = Image.open(io.BytesIO(served))
        assert np.array_equal(np.asarray(png.convert("RGB")), _saved(pixels, scale, invert))
        assert set(json.loads(png.info["prompt"])) == set(prompt)  # the run's prompt, in the PNG


def _slow_sum(values: list[float], seconds: float, tag: str) -> dict:
    """Independent slow nodes "1".."n" summed by a chain of MathOperation, shown by "out"."""
    prompt: dict = {str(i + 1): {"class_type": "TestSlowValue", "inputs": {"value": v, "seconds": seconds, "tag": tag}}
                    for i, v in enumerate(values)}
    last = ["1", 0]
    for i in range(2, len(values) + 1):
        prompt[f"s{i}"] = {"class_type": "MathOperation", "inputs": {"a": last, "b": [str(i), 0], "operation": "add"}}
        last = [f"s{i}", 0]
    prompt["out"] = {"class_type": "TestFloatOutput", "inputs": {"value": last}}
    return prompt


def _until(what: str, check, timeout: float, hosts: NetnsFarm):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout} s; logs:\n{hosts.logs()}")


def test_a_worker_host_cut_off_mid_node_loses_nothing_and_rejoins_when_its_link_returns(hosts: NetnsFarm) -> None:
    w0, w1 = hosts.WORKERS["w0"], hosts.WORKERS["w1"]
    values = [1.25, 2.5, 4.0]
    pid = hosts.submit(_slow_sum(values, 3.0, f"cut-{uuid.uuid4().hex[:6]}"))
    [in_flight] = _until("a node running on w0", lambda: hosts.running_on(w0), 30, hosts)
    assert in_flight.split()[0] == pid
    victim = in_flight.split()[1]

    hosts.net.cut("w0")
    cut_at = time.monotonic()
    # the other host's reaper claims the silent w0 (and re-sends its node); /system_stats drops it
    _until("w0 claimed by the reaper", lambda: w0 not in hosts.live_workers(), 30, hosts)
    noticed = time.monotonic() - cut_at
    assert w0 not in hosts.system_stats_workers() and w1 in hosts.system_stats_workers()
    entry = hosts.wait(pid, timeout=90)
    completed = time.monotonic() - cut_at
    assert entry["status"]["status_str"] == "success", entry["status"]
    assert entry["outputs"]["out"] == {"text": [repr(sum(values))]}
    made = hosts.made(pid)
    assert made[victim] == w1, made  # the node w0 was running when its cable was pulled ran again on w1
    assert w0 not in hosts.live_workers()  # still cut off: nothing took it for alive meanwhile

    hosts.net.restore("w0")
    restored_at = time.monotonic()
    _until("w0 back in /system_stats", lambda: w0 in hosts.system_stats_workers(), 60, hosts)
    rejoined = time.monotonic() - restored_at
    # w0 takes work again: fresh runs (new values: nothing cached) until one of its nodes ran on w0
    tries = 0

    def ran_on_w0() -> bool:
        nonlocal tries
        tries += 1
        values = [float(tries) + 0.5, float(tries) + 0.75]
        pid = hosts.submit(_slow_sum(values, 1.0, "rejoin"))
        entry = hosts.wait(pid, timeout=60)
        assert entry["status"]["status_str"] == "success", entry["status"]
        assert entry["outputs"]["out"] == {"text": [repr(sum(values))]}
        return w0 in hosts.made(pid).values()

    _until("a node of a new run on w0", ran_on_w0, 90, hosts)
    working = time.monotonic() - restored_at
    print(f"\nnetns: w0 cut mid-node: claimed by the reaper after {noticed:.1f} s, run completed on w1 "
          f"{completed:.1f} s after the cut; link restored: w0 back after {rejoined:.1f} s, ran a node "
          f"{working:.1f} s after the restore ({tries} run(s))")
