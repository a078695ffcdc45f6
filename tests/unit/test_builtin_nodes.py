"""The builtin node library, called directly: shapes, pixels, files, PNG chunks, counters."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from nodes.settings import Settings


@pytest.fixture()
def b(fp: Any) -> Any:
    from nodes import builtin

    return builtin


def cpu(t: torch.Tensor) -> torch.Tensor:
    return t.detach().cpu()


def png_text(path: Path) -> dict[str, str]:
    """The tEXt chunks of a PNG file."""
    with Image.open(path) as im:
        return dict(getattr(im, "text"))  # noqa: B009 - PngImageFile only


def gradient(batch: int = 1, h: int = 8, w: int = 12, c: int = 3) -> torch.Tensor:
    n = batch * h * w * c
    return (torch.arange(n, dtype=torch.float32) / (n - 1)).reshape(batch, h, w, c)


# ---- the library as a whole ---------------------------------------------------------------------


def test_mappings_cover_the_contract(b: Any) -> None:
    expected = {
        "LoadImage", "SaveImage", "PreviewImage", "EmptyImage", "ImageInvert", "ImageScale", "ImageScaleBy",
        "ImageBatch", "ImageBlend", "ImageBlur", "ImageSharpen", "ImageCrop", "EmptyLatentImage",
        "LatentUpscale", "RebatchImages", "PrimitiveInt", "PrimitiveFloat", "PrimitiveString",
        "PrimitiveBoolean", "MathOperation", "SolidMask", "MaskToImage", "ImageToMask", "InvertMask",
        "GetImageSize",
    }
    assert expected <= set(b.NODE_CLASS_MAPPINGS)
    for name, cls in b.NODE_CLASS_MAPPINGS.items():
        spec = cls.INPUT_TYPES()
        assert set(spec) <= {"required", "optional", "hidden"}, name
        assert isinstance(cls.RETURN_TYPES, tuple) and isinstance(cls.CATEGORY, str), name
        assert callable(getattr(cls(), cls.FUNCTION)), name
    names = b.NODE_DISPLAY_NAME_MAPPINGS
    assert names["SaveImage"] == "Save Image" and names["LoadImage"] == "Load Image"
    assert names["ImageInvert"] == "Invert Image" and names["ImageScale"] == "Upscale Image"
    assert names["EmptyLatentImage"] == "Empty Latent Image" and names["PreviewImage"] == "Preview Image"
    assert set(names) <= set(b.NODE_CLASS_MAPPINGS)


def test_comfyui_input_specs(b: Any) -> None:
    latent = b.EmptyLatentImage.INPUT_TYPES()["required"]
    assert {k: latent["width"][1][k] for k in ("default", "min", "max", "step")} == {
        "default": 512, "min": 16, "max": 16384, "step": 8}
    color = b.EmptyImage.INPUT_TYPES()["required"]["color"]
    assert color == ("INT", {"default": 0, "min": 0, "max": 0xFFFFFF, "step": 1, "display": "color"})
    save = b.SaveImage.INPUT_TYPES()
    assert save["hidden"] == {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}
    assert save["required"]["filename_prefix"][1]["default"] == "ComfyUI"
    assert b.SaveImage.OUTPUT_NODE is True and b.SaveImage.RETURN_TYPES == ()
    assert b.ImageScale.INPUT_TYPES()["required"]["upscale_method"][0] == [
        "nearest-exact", "bilinear", "area", "bicubic", "lanczos"]
    assert b.LatentUpscale.INPUT_TYPES()["required"]["upscale_method"][0][-1] == "bislerp"
    assert b.ImageBlend.INPUT_TYPES()["required"]["blend_mode"][0] == [
        "normal", "multiply", "screen", "overlay", "soft_light", "difference"]
    assert b.RebatchImages.INPUT_IS_LIST is True and b.RebatchImages.OUTPUT_IS_LIST == (True,)


# ---- image generation and transforms ------------------------------------------------------------


def test_empty_image_color(b: Any) -> None:
    (img,) = b.EmptyImage().generate(width=5, height=3, batch_size=2, color=0xFF8000)
    assert img.shape == (2, 3, 5, 3) and img.dtype == torch.float32
    assert torch.allclose(cpu(img)[1, 2, 4], torch.tensor([1.0, 128 / 255, 0.0]))


def test_invert(b: Any) -> None:
    img = gradient()
    (out,) = b.ImageInvert().invert(img)
    assert torch.allclose(cpu(out), 1.0 - img)


def test_image_scale(b: Any) -> None:
    img = gradient(2, 8, 12)
    (out,) = b.ImageScale().upscale(img, "bilinear", 24, 16, "disabled")
    assert out.shape == (2, 16, 24, 3)
    (keep,) = b.ImageScale().upscale(img, "nearest-exact", 0, 4, "disabled")
    assert keep.shape == (2, 4, 6, 3)
    (same,) = b.ImageScale().upscale(img, "area", 0, 0, "disabled")
    assert torch.equal(cpu(same), img)
    (lz,) = b.ImageScale().upscale(img, "lanczos", 6, 4, "disabled")
    assert lz.shape == (2, 4, 6, 3) and 0.0 <= float(lz.min()) and float(lz.max()) <= 1.0
    (by,) = b.ImageScaleBy().upscale(img, "bicubic", 0.5)
    assert by.shape == (2, 4, 6, 3)


def test_image_scale_center_crop_keeps_the_middle(b: Any) -> None:
    img = torch.zeros(1, 4, 8, 3)
    img[:, :, 2:6] = 1.0  # a white band in the middle 4 columns
    (out,) = b.ImageScale().upscale(img, "nearest-exact", 4, 4, "center")
    assert torch.equal(cpu(out), torch.ones(1, 4, 4, 3))
    (stretched,) = b.ImageScale().upscale(img, "nearest-exact", 4, 4, "disabled")
    assert float(stretched.min()) == 0.0


def test_image_batch_resizes_the_second(b: Any) -> None:
    a, c = gradient(1, 8, 12), torch.ones(2, 4, 6, 3)
    (out,) = b.ImageBatch().batch(a, c)
    assert out.shape == (3, 8, 12, 3)
    assert torch.allclose(cpu(out)[1:], torch.ones(2, 8, 12, 3))
    (rgba,) = b.ImageBatch().batch(a, torch.ones(1, 8, 12, 4))
    assert rgba.shape == (2, 8, 12, 4) and float(cpu(rgba)[0, ..., 3].min()) == 1.0


# base 0.2 under top 0.8: the blended value, then mixed with the base by blend_factor and clamped
@pytest.mark.parametrize(("mode", "blended"), [
    ("normal", 0.8), ("multiply", 0.16), ("screen", 0.84), ("overlay", 0.32),
    ("difference", -0.6),  # ComfyUI's difference is base - top (not abs), clamped after mixing
    ("soft_light", 0.2 + 0.6 * (((16 * 0.2 - 12) * 0.2 + 4) * 0.2 - 0.2)),
])
def test_image_blend_modes(b: Any, mode: str, blended: float) -> None:
    base, top = torch.full((1, 2, 2, 3), 0.2), torch.full((1, 2, 2, 3), 0.8)
    for factor in (1.0, 0.5):
        (out,) = b.ImageBlend().blend_images(base, top, factor, mode)
        expected = min(1.0, max(0.0, 0.2 * (1 - factor) + blended * factor))
        assert torch.allclose(cpu(out), torch.full_like(base, expected), atol=1e-6), (mode, factor)


def test_image_blend_resizes_image2(b: Any) -> None:
    (out,) = b.ImageBlend().blend_images(torch.zeros(1, 8, 8, 3), torch.ones(1, 4, 4, 3), 0.25, "normal")
    assert out.shape == (1, 8, 8, 3) and torch.allclose(cpu(out), torch.full((1, 8, 8, 3), 0.25))


def test_blur_spreads_an_impulse_and_keeps_flat_areas(b: Any) -> None:
    flat = torch.full((1, 9, 9, 3), 0.4)
    (out,) = b.ImageBlur().blur(flat, 2, 1.0)
    assert torch.allclose(cpu(out), flat, atol=1e-6)
    impulse = torch.zeros(1, 9, 9, 1)
    impulse[0, 4, 4, 0] = 1.0
    (spread,) = b.ImageBlur().blur(impulse, 2, 1.0)
    s = cpu(spread)[0, :, :, 0]
    assert s[4, 4] < 1.0 and s[4, 5] > 0 and s[2, 4] > 0 and s[1, 4] == 0
    assert torch.isclose(s.sum(), torch.tensor(1.0), atol=1e-5)
    assert torch.allclose(s, s.T)  # symmetric kernel


def test_sharpen_boosts_edges_and_keeps_flat_areas(b: Any) -> None:
    flat = torch.full((1, 7, 7, 3), 0.5)
    (out,) = b.ImageSharpen().sharpen(flat, 1, 1.0, 1.0)
    assert torch.allclose(cpu(out), flat, atol=1e-5)
    step = torch.zeros(1, 7, 8, 1)
    step[:, :, 4:] = 0.6
    (sharp,) = b.ImageSharpen().sharpen(step, 1, 1.0, 1.0)
    row = cpu(sharp)[0, 3, :, 0]
    assert row[3] == 0.0 and row[4] > 0.6  # undershoot clamped at 0, overshoot above the plateau
    (ident,) = b.ImageSharpen().sharpen(step, 1, 1.0, 0.0)
    assert torch.allclose(cpu(ident), step, atol=1e-6)


def test_crop(b: Any) -> None:
    img = gradient(1, 8, 12)
    (out,) = b.ImageCrop().crop(img, 4, 3, 2, 1)
    assert torch.equal(cpu(out), img[:, 1:4, 2:6])
    (edge,) = b.ImageCrop().crop(img, 100, 100, 50, 50)
    assert edge.shape == (1, 1, 1, 3)


def test_get_image_size(b: Any) -> None:
    assert b.GetImageSize().get_size(gradient(2, 8, 12)) == (12, 8, 2)


def test_rebatch_images(b: Any) -> None:
    (out,) = b.RebatchImages().rebatch([gradient(3), gradient(2)], [2])
    assert [int(t.shape[0]) for t in out] == [2, 2, 1]
    assert torch.equal(cpu(out[1])[1], gradient(2)[0])


# ---- latents, masks, primitives -----------------------------------------------------------------


def test_empty_latent_and_upscale(b: Any) -> None:
    (lat,) = b.EmptyLatentImage().generate(512, 256, 2)
    assert lat["samples"].shape == (2, 4, 32, 64) and float(lat["samples"].abs().sum()) == 0.0
    src: dict[str, Any] = {"samples": torch.randn(1, 4, 8, 16, generator=torch.Generator().manual_seed(0)), "batch_index": [3]}
    for method in ("nearest-exact", "bilinear", "area", "bicubic", "bislerp"):
        (up,) = b.LatentUpscale().upscale(src, method, 256, 128, "disabled")
        assert up["samples"].shape == (1, 4, 16, 32), method
        assert up["batch_index"] == [3]
    (keep,) = b.LatentUpscale().upscale(src, "bilinear", 0, 128, "disabled")
    assert keep["samples"].shape == (1, 4, 16, 32)
    (by,) = b.LatentUpscaleBy().upscale(src, "bislerp", 1.5)
    assert by["samples"].shape == (1, 4, 12, 24)
    assert src["samples"].shape == (1, 4, 8, 16)  # input untouched


def test_bislerp_keeps_identity_and_interpolates_between_vectors() -> None:
    from nodes.compat.comfy import utils

    x = torch.randn(1, 4, 5, 6, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(utils.bislerp(x, 6, 5), x, atol=1e-5)
    pair = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).T.reshape(1, 2, 1, 2)  # two orthogonal unit vectors
    out = utils.bislerp(pair, 4, 1)
    norms = out.norm(dim=1)
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-5)  # slerp stays on the sphere


def test_masks(b: Any) -> None:
    (solid,) = b.SolidMask().solid(0.25, 5, 3)
    assert solid.shape == (1, 3, 5) and float(solid.mean()) == 0.25
    (inv,) = b.InvertMask().invert(solid)
    assert float(inv.mean()) == 0.75
    (img,) = b.MaskToImage().mask_to_image(inv)
    assert img.shape == (1, 3, 5, 3) and float(img.mean()) == 0.75
    (green,) = b.ImageToMask().image_to_mask(gradient(), "green")
    assert torch.equal(cpu(green), gradient()[..., 1])
    with pytest.raises(ValueError, match="alpha"):
        b.ImageToMask().image_to_mask(gradient(), "alpha")


def test_primitives_and_math(b: Any) -> None:
    assert b.PrimitiveInt().execute(7) == (7,)
    assert b.PrimitiveFloat().execute(0.5) == (0.5,)
    assert b.PrimitiveString().execute("s") == ("s",)
    assert b.PrimitiveBoolean().execute(True) == (True,)
    for cls, t in ((b.PrimitiveInt, "INT"), (b.PrimitiveFloat, "FLOAT"), (b.PrimitiveString, "STRING"),
                   (b.PrimitiveBoolean, "BOOLEAN")):
        assert cls.RETURN_TYPES == (t,) and cls.INPUT_TYPES()["required"]["value"][0] == t
    m = b.MathOperation()
    assert m.calculate(6.0, 3.0, "add") == (9.0,)
    assert m.calculate(6.0, 3.0, "subtract") == (3.0,)
    assert m.calculate(6.0, 3.0, "multiply") == (18.0,)
    assert m.calculate(6.0, 3.0, "divide") == (2.0,)
    with pytest.raises(ValueError, match="divide .* by zero"):
        m.calculate(1.0, 0.0, "divide")


# ---- LoadImage ----------------------------------------------------------------------------------


def test_load_image_rgba_gives_inverted_alpha_mask(b: Any, fp: Any, tmp_path: Path) -> None:
    im = Image.new("RGBA", (4, 3), (255, 0, 0, 64))
    im.putpixel((0, 0), (0, 0, 255, 255))
    im.save(tmp_path / "input" / "rgba.png")
    (tmp_path / "input" / "notes.txt").write_text("x")
    options = b.LoadImage.INPUT_TYPES()["required"]["image"]
    assert options == (["rgba.png"], {"image_upload": True})
    image, mask = b.LoadImage().load_image("rgba.png")
    assert image.shape == (1, 3, 4, 3) and mask.shape == (1, 3, 4)
    assert torch.allclose(image[0, 1, 1], torch.tensor([1.0, 0.0, 0.0]))
    assert torch.allclose(image[0, 0, 0], torch.tensor([0.0, 0.0, 1.0]))
    assert float(mask[0, 0, 0]) == 0.0 and abs(float(mask[0, 1, 1]) - (1 - 64 / 255)) < 1e-6


def test_load_image_without_alpha_and_multiframe(b: Any, tmp_path: Path) -> None:
    Image.new("RGB", (5, 5), (0, 255, 0)).save(tmp_path / "input" / "rgb.png")
    image, mask = b.LoadImage().load_image("rgb.png")
    assert image.shape == (1, 5, 5, 3) and torch.equal(mask, torch.zeros(1, 64, 64))
    frames = [Image.new("RGB", (6, 4), (v, v, v)) for v in (0, 128, 255)]
    frames[0].save(tmp_path / "input" / "anim.gif", save_all=True, append_images=frames[1:])
    image, mask = b.LoadImage().load_image("anim.gif")
    assert image.shape == (3, 4, 6, 3) and mask.shape[0] == 3
    assert float(image[2].mean()) == 1.0 and float(image[0].mean()) == 0.0


def test_load_image_is_changed_validate_and_annotations(b: Any, tmp_path: Path) -> None:
    Image.new("RGB", (2, 2)).save(tmp_path / "output" / "o.png")
    data = (tmp_path / "output" / "o.png").read_bytes()
    assert b.LoadImage.IS_CHANGED("o.png [output]") == hashlib.sha256(data).hexdigest()
    assert b.LoadImage.VALIDATE_INPUTS("o.png [output]") is True
    assert b.LoadImage.VALIDATE_INPUTS("nope.png") == "Invalid image file: nope.png"
    image, _ = b.LoadImage().load_image("o.png [output]")
    assert image.shape == (1, 2, 2, 3)


def test_load_image_fetches_a_missing_input(b: Any, fp: Any, tmp_path: Path) -> None:
    asked: list[tuple[str, str, str]] = []

    def fetch(kind: str, subfolder: str, filename: str) -> Path:
        asked.append((kind, subfolder, filename))
        target = tmp_path / kind / subfolder / filename
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (3, 3), (255, 255, 255)).save(target)
        return target

    fp.set_fetch_hook(fetch)
    assert b.LoadImage.VALIDATE_INPUTS("far/away.png") is True
    image, _ = b.LoadImage().load_image("far/away.png")
    assert asked == [("input", "far", "away.png")] and float(image.mean()) == 1.0


# ---- SaveImage / PreviewImage -------------------------------------------------------------------


def test_save_image_names_pixels_and_metadata(b: Any, tmp_path: Path) -> None:
    img = gradient(2, 4, 6)
    prompt = {"1": {"class_type": "SaveImage", "inputs": {}}}
    result = b.SaveImage().save_images(img, "trace/run", prompt=prompt, extra_pnginfo={"workflow": {"n": 1}})
    assert result == {"ui": {"images": [
        {"filename": "run_00001_.png", "subfolder": "trace", "type": "output"},
        {"filename": "run_00002_.png", "subfolder": "trace", "type": "output"},
    ]}}
    png = Image.open(tmp_path / "output" / "trace" / "run_00002_.png")
    text = png_text(tmp_path / "output" / "trace" / "run_00002_.png")
    assert json.loads(text["prompt"]) == prompt
    assert json.loads(text["workflow"]) == {"n": 1}
    expected = (torch.clamp(img[1] * 255, 0, 255)).to(torch.uint8)
    assert torch.equal(torch.from_numpy(np.array(png)), expected)
    again = b.SaveImage().save_images(img[:1], "trace/run")
    assert again["ui"]["images"][0]["filename"] == "run_00003_.png"
    assert "prompt" not in png_text(tmp_path / "output" / "trace" / "run_00003_.png")


def test_save_image_batch_num_and_disable_metadata(b: Any, fp: Any, tmp_path: Path) -> None:
    fp.configure(Settings(base_dir=tmp_path, disable_metadata=True))
    result = b.SaveImage().save_images(gradient(2, 2, 2), "f%batch_num%", prompt={"a": 1})
    assert [i["filename"] for i in result["ui"]["images"]] == ["f0_00001_.png", "f1_00002_.png"]
    assert png_text(tmp_path / "output" / "f0_00001_.png") == {}


def test_save_image_uses_the_farm_counter_for_the_whole_batch(b: Any, fp: Any) -> None:
    calls: list[tuple[str, str, str, int]] = []

    def hook(kind: str, subfolder: str, filename: str, n: int) -> int:
        calls.append((kind, subfolder, filename, n))
        return 17

    fp.set_counter_hook(hook)
    result = b.SaveImage().save_images(gradient(3, 2, 2), "ComfyUI")
    assert calls == [("output", "", "ComfyUI", 3)]
    assert [i["filename"] for i in result["ui"]["images"]] == [
        "ComfyUI_00017_.png", "ComfyUI_00018_.png", "ComfyUI_00019_.png"]


def test_save_image_refuses_escaping_prefix(b: Any, fp: Any) -> None:
    with pytest.raises(fp.SavePathError):
        b.SaveImage().save_images(gradient(1, 2, 2), "../../evil")


def test_preview_image_goes_to_temp(b: Any, tmp_path: Path) -> None:
    node = b.PreviewImage()
    assert re.fullmatch(r"_temp_[a-z]{5}", node.prefix_append)
    result = node.save_images(gradient(1, 2, 2, 4), prompt={"x": 1})
    (entry,) = result["ui"]["images"]
    assert entry["type"] == "temp" and entry["subfolder"] == ""
    assert re.fullmatch(r"ComfyUI_temp_[a-z]{5}_00001_\.png", entry["filename"])
    saved = Image.open(tmp_path / "temp" / entry["filename"])
    assert saved.mode == "RGBA" and json.loads(png_text(tmp_path / "temp" / entry["filename"])["prompt"]) == {"x": 1}
    assert not any((tmp_path / "output").iterdir())
    second = node.save_images(gradient(1, 2, 2))["ui"]["images"][0]["filename"]
    assert second == entry["filename"].replace("_00001_", "_00002_")  # same suffix for the instance
