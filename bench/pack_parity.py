"""Parity of popular packs' model-free image nodes: real ComfyUI against the farm, pixel by pixel.

A curated list of classes from several packs (essentials, KJNodes, WAS, masquerade, Comfyroll, Impact,
mtb, rgthree, Custom-Scripts, VideoHelperSuite, Inspire, efficiency): each takes an IMAGE and/or MASK plus widgets and
returns an IMAGE or MASK. Its widgets get their ``INPUT_TYPES`` defaults (a combo its first option),
except the few set in ``CURATED`` so the node does not leave the picture as it is. One graph per class:

    LoadImage(96x64 gradient) [-> ImageToMask(red) for a MASK input] -> the node
        [-> MaskToImage for a MASK output] -> SaveImage

* reference: real ComfyUI (``--comfyui``) with the packs runs every graph in a subprocess of this
  interpreter, through its own ``execution.validate_prompt`` and ``execution.PromptExecutor``;
* farm: ``tests.farm.Farm`` (2 workers, ``NODEFARM_CUSTOM_NODES`` = the packs), once on nodefarm's
  stand-ins, once with ``NODEFARM_COMFYUI``; the gradient goes up with ``POST /upload/image``, each
  graph with ``POST /prompt``, the saved PNGs come back through ``/view``.

Pixels are compared (decoded arrays; PNG text chunks differ). Torch runs one thread everywhere so the
figures do not depend on how reductions split. Prints the table (also written to
bench/results/pack_parity.txt); exits 0: a report, not a test.
Run with the interpreter that has the packs' requirements (the farm's processes use it too):
``/work/packvenv/bin/python bench/pack_parity.py --packs /work/packs --comfyui /work/shared/comfyui``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
GRADIENT = "parity_gradient.png"
WIDTH, HEIGHT = 96, 64
RUN_TIMEOUT = 180.0
FARM_START_TIMEOUT = 300.0

# class -> widget values that differ from the defaults (only where the defaults change nothing)
CURATED: dict[str, dict[str, Any]] = {
    # ComfyUI_essentials
    "ImageFlip+": {},
    "ImageDesaturate+": {},
    "ImagePosterize+": {},
    "ImageCASharpening+": {},
    "ImageResize+": {"width": 80, "height": 48, "interpolation": "lanczos"},
    "MaskBlur+": {},
    "MaskFix+": {"erode_dilate": 3, "fill_holes": 2, "blur": 2},
    # ComfyUI-KJNodes
    "GrowMaskWithBlur": {"expand": 3, "blur_radius": 2.0},
    "RemapImageRange": {"min": 0.2, "max": 0.7},
    "ImageResizeKJ": {"width": 72, "height": 40, "upscale_method": "bilinear"},
    "DrawMaskOnImage": {},
    "BlockifyMask": {},
    "ImageResizeKJv2": {"width": 80, "height": 80, "upscale_method": "lanczos", "keep_proportion": "pad"},
    "ImagePadKJ": {"left": 8, "top": 4},
    # was-node-suite-comfyui
    "Image Rotate Hue": {"hue_shift": 0.3},
    "Image Levels Adjustment": {"black_level": 20.0, "white_level": 230.0},
    "Image Filter Adjustments": {"contrast": 1.4, "saturation": 0.6, "sharpness": 2.0},
    "Image Edge Detection Filter": {},
    "Image High Pass Filter": {},
    "Image Canny Filter": {},
    "Mask Gaussian Region": {"radius": 3.0},
    # masquerade-nodes-comfyui
    "Unary Image Op": {},
    "Blur": {"radius": 5},
    "Mask Morphology": {"distance": 3},
    "Convert Color Space": {"out_space": "HSV"},
    # ComfyUI_Comfyroll_CustomNodes
    "CR Color Tint": {"mode": "sepia"},
    "CR Vignette Filter": {},
    "CR Image Border": {"top_thickness": 4, "left_thickness": 6, "border_color": "red"},
    "CR Feathered Border": {"top_thickness": 6, "left_thickness": 8, "feather_amount": 4},
    # ComfyUI-Impact-Pack
    "ImpactDilateMask": {},
    "ToBinaryMask": {},
    "ImpactGaussianBlurMask": {},
    # comfy_mtb
    "Color Correct (mtb)": {"gamma": 1.3, "saturation": 1.4},
    "Blur (mtb)": {"sigmaX": 2.0, "sigmaY": 1.0},
    "Sharpen (mtb)": {},
    "Image Resize Factor (mtb)": {"factor": 1.5, "resampling": "bicubic"},
    # rgthree-comfy, ComfyUI-Custom-Scripts (a list output), ComfyUI-VideoHelperSuite, ComfyUI-Inspire-Pack,
    # efficiency-nodes-comfyui
    "Image Resize (rgthree)": {"width": 64, "height": 64},
    "Image Inset Crop (rgthree)": {"left": 10, "top": 5},
    "ConstrainImage|pysssss": {"max_width": 64, "max_height": 64},
    "VHS_DuplicateImages": {"multiply_by": 2},
    "ChangeImageBatchSize //Inspire": {"batch_size": 2},
    "Image Overlay": {},
}


# ---- the picture and the graphs ------------------------------------------------------------------


def gradient_png() -> bytes:
    """96x64 RGB: red rises left to right, green top to bottom, blue a disc and a checker band."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    red = x / (WIDTH - 1) * 255
    green = y / (HEIGHT - 1) * 255
    disc = ((x - 60) ** 2 + (y - 30) ** 2) < 18**2
    checker = ((x // 8 + y // 8) % 2 == 0) & (y > 44)
    blue = np.where(disc, 230.0, 25.0) + np.where(checker, -20.0, 0.0) + 10 * np.sin(x / 5)
    pixels = np.stack([red, green, np.clip(blue, 0, 255)], axis=-1).round().astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buf, format="PNG")
    return buf.getvalue()


def _spec_parts(spec: Any) -> tuple[Any, dict[str, Any]]:
    if isinstance(spec, (list, tuple)) and spec:
        opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
        return spec[0], opts
    return spec, {}


def widget_default(kind: Any, opts: dict[str, Any]) -> Any:
    """The value a new node in the editor shows: the declared default, a combo's first option."""
    if isinstance(kind, (list, tuple)):
        return kind[0] if kind else ""
    if kind == "COMBO":
        options = opts.get("options") or []
        return opts.get("default", options[0] if options else "")
    if "default" in opts:
        return opts["default"]
    return {"INT": int(opts.get("min", 0)), "FLOAT": float(opts.get("min", 0.0)), "BOOLEAN": False}.get(
        str(kind), ""
    )


def build_graph(class_type: str, input_types: dict[str, Any], return_types: tuple[str, ...],
                overrides: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The graph of one class and the id of its SaveImage node."""
    graph: dict[str, Any] = {"1": {"class_type": "LoadImage", "inputs": {"image": GRADIENT}}}
    inputs: dict[str, Any] = {}
    for name, spec in (input_types.get("required") or {}).items():
        kind, opts = _spec_parts(spec)
        if kind == "IMAGE":
            inputs[name] = ["1", 0]
        elif kind == "MASK":
            graph["2"] = {"class_type": "ImageToMask", "inputs": {"image": ["1", 0], "channel": "red"}}
            inputs[name] = ["2", 0]
        else:
            inputs[name] = overrides.get(name, widget_default(kind, opts))
    unknown = set(overrides) - set(inputs)
    if unknown:
        raise ValueError(f"no widget {sorted(unknown)}")
    graph["3"] = {"class_type": class_type, "inputs": inputs}
    index = next((i for i, t in enumerate(return_types) if t in ("IMAGE", "MASK")), None)
    if index is None:
        raise ValueError("no IMAGE or MASK output")
    source: list[Any] = ["3", index]
    if return_types[index] == "MASK":
        graph["4"] = {"class_type": "MaskToImage", "inputs": {"mask": source}}
        source = ["4", 0]
    prefix = "parity_" + "".join(c if c.isalnum() else "_" for c in class_type)
    graph["5"] = {"class_type": "SaveImage", "inputs": {"images": source, "filename_prefix": prefix}}
    return graph, "5"


def decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def compare(reference: list[np.ndarray], got: list[np.ndarray]) -> tuple[bool, str]:
    """(identical, how they differ: max abs diff, or shapes/counts)."""
    if len(reference) != len(got):
        return False, f"{len(got)} images, reference {len(reference)}"
    worst = 0
    for ref, img in zip(reference, got, strict=True):
        if ref.shape != img.shape:
            return False, f"shape {img.shape}, reference {ref.shape}"
        worst = max(worst, int(np.abs(ref.astype(np.int32) - img.astype(np.int32)).max(initial=0)))
    return worst == 0, str(worst)


# ---- reference: real ComfyUI in a subprocess -----------------------------------------------------


class StandInServer:
    """What ``execution.PromptExecutor`` needs of ComfyUI's server."""

    def __init__(self) -> None:
        self.client_id: str | None = None
        self.last_node_id: str | None = None
        self.last_prompt_id: str | None = None
        self.messages: list[tuple[str, Any]] = []

    def send_sync(self, event: str, data: Any, sid: str | None = None) -> None:
        self.messages.append((event, data))


def _error_of(messages: list[tuple[str, Any]]) -> str:
    for event, data in messages:
        if event == "execution_error" and isinstance(data, dict):
            return f"{data.get('exception_type', '')}: {data.get('exception_message', '')}".strip()
    return "failed"


def boot_comfyui(comfyui: Path, packs: Path, base: Path) -> tuple[Any, Any, Any]:
    """ComfyUI's modules loaded in this process with the packs (CPU, no server started), as its main
    does: folders, prestartup scripts, PromptServer, the core and custom nodes. -> (loop, nodes, execution)."""
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    sys.path.insert(0, str(comfyui))
    os.chdir(base)
    import torch

    torch.set_num_threads(1)
    for op in ("nms", "qnms"):  # torchvision's C++ ops cannot load beside this torch (README)
        try:
            torch.library.define(f"torchvision::{op}", "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        except RuntimeError:
            pass
    importlib.import_module("comfy.options").enable_args_parsing(False)
    importlib.import_module("comfy.cli_args").args.cpu = True
    folder_paths = importlib.import_module("folder_paths")
    for name in ("output", "input", "temp", "user"):
        (base / name).mkdir(parents=True, exist_ok=True)
        getattr(folder_paths, f"set_{name}_directory")(str(base / name))
    folder_paths.folder_names_and_paths["custom_nodes"] = ([str(packs)], set())
    importlib.import_module("utils.extra_config")
    for entry in sorted(packs.iterdir()):
        script = entry / "prestartup_script.py"
        if script.is_file():
            spec = importlib.util.spec_from_file_location(str(script.with_suffix("")), script)
            if spec is not None and spec.loader is not None:
                try:
                    spec.loader.exec_module(importlib.util.module_from_spec(spec))
                except Exception as exc:  # ComfyUI's main logs and goes on too
                    print(f"prestartup {entry.name}: {exc}", file=sys.stderr)
    importlib.import_module("comfy.model_management")
    execution = importlib.import_module("execution")
    server = importlib.import_module("server")
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server.PromptServer(loop)
    nodes = importlib.import_module("nodes")
    loop.run_until_complete(nodes.init_extra_nodes(init_custom_nodes=True, init_api_nodes=False))
    return loop, nodes, execution


def reference_main(comfyui: Path, packs: Path, work: Path, classes: list[str]) -> None:
    """Runs in the subprocess: writes work/reference.json {class: {pack, graph, save, error, images}}."""
    base = work / "comfyui"
    (base / "input").mkdir(parents=True, exist_ok=True)
    (base / "input" / GRADIENT).write_bytes(gradient_png())
    loop, nodes, execution = boot_comfyui(comfyui, packs, base)
    out: dict[str, dict[str, Any]] = {}
    for class_type in classes:
        row: dict[str, Any] = {"pack": "", "graph": None, "save": None, "error": None, "images": []}
        out[class_type] = row
        cls = nodes.NODE_CLASS_MAPPINGS.get(class_type)
        if cls is None:
            row["error"] = "not loaded"
            continue
        row["pack"] = str(getattr(cls, "RELATIVE_PYTHON_MODULE", "")).split(".")[-1]
        try:
            graph, save = build_graph(class_type, cls.INPUT_TYPES(), tuple(cls.RETURN_TYPES), CURATED[class_type])
        except Exception as exc:
            row["error"] = f"graph: {exc}"
            continue
        row["graph"], row["save"] = graph, save
        pid = str(uuid.uuid4())
        valid = loop.run_until_complete(execution.validate_prompt(pid, graph, None))
        if not valid[0]:
            row["error"] = f"invalid: {json.dumps(valid[3])[:300]}"
            continue
        stand_in = StandInServer()
        executor = execution.PromptExecutor(stand_in)
        try:
            executor.execute(graph, pid, {}, valid[2])
        except Exception as exc:
            row["error"] = f"executor: {exc}"
            continue
        if not executor.success:
            row["error"] = _error_of(executor.status_messages)
            continue
        images = executor.history_result["outputs"].get(save, {}).get("images", [])
        row["images"] = [str(base / "output" / i.get("subfolder", "") / i["filename"]) for i in images]
    (work / "reference.json").write_text(json.dumps(out, indent=1))


def run_reference(comfyui: Path, packs: Path, work: Path, classes: list[str]) -> dict[str, dict[str, Any]]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--packs", str(packs), "--comfyui", str(comfyui),
           "--only", ",".join(classes), "--reference-into", str(work)]
    with open(work / "reference.log", "wb") as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, timeout=1800, check=False)
    result = work / "reference.json"
    if proc.returncode != 0 or not result.exists():
        tail = (work / "reference.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"reference run failed ({proc.returncode}):\n{tail}")
    return dict(json.loads(result.read_text()))


# ---- the farm ------------------------------------------------------------------------------------


def farm_rows(packs: Path, comfyui: Path | None, ref: dict[str, dict[str, Any]],
              ref_pixels: dict[str, list[np.ndarray]]) -> dict[str, tuple[str, str]]:
    """class -> (verdict, detail) on one farm: 'same'/'DIFF'/'ERROR'."""
    import requests

    from tests.farm import Farm

    class PackFarm(Farm):  # eighteen packs load in each process: give the workers longer to come up
        def wait_workers(self, n: int, timeout: float = FARM_START_TIMEOUT) -> None:
            super().wait_workers(n, timeout)

    env = {"NODEFARM_CUSTOM_NODES": str(packs), "NODEFARM_CPU": "1", "NODEFARM_TORCH_THREADS": "1",
           "CUDA_VISIBLE_DEVICES": ""}
    if comfyui is not None:
        env["NODEFARM_COMFYUI"] = str(comfyui)
    rows: dict[str, tuple[str, str]] = {}
    with tempfile.TemporaryDirectory(prefix="nf-parity-") as tmp:
        try:
            farm = PackFarm(Path(tmp), workers=2, env=env)
        except Exception as exc:
            return {c: ("ERROR", f"farm did not start: {str(exc)[:200]}") for c in ref}
        pack_errors = import_errors(Path(tmp) / "api.log")
        try:
            up = requests.post(farm.url + "/upload/image", files={"image": (GRADIENT, gradient_png(), "image/png")},
                               data={"overwrite": "true"}, timeout=30)
            if up.status_code != 200 or up.json().get("name") != GRADIENT:
                return {c: ("ERROR", f"upload: {up.status_code} {up.text[:200]}") for c in ref}
            for class_type, row in ref.items():
                if row["graph"] is None:
                    rows[class_type] = ("-", "no graph")
                    continue
                verdict, detail = farm_one(farm, row, ref_pixels.get(class_type))
                if verdict == "ERROR" and "does not exist" in detail and row["pack"] in pack_errors:
                    detail = f"pack not imported on the farm: {pack_errors[row['pack']]}"
                rows[class_type] = (verdict, detail)
                print(f"  {class_type}: {rows[class_type]}", file=sys.stderr, flush=True)
        finally:
            farm.stop()
    return rows


def import_errors(log: Path) -> dict[str, str]:
    """pack folder name -> why the farm's API process could not import it (its log's registry lines)."""
    found = re.findall(r"Cannot import custom node pack (\S+): (.*)", log.read_text(errors="replace"))
    return {Path(path).name: message for path, message in found}


def farm_one(farm: Any, row: dict[str, Any], reference: list[np.ndarray] | None) -> tuple[str, str]:
    import requests

    res = requests.post(farm.url + "/prompt", json={"prompt": row["graph"]}, timeout=60)
    if res.status_code != 200:
        body = res.json() if res.headers.get("content-type", "").startswith("application/json") else res.text
        errors = body.get("node_errors") or body.get("error") if isinstance(body, dict) else body
        return "ERROR", f"rejected: {json.dumps(errors)[:240]}"
    pid = str(res.json()["prompt_id"])
    deadline = time.time() + RUN_TIMEOUT
    entry: dict[str, Any] | None = None
    while time.time() < deadline:
        found = requests.get(f"{farm.url}/history/{pid}", timeout=10).json()
        if pid in found:
            entry = found[pid]
            break
        time.sleep(0.1)
    if entry is None:
        return "ERROR", "timed out"
    status = entry.get("status") or {}
    if status.get("status_str") != "success":
        messages = [tuple(m) for m in status.get("messages", []) if isinstance(m, (list, tuple)) and len(m) == 2]
        return "ERROR", _error_of(messages)[:240]
    infos = (entry.get("outputs") or {}).get(row["save"], {}).get("images", [])
    got = []
    for info in infos:
        view = requests.get(farm.url + "/view", params=info, timeout=30)
        if view.status_code != 200:
            return "ERROR", f"/view {view.status_code}"
        got.append(decode(view.content))
    if reference is None:
        return "-", f"{len(got)} images, no reference"
    identical, detail = compare(reference, got)
    return ("same" if identical else "DIFF"), detail


# ---- the report ----------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--packs", type=Path, required=True)
    parser.add_argument("--comfyui", type=Path, required=True)
    parser.add_argument("--only", default="", help="comma-separated classes (default: the curated list)")
    parser.add_argument("--reference-into", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    packs, comfyui = args.packs.resolve(), args.comfyui.resolve()
    classes = [c for c in args.only.split(",") if c] if args.only else list(CURATED)
    unknown = [c for c in classes if c not in CURATED]
    if unknown:
        print(f"not in the curated list: {unknown}", file=sys.stderr)
        classes = [c for c in classes if c in CURATED]
    if args.reference_into is not None:
        reference_main(comfyui, packs, args.reference_into, classes)
        return 0

    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from bench.common import Report, progress

    report = Report("pack_parity")
    with tempfile.TemporaryDirectory(prefix="nf-parity-ref-") as tmp:
        progress(f"reference: ComfyUI {comfyui} runs {len(classes)} graphs ...")
        t0 = time.perf_counter()
        try:
            ref = run_reference(comfyui, packs, Path(tmp), classes)
        except Exception as exc:
            report(f"reference failed: {exc}")
            report.write()
            return 0
        ref_s = time.perf_counter() - t0
        ref_pixels = {c: [np.asarray(Image.open(p)) for p in row["images"]]
                      for c, row in ref.items() if row["error"] is None}
    progress("farm without --comfyui ...")
    t0 = time.perf_counter()
    plain = farm_rows(packs, None, ref, ref_pixels)
    plain_s = time.perf_counter() - t0
    progress("farm with --comfyui ...")
    t0 = time.perf_counter()
    real = farm_rows(packs, comfyui, ref, ref_pixels)
    real_s = time.perf_counter() - t0

    report(f"Pack parity: {len(classes)} model-free image nodes, LoadImage({WIDTH}x{HEIGHT} gradient) -> node "
           "-> SaveImage; pixels of ComfyUI's PNGs against the farm's (2 workers)")
    report(f"packs {packs}, ComfyUI {comfyui}; reference {ref_s:.0f} s, farms {plain_s:.0f} s + {real_s:.0f} s")
    report()
    head = f"{'class':32s} {'pack':30s} {'ref':4s} {'farm':5s} {'diff':>5s}  {'--comfyui':9s} {'diff':>5s}  error"
    report(head)
    report("-" * len(head))
    totals = {"ref": 0, "plain": 0, "real": 0}
    for class_type in classes:
        row = ref[class_type]
        ok = row["error"] is None
        totals["ref"] += ok
        cells = []
        notes = [] if ok else [f"ref: {row['error']}"]
        for key, rows in (("plain", plain), ("real", real)):
            verdict, detail = rows.get(class_type, ("-", ""))
            totals[key] += verdict == "same"
            if verdict == "ERROR":
                notes.append(f"{'farm' if key == 'plain' else '--comfyui'}: {detail}")
                detail = ""
            elif verdict == "DIFF" and not detail.isdigit():
                notes.append(detail)
                detail = "?"
            cells.append(f"{verdict:5s} {detail:>5s}" if key == "plain" else f"{verdict:9s} {detail:>5s}")
        report(f"{class_type:32s} {row['pack'][:30]:30s} {'ok' if ok else 'ERR':4s} {cells[0]}  {cells[1]}  "
               + "; ".join(notes)[:300])
    report()
    n = len(classes)
    report(f"reference ok {totals['ref']}/{n}; identical to the reference: farm {totals['plain']}/{totals['ref']}, "
           f"farm --comfyui {totals['real']}/{totals['ref']}")
    report.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
