"""``nodefarm tiny-checkpoint``: the smallest checkpoint ComfyUI loads as Stable Diffusion 1.5.

Random weights from a fixed seed, built with ComfyUI's own classes (imported at run time from the
folder given with ``--comfyui``) and saved as fp16 safetensors, so the farm can run a real txt2img
workflow without downloading a model. The pictures are noise; the point is the plumbing. Same seed,
same ComfyUI: the same file, byte for byte.

* UNet (``model.diffusion_model.``): ComfyUI's ``UNetModel`` with SD1.5's widths (320 channels,
  768-wide cross-attention, conv ``proj_in``), which is what ``comfy.model_detection`` tells SD1.5
  apart by, but only one level: one res block with one transformer on the way down, the two res
  blocks on the way up with one transformer each, and no middle block (``transformer_depth_middle``
  -2). ComfyUI reads all of that back from the weights' names and shapes.
* CLIP-L (``cond_stage_model.transformer.text_model.``): full size, ``comfy/sd1_clip_config.json``;
  fewer layers and random weights give NaN. No ``text_projection``, as in a real SD1.5 checkpoint
  (ComfyUI's SD1.5 loader would move it under ``text_model.``, where nothing reads it).
* VAE (``first_stage_model.``): TAESD, which ``comfy.sd.VAE`` recognises by its key names.

``--check`` loads a checkpoint with ComfyUI, encodes a prompt and runs a 64x64, 4-step euler
txt2img plus VAE decode, and prints what it found as JSON (run it in its own process: it leaves
ComfyUI's globals behind).
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

DEFAULT_OUT = Path("models/checkpoints/tiny-sd15.safetensors")

UNET_PREFIX = "model.diffusion_model."
CLIP_PREFIX = "cond_stage_model.transformer."  # CLIPTextModel's own keys start with text_model.
VAE_PREFIX = "first_stage_model."

# what comfy.model_detection.detect_unet_config reads back from the weights, plus SD15.unet_extra_config
UNET_CONFIG: dict[str, Any] = {
    "image_size": 32,  # required, unused
    "use_checkpoint": False,
    "in_channels": 4,
    "out_channels": 4,
    "model_channels": 320,
    "num_res_blocks": [1],
    "channel_mult": [1],
    "transformer_depth": [1],
    "transformer_depth_output": [1, 1],  # one level has num_res_blocks + 1 output blocks
    "transformer_depth_middle": -2,  # no middle block at all
    "context_dim": 768,
    "use_linear_in_transformer": False,
    "use_spatial_transformer": True,
    "legacy": False,
    "adm_in_channels": None,
    "use_temporal_resblock": False,
    "use_temporal_attention": False,
    "num_heads": 8,
    "num_head_channels": -1,
}
EXPECTED_MODEL_CONFIG = "SD15"
DECODER_GAIN = 8.0  # see _visible


class TinyCheckpointError(Exception):
    """A failure to report to the user as one message (exit code 1)."""


def import_comfy(comfyui_dir: Path) -> ModuleType:
    """ComfyUI's ``comfy`` package from ``comfyui_dir``, imported the way its ``main.py`` would.

    Its flags are not parsed from our command line, and ``comfy.model_management`` is pointed at
    the CPU when this call is the first to import it. torchvision is made importable without its
    C++ operators first (``comfy.sd`` imports it)."""
    root = _root(comfyui_dir)
    if not (root / "comfy" / "sd.py").is_file():
        raise TinyCheckpointError(f"--comfyui {root}: not a ComfyUI checkout (no comfy/sd.py)")
    # before ComfyUI's folder goes on sys.path: there, its nodes.py would shadow our nodes package
    from nodes import torchvision_fix

    torchvision_fix.without_ops()
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    comfy = importlib.import_module("comfy")
    loaded_from = [Path(p).resolve() for p in comfy.__path__]  # a namespace package: no __init__.py
    if root / "comfy" not in loaded_from:
        raise TinyCheckpointError(f"this process already imported ComfyUI's comfy from {loaded_from}, not {root}")
    importlib.import_module("comfy.options").enable_args_parsing(False)
    cli_args = importlib.import_module("comfy.cli_args")
    if "comfy.model_management" not in sys.modules:
        cli_args.args.cpu = True
    return comfy


def _root(comfyui_dir: Path) -> Path:
    return Path(comfyui_dir).expanduser().resolve()


def _init_weights(module: Any) -> None:
    """Give every parameter torch's default initialisation, from torch's global generator.

    ComfyUI builds its layers with ``comfy.ops.disable_weight_init``, whose ``reset_parameters`` does
    nothing (checkpoints overwrite the weights anyway), so they start as uninitialised memory. Each
    layer's first ``torch.nn`` class that defines ``reset_parameters`` (``Linear``, ``_ConvNd``,
    ``GroupNorm``, ``LayerNorm``, ``Embedding``) initialises it instead. Parameters of no such
    layer must be ones the model set itself (TAESD's ``vae_scale``/``vae_shift``)."""
    import torch

    done: set[int] = set()
    for layer in module.modules():
        for cls in type(layer).__mro__:
            if cls.__module__.startswith("torch.nn.") and "reset_parameters" in vars(cls):
                vars(cls)["reset_parameters"](layer)
                done.update(id(p) for p in layer.parameters(recurse=False))
                break
    for name, param in module.named_parameters():
        if id(param) not in done and param.numel() > 1:
            raise TinyCheckpointError(f"{type(module).__name__}.{name}: no torch.nn layer initialises it")
        if not torch.isfinite(param).all():
            raise TinyCheckpointError(f"{type(module).__name__}.{name}: not finite after initialisation")


def _visible(last_conv: Any) -> None:
    """Random TAESD decodes to almost black (pixels about 0.01 +- 0.03: the signal fades through its
    ReLU blocks); its last convolution amplified and centred on grey makes the pictures visible noise."""
    last_conv.weight.mul_(DECODER_GAIN)
    last_conv.bias.fill_(0.5)


def _prefixed(prefix: str, module: Any) -> dict[str, Any]:
    import torch

    return {prefix + k: v.detach().to(torch.float16).contiguous() for k, v in module.state_dict().items()}


def state_dict(comfyui_dir: Path, seed: int = 0) -> dict[str, Any]:
    """The checkpoint's tensors (fp16, CPU), keyed as in an SD1.5 checkpoint."""
    import torch

    import_comfy(comfyui_dir)
    openaimodel = importlib.import_module("comfy.ldm.modules.diffusionmodules.openaimodel")
    clip_model = importlib.import_module("comfy.clip_model")
    ops = importlib.import_module("comfy.ops")
    taesd = importlib.import_module("comfy.taesd.taesd")
    clip_config = json.loads((_root(comfyui_dir) / "comfy" / "sd1_clip_config.json").read_text())

    sd: dict[str, Any] = {}
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        parts = [
            (UNET_PREFIX, openaimodel.UNetModel(**UNET_CONFIG, dtype=torch.float32, device="cpu")),
            (CLIP_PREFIX, clip_model.CLIPTextModel(clip_config, torch.float32, "cpu", ops.disable_weight_init)),
            (VAE_PREFIX, taesd.TAESD()),
        ]
        for prefix, module in parts:
            _init_weights(module)
            if prefix == VAE_PREFIX:
                _visible(module.taesd_decoder[-1])
            sd.update(_prefixed(prefix, module))
    sd.pop(CLIP_PREFIX + "text_projection.weight")
    _check_detection(sd)
    return sd


def _check_detection(sd: dict[str, Any]) -> None:
    """ComfyUI's model detection must read ``sd`` as SD1.5 with the config it was built with."""
    detection = importlib.import_module("comfy.model_detection")
    unet_config = detection.detect_unet_config(sd, UNET_PREFIX)
    found = detection.model_config_from_unet_config(unet_config, sd)
    name = type(found).__name__ if found is not None else None
    if name != EXPECTED_MODEL_CONFIG:
        raise TinyCheckpointError(f"ComfyUI detects this UNet as {name}, not {EXPECTED_MODEL_CONFIG}: {unet_config}")
    different = {k: (v, found.unet_config.get(k)) for k, v in UNET_CONFIG.items() if found.unet_config.get(k) != v}
    if different:
        raise TinyCheckpointError(f"ComfyUI reads this UNet back differently (built, read): {different}")


def build(comfyui_dir: Path, out: Path, seed: int = 0, taesd_decoder: Path | None = None) -> Path:
    """Write the tiny SD1.5 checkpoint for ``seed`` to ``out`` (fp16 safetensors); returns ``out``.

    ``taesd_decoder``: also write its VAE's decoder there, as the file ComfyUI's TAESD previews load
    (``models/vae_approx/taesd_decoder.safetensors``, for ``--preview-method taesd``)."""
    sd = state_dict(comfyui_dir, seed)
    if taesd_decoder is not None:
        prefix = f"{VAE_PREFIX}taesd_decoder."
        _save({k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}, Path(taesd_decoder), seed)
    return _save(sd, Path(out), seed)


def _save(sd: dict[str, Any], out: Path, seed: int) -> Path:
    safetensors_torch = importlib.import_module("safetensors.torch")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    # one metadata entry: safetensors writes several in a different order in each process
    about = {"seed": seed, "weights": "random: a test model, not a usable one"}
    metadata = {"nodefarm.tiny_checkpoint": json.dumps(about, sort_keys=True)}
    try:
        safetensors_torch.save_file(sd, str(tmp), metadata=metadata)
        tmp.chmod(0o644)  # as a model download would be, not the temporary file's 0600
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def parameter_counts(sd: dict[str, Any]) -> dict[str, int]:
    """Parameters per part (unet, clip, vae) of a checkpoint's state dict."""
    counts = {"unet": 0, "clip": 0, "vae": 0}
    for key, tensor in sd.items():
        part = "unet" if key.startswith(UNET_PREFIX) else "clip" if key.startswith(CLIP_PREFIX) else "vae"
        counts[part] += tensor.numel()
    return counts


def check(comfyui_dir: Path, path: Path, *, sample: bool = True, seed: int = 0) -> dict[str, Any]:
    """Load ``path`` with ComfyUI's checkpoint loader and try it: what ComfyUI detected, whether the
    prompt's conditioning is finite, and (``sample``) a 64x64, 4-step euler txt2img decoded by the
    VAE. Leaves ComfyUI imported and its models loaded in this process."""
    import torch

    if not Path(path).is_file():
        raise TinyCheckpointError(f"no checkpoint at {path}")
    import_comfy(comfyui_dir)
    comfy_sd = importlib.import_module("comfy.sd")
    comfy_utils: Any = importlib.import_module("comfy.utils")
    comfy_utils.PROGRESS_BAR_ENABLED = False
    started = time.perf_counter()
    model, clip, vae, _ = comfy_sd.load_checkpoint_guess_config(
        str(path), output_vae=True, output_clip=True, embedding_directory=None)
    report: dict[str, Any] = {
        "model_config": type(model.model.model_config).__name__,
        "vae": type(vae.first_stage_model).__name__,
        "parameters": parameter_counts(comfy_utils.load_torch_file(str(path))),
        "file_bytes": Path(path).stat().st_size,
        "load_s": round(time.perf_counter() - started, 2),
    }

    def encode(text: str) -> list[list[Any]]:
        cond, pooled = clip.encode_from_tokens(clip.tokenize(text), return_pooled=True)
        return [[cond, {"pooled_output": pooled}]]

    with torch.inference_mode():
        positive, negative = encode("a tiny red fox in the snow"), encode("")
        cond = positive[0][0]
        report["cond_shape"] = list(cond.shape)
        report["cond_finite"] = bool(torch.isfinite(cond).all())
        if sample:
            report.update(_txt2img(model, vae, positive, negative, seed))
    report["total_s"] = round(time.perf_counter() - started, 2)
    return report


def _txt2img(model: Any, vae: Any, positive: Any, negative: Any, seed: int) -> dict[str, Any]:
    """A 64x64, 4-step euler txt2img (cfg 7) decoded by the VAE, as ComfyUI's KSampler would run it."""
    import hashlib

    import torch

    comfy_sample = importlib.import_module("comfy.sample")
    started = time.perf_counter()
    latent = torch.zeros([1, 4, 8, 8])
    noise = comfy_sample.prepare_noise(latent, seed)
    samples = comfy_sample.sample(model, noise, 4, 7.0, "euler", "normal", positive, negative, latent,
                                  disable_pbar=True, seed=seed)
    image = vae.decode(samples).float()
    pixels = (image * 255.0).clamp(0, 255).to(torch.uint8)  # what SaveImage writes
    return {
        "image_shape": list(image.shape),
        "image_finite": bool(torch.isfinite(image).all()),
        "image_mean": round(float(image.mean()), 4),
        "image_std": round(float(image.std()), 4),
        "image_sha256": hashlib.sha256(pixels.numpy().tobytes()).hexdigest(),
        "sample_s": round(time.perf_counter() - started, 2),
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nodefarm tiny-checkpoint",
        description="Build the smallest checkpoint ComfyUI loads as SD1.5, with random weights: "
                    "to try the farm on a real ComfyUI without a model download.")
    parser.add_argument("--comfyui", metavar="DIR", default=os.environ.get("NODEFARM_COMFYUI"),
                        help="the ComfyUI checkout whose classes build it (default: $NODEFARM_COMFYUI)")
    parser.add_argument("--out", metavar="FILE", type=Path, default=DEFAULT_OUT,
                        help=f"where to write it (default {DEFAULT_OUT})")
    parser.add_argument("--seed", metavar="N", type=int, default=0, help="the weights' random seed (default 0)")
    parser.add_argument("--taesd-decoder", metavar="FILE", type=Path,
                        help="also write its VAE's decoder as TAESD preview weights "
                             "(models/vae_approx/taesd_decoder.safetensors)")
    parser.add_argument("--check", action="store_true",
                        help="do not build: load FILE with ComfyUI, run a 64x64 4-step txt2img, print a JSON report")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    ns = parser.parse_args(argv)
    if not ns.comfyui:
        parser.error("--comfyui DIR is required (or set NODEFARM_COMFYUI)")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        if ns.check:
            print(json.dumps(check(Path(ns.comfyui), ns.out, seed=ns.seed)))
            return 0
        started = time.perf_counter()
        out = build(Path(ns.comfyui), ns.out, ns.seed, ns.taesd_decoder)
    except TinyCheckpointError as exc:
        print(f"nodefarm tiny-checkpoint: {exc}", file=sys.stderr)
        return 1
    size = out.stat().st_size
    print(f"{out} ({size / 1e6:.1f} MB, seed {ns.seed}) in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    print(out.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
