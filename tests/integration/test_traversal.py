"""Files stay in their roots: a traversal corpus against every route and node that takes a file name.

Canaries are planted outside the farm's folders (beside the API's and the workers' base directories)
and symlinks inside the folders point at them. Every name in the corpus (``..``, absolute paths,
drive letters, backslashes, NUL, URL-encoded and double-encoded forms, links out) is sent to each
reading route, each writing route and the nodes that load and save files: no answer holds a canary's
bytes (0 reads), no file appears outside the folders (0 writes), and no answer is a 5xx.
"""

from __future__ import annotations

import io
import os
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.farm import Farm

pytestmark = pytest.mark.integration

CANARY = b"CANARY-7f3a1c-outside-the-roots"


def corpus(outside: Path) -> list[str]:
    names = [
        "../canary.txt", "../../canary.txt", "../../../canary.txt", "../../../../canary.txt",
        "sub/../../canary.txt", "sub/../../../canary.txt", "./../canary.txt",
        str(outside / "canary.txt"), "/etc/passwd",
        "..\\canary.txt", "..\\..\\canary.txt", "C:\\canary.txt", "C:/canary.txt", "c:canary.txt",
        "%2e%2e/canary.txt", "%2e%2e%2f%2e%2e%2fcanary.txt", "..%2f..%2fcanary.txt", "%252e%252e%252fcanary.txt",
        "..%5c..%5ccanary.txt", "canary.txt\x00.png", "link_out.txt", "linkdir/canary.txt",
        "../canary.txt [output]", "../../canary.txt [input]", f"{outside / 'canary.txt'} [temp]",
    ]
    return names


def tree(root: Path, skip: tuple[Path, ...]) -> set[Path]:
    """Every file under ``root`` except inside ``skip`` (the farm's own folders, where writes may land)."""
    found: set[Path] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if here / d not in skip]
        found.update(here / f for f in filenames)
    return found


@pytest.fixture(scope="module")
def planted(farm: Farm) -> Iterator[Path]:
    """Canaries outside every root of the shared farm, and links to them inside each root."""
    outside = farm.tmp
    bases = [farm.api_dir, *(farm.tmp / f"w{i}" for i in range(2))]
    (outside / "canary.txt").write_bytes(CANARY)
    for base in bases:
        (base / "canary.txt").write_bytes(CANARY)
        for folder in ("input", "output", "temp", "user/default", "models/checkpoints"):
            d = base / folder
            d.mkdir(parents=True, exist_ok=True)
            for name, target in (("link_out.txt", outside / "canary.txt"), ("linkdir", outside)):
                link = d / name
                if not link.is_symlink():
                    link.symlink_to(target)
    yield outside


def roots(farm: Farm) -> tuple[Path, ...]:
    return tuple(base / folder for base in (farm.api_dir, farm.tmp / "w0", farm.tmp / "w1")
                 for folder in ("input", "output", "temp", "user", "models"))


def assert_no_leak(res: requests.Response, what: str) -> None:
    assert res.status_code < 500, f"{what}: {res.status_code} {res.text[:200]}"
    assert CANARY not in res.content, f"{what} read a canary: {res.status_code}"


def test_reading_routes_never_serve_a_file_outside_the_roots(farm: Farm, planted: Path) -> None:
    count = 0
    for name in corpus(planted):
        quoted = urllib.parse.quote(name, safe="")
        attempts = [
            ("GET", "/view", {"filename": name, "type": t}) for t in ("input", "output", "temp")
        ] + [
            ("GET", "/view", {"filename": "canary.txt", "subfolder": name}),
            ("GET", "/view", {"filename": "x.png", "subfolder": name, "preview": "webp;90"}),
            ("GET", f"/userdata/{quoted}", None),
            ("GET", "/userdata", {"dir": name}),
            ("GET", "/v2/userdata", {"path": name}),
            ("GET", f"/internal/models/checkpoints/{quoted}", None),
            ("GET", "/view_metadata/checkpoints", {"filename": name}),
            ("GET", f"/experiment/models/preview/checkpoints/0/{quoted}", None),
            ("GET", f"/api/workflow_templates/farm_test_nodes/{quoted}", None),
            ("GET", f"/templates/{quoted}", None),
            ("GET", f"/settings/{quoted}", None),
        ]
        for method, path, params in attempts:
            try:
                res = requests.request(method, farm.url + path, params=params, timeout=10)
            except requests.Timeout:
                raise AssertionError(f"{method} {path} {params}: no answer in 10 s") from None
            assert_no_leak(res, f"{method} {path} {params}")
            count += 1
        mask = io.BytesIO()
        from PIL import Image

        Image.new("RGBA", (4, 4)).save(mask, format="PNG")
        res = requests.post(farm.url + "/upload/mask", timeout=10, files={"image": ("m.png", mask.getvalue(), "image/png")},
                            data={"original_ref": f'{{"filename": {name!r}, "type": "input"}}'.replace("'", '"')})
        assert_no_leak(res, f"upload/mask original_ref {name!r}")
        count += 1
    assert count > 300


def test_writing_routes_and_saving_nodes_never_write_outside_the_roots(farm: Farm, planted: Path) -> None:
    before = tree(farm.tmp, roots(farm))
    for name in corpus(planted):
        written = name.replace("canary.txt", "written.txt")
        quoted = urllib.parse.quote(written, safe="")
        res = requests.post(farm.url + "/upload/image", timeout=10, files={"image": (written, b"PNGDATA", "image/png")},
                            data={"type": "input"})
        assert_no_leak(res, f"upload/image filename {written!r}")
        res = requests.post(farm.url + "/upload/image", timeout=10, files={"image": ("ok.png", b"PNGDATA", "image/png")},
                            data={"type": "input", "subfolder": written})
        assert_no_leak(res, f"upload/image subfolder {written!r}")
        res = requests.post(farm.url + f"/userdata/{quoted}", data=b"written", timeout=10)
        assert_no_leak(res, f"POST /userdata/{written!r}")
        requests.post(farm.url + "/userdata/movable.json", data=b"{}", timeout=10)
        res = requests.post(farm.url + f"/userdata/movable.json/move/{quoted}", timeout=10)
        assert_no_leak(res, f"move to {written!r}")
    # a node saving outside output/ and loading from outside input/ (on a worker)
    for name in ("../../written_save", "/tmp/written_save_abs", "sub/../../../written_save", "..\\written_save"):
        res = requests.post(farm.url + "/prompt", timeout=30, json={"prompt": {
            "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
            "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": name}}}})
        if res.status_code == 200:
            entry = farm.wait(res.json()["prompt_id"])
            for images in (o.get("images", []) for o in entry.get("outputs", {}).values()):
                for image in images:
                    assert ".." not in image["subfolder"] and not image["subfolder"].startswith("/"), image
        else:
            assert res.status_code == 400, res.text[:200]
    after = tree(farm.tmp, roots(farm))
    new = sorted(str(p) for p in after - before if "written" in p.name)
    assert new == [], new
    assert not Path("/tmp/written_save_abs_00001_.png").exists()


def test_loading_nodes_on_workers_never_read_outside_the_roots(farm: Farm, planted: Path) -> None:
    for name in corpus(planted):
        image = name.replace("canary.txt", "canary.png")
        res = requests.post(farm.url + "/prompt", timeout=30, json={"prompt": {
            "1": {"class_type": "LoadImage", "inputs": {"image": image}},
            "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "leak"}}}})
        assert res.status_code == 400, (image, res.text[:200])
    assert not list((farm.api_dir / "output").glob("leak*"))
