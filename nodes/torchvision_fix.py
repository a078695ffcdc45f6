"""``import torchvision`` where its C++ operators cannot load (a CPU torch beside PyPI's CUDA
torchvision wheel of the same release, as on these machines).

torchvision's Python side registers fake kernels for ``nms``/``qnms`` without checking that the
operators exist, so its import fails ("operator torchvision::nms does not exist"), and with it every
custom node pack (and ComfyUI module) that imports torchvision. :func:`without_ops` declares those
operators' schemas, as torchvision's C++ library would, so the pure-Python parts import. The boot
function calls it in every process, with or without ``--comfyui``.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys

log = logging.getLogger("nodefarm.torchvision")

# torchvision's C++ operators that its Python side registers fakes for without checking they exist
TORCHVISION_OPS = {
    "nms": "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}


def without_ops() -> None:
    """Let ``import torchvision`` succeed when its C++ operators cannot load (a CPU torch beside a
    CUDA torchvision wheel of the same release): torchvision's Python side registers fake kernels for
    ``nms``/``qnms`` without checking that the operators exist. Declaring their schemas (what its
    C++ library would do) lets the pure-Python parts import; calling those operators then fails
    with torch's clear "no kernel" error. Does nothing when torchvision imports by itself."""
    if "torchvision" in sys.modules or importlib.util.find_spec("torchvision") is None:
        return
    try:
        importlib.import_module("torchvision")
        return
    except RuntimeError as exc:
        if "torchvision::" not in str(exc):
            raise
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    import torch

    for op, schema in TORCHVISION_OPS.items():
        try:
            torch.library.define(f"torchvision::{op}", schema)
        except RuntimeError:
            pass  # already declared
    importlib.import_module("torchvision")
    log.warning("torchvision's C++ operators did not load (torch %s); its Python parts work, nms does not",
                torch.__version__)
