"""What popular custom node packs import from ComfyUI at module level exists without ``--comfyui``:
model-free helpers work, model code raises an error that names ``--comfyui``."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import torch

from nodes.boot import install_compat

install_compat()

from nodes.compat import needs_comfyui  # noqa: E402

needs_comfyui.install_model_code_finder()

from nodes.compat.comfy_nodes_standins import standin  # noqa: E402
from nodes.compat.needs_comfyui import NeedsComfyUIError  # noqa: E402

COMFYUI_HINT = "needs ComfyUI's model code: start the farm with --comfyui <your ComfyUI folder>"

# ---- the names packs import ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "names"),
    [
        ("comfy_extras.nodes_custom_sampler", ["SamplerCustom", "SamplerCustomAdvanced", "Noise_RandomNoise",
                                               "Noise_EmptyNoise", "BasicScheduler", "BasicGuider", "Guider_Basic",
                                               "KSamplerSelect"]),
        ("comfy_extras.nodes_upscale_model", ["UpscaleModelLoader", "ImageUpscaleWithModel"]),
        ("comfy_extras.nodes_mask", ["composite", "ImageCompositeMasked", "LatentCompositeMasked"]),
        ("comfy_extras.nodes_latent", ["LatentBatch"]),
        ("comfy_extras.nodes_clip_sdxl", ["CLIPTextEncodeSDXL", "CLIPTextEncodeSDXLRefiner"]),
        ("comfy_extras.nodes_differential_diffusion", ["DifferentialDiffusion"]),
        ("comfy_extras.nodes_align_your_steps", ["AlignYourStepsScheduler"]),
        ("comfy_extras.nodes_gits", ["GITSScheduler"]),
        ("comfy_extras.nodes_perpneg", ["Guider_PerpNeg"]),
        ("comfy_extras.nodes_model_advanced", ["ModelSamplingFlux", "ModelSamplingAuraFlow"]),
        ("comfy_extras.chainner_models.model_loading", ["load_state_dict"]),
        ("comfy.k_diffusion.sampling", ["to_d", "get_ancestral_step", "sample_euler", "get_sigmas_karras"]),
        ("comfy.k_diffusion.utils", ["FolderOfImages", "append_dims"]),
        ("comfy.latent_formats", ["SD15", "SDXL", "SD3", "Flux", "Wan21"]),
        ("comfy.lora", ["load_lora", "model_lora_keys_unet", "model_lora_keys_clip", "calculate_weight"]),
        ("comfy.ops", ["disable_weight_init", "manual_cast", "cast_bias_weight", "cast_to"]),
        ("comfy.controlnet", ["ControlBase", "ControlNet", "load_controlnet"]),
        ("comfy.sdxl_clip", ["SDXLClipModel", "SDXLRefinerClipModel", "SDXLClipG"]),
        ("comfy.sampler_helpers", ["prepare_mask", "convert_cond", "get_additional_models",
                                   "cleanup_additional_models"]),
        ("comfy.samplers", ["KSampler", "KSAMPLER", "CFGGuider", "KSamplerX0Inpaint", "sampling_function"]),
        ("comfy.sample", ["np", "prepare_noise", "sample"]),
        ("comfy.utils", ["save_torch_file", "tiled_scale_multidim", "tiled_scale", "load_torch_file"]),
        ("comfy.patcher_extension", ["CallbacksMP", "WrappersMP"]),
        ("comfy.model_base", ["ModelType", "BaseModel"]),
        ("comfy.diffusers_convert", ["load_diffusers"]),
        ("comfy.clip_vision", ["ClipVisionModel", "load"]),
        ("comfy.ldm.modules.attention", ["optimized_attention", "attention_pytorch", "wrap_attn"]),
        ("comfy.ldm.flux.math", ["apply_rope", "rope"]),
        ("comfy.ldm.modules.distributions.distributions", ["DiagonalGaussianDistribution"]),
        ("latent_preview", ["TAESD", "TAESDPreviewerImpl", "Latent2RGBPreviewer"]),
        ("execution", ["PromptExecutor", "ExecutionResult"]),
        ("aiohttp.web_request", ["Request"]),
    ],
)
def test_packs_find_what_they_import(module: str, names: list[str]) -> None:
    imported = importlib.import_module(module)
    missing = [name for name in names if not hasattr(imported, name)]
    assert not missing, f"{module} lacks {missing}"


@pytest.mark.parametrize("name", ["comfy_extras", "comfy_extras.nodes_mask", "comfy.lora", "execution"])
def test_comfyui_name_is_the_compat_module(name: str) -> None:
    assert importlib.import_module(name) is importlib.import_module(f"nodes.compat.{name}")


# ---- stand-ins name --comfyui --------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["LoraLoader", "CLIPTextEncode", "VAEEncode", "VAEDecode", "VAEDecodeTiled", "CheckpointLoaderSimple",
     "KSampler", "KSamplerAdvanced", "ControlNetApply", "ControlNetApplyAdvanced", "ControlNetLoader",
     "CLIPSetLastLayer", "UNETLoader", "SaveLatent"],
)
def test_core_node_standin_declares_like_comfyui_and_raises_naming_comfyui(name: str, fp: object) -> None:
    cls = standin(name)
    assert isinstance(cls, type) and cls.__name__ == name
    spec = cls.INPUT_TYPES()  # type: ignore[attr-defined]
    assert isinstance(spec["required"], dict)
    assert isinstance(cls.RETURN_TYPES, tuple) and isinstance(cls.CATEGORY, str)  # type: ignore[attr-defined]
    method = getattr(cls(), cls.FUNCTION)  # type: ignore[attr-defined]
    with pytest.raises(NeedsComfyUIError, match="--comfyui") as caught:
        method()
    assert str(caught.value) == f"{name} {COMFYUI_HINT}"


def test_standin_lists_model_files_at_input_types_time(fp: object) -> None:
    loras = Path(fp.models_dir) / "loras"  # type: ignore[attr-defined]
    loras.mkdir(parents=True, exist_ok=True)
    (loras / "style.safetensors").write_bytes(b"")
    spec = standin("LoraLoader").INPUT_TYPES()  # type: ignore[union-attr]
    assert spec["required"]["lora_name"][0] == ["style.safetensors"]
    assert spec["required"]["strength_model"][0] == "FLOAT"


def test_packs_subclass_core_standins() -> None:
    lora_loader = standin("LoraLoader")
    assert lora_loader is not None

    class LoraLoaderWithImages(lora_loader):  # type: ignore[misc, valid-type]
        RETURN_TYPES = (*lora_loader.RETURN_TYPES, "STRING")

    assert LoraLoaderWithImages.RETURN_TYPES == ("MODEL", "CLIP", "STRING")
    assert issubclass(standin("LoraLoaderModelOnly"), lora_loader)  # type: ignore[arg-type]
    with pytest.raises(NeedsComfyUIError):
        LoraLoaderWithImages().load_lora()


def test_standin_knows_only_comfyui_names() -> None:
    assert standin("NoSuchNode") is None
    with pytest.raises(NeedsComfyUIError, match="nodes.common_ksampler needs ComfyUI's model code"):
        standin("common_ksampler")(None, 0, 20, 8.0, "euler", "normal", [], [], {})  # type: ignore[misc]


@pytest.mark.parametrize(
    "call",
    [
        lambda: importlib.import_module("comfy.lora").load_lora({}, {}),
        lambda: importlib.import_module("comfy.controlnet").load_controlnet("x.safetensors"),
        lambda: importlib.import_module("comfy.sdxl_clip").SDXLClipModel(),
        lambda: importlib.import_module("comfy.sd").load_checkpoint_guess_config("x.safetensors"),
        lambda: importlib.import_module("comfy.k_diffusion.sampling").sample_euler(None, None, None),
        lambda: importlib.import_module("latent_preview").TAESD(),
        lambda: importlib.import_module("comfy_extras.nodes_upscale_model").ImageUpscaleWithModel.execute(None, None),
        lambda: importlib.import_module("comfy_extras.nodes_upscale_model").ImageUpscaleWithModel().upscale(None, None),
    ],
)
def test_model_code_raises_naming_comfyui(call: object) -> None:
    with pytest.raises(NeedsComfyUIError, match="start the farm with --comfyui"):
        call()  # type: ignore[operator]


def test_model_architectures_import_as_standins() -> None:
    from comfy.ldm.lumina.model import FeedForward  # type: ignore[import-not-found]
    from comfy.ldm.wan.model import sinusoidal_embedding_1d  # type: ignore[import-not-found]

    class Patched(FeedForward):  # type: ignore[misc]
        pass

    with pytest.raises(NeedsComfyUIError, match=r"comfy\.ldm\.lumina\.model\.FeedForward needs"):
        Patched()
    with pytest.raises(NeedsComfyUIError):
        sinusoidal_embedding_1d(8, torch.arange(3))
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("comfy.not_model_code")


# ---- model-free helpers run ----------------------------------------------------------------------


def test_tiled_scale_multidim_equals_the_function_on_the_whole_image() -> None:
    from comfy.utils import tiled_scale, tiled_scale_multidim

    def upscale(tile: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.interpolate(tile, scale_factor=2, mode="nearest")

    calls = []

    class Bar:
        def update(self, n: int) -> None:
            calls.append(n)

    image = torch.rand(2, 3, 40, 56)
    out = tiled_scale_multidim(image, upscale, tile=(16, 16), overlap=4, upscale_amount=2, out_channels=3,
                               pbar=Bar())
    assert out.shape == (2, 3, 80, 112)
    torch.testing.assert_close(out, upscale(image))
    assert len(calls) > 2  # tiled, one update per tile
    torch.testing.assert_close(tiled_scale(image, upscale, 16, 16, 4, 2), out)
    small = torch.rand(1, 3, 8, 8)  # fits one tile: the function runs once on all of it
    torch.testing.assert_close(tiled_scale_multidim(small, upscale, tile=(16, 16), upscale_amount=2), upscale(small))


def test_save_torch_file_round_trips_with_metadata(tmp_path: Path) -> None:
    from comfy.utils import load_torch_file, save_torch_file

    target = tmp_path / "lora.safetensors"
    state = {"a.weight": torch.arange(6, dtype=torch.float32).reshape(2, 3)}
    save_torch_file(state, str(target), metadata={"ss_network_dim": "4"})
    loaded, metadata = load_torch_file(str(target), return_metadata=True)
    torch.testing.assert_close(loaded["a.weight"], state["a.weight"])
    assert metadata == {"ss_network_dim": "4"}


def test_conditioning_nodes_run_here() -> None:
    a = [[torch.ones(1, 2, 4), {"pooled_output": torch.ones(1, 4)}]]
    b = [[torch.full((1, 3, 4), 2.0), {}]]
    (combined,) = standin("ConditioningCombine")().combine(a, b)  # type: ignore[misc]
    assert len(combined) == 2 and combined[1] is b[0]
    (zeroed,) = standin("ConditioningZeroOut")().zero_out(a)  # type: ignore[misc]
    assert zeroed[0][0].abs().sum() == 0 and zeroed[0][1]["pooled_output"].abs().sum() == 0
    assert a[0][0].sum() == 8  # the input is untouched
    (joined,) = standin("ConditioningConcat")().concat(a, b)  # type: ignore[misc]
    assert joined[0][0].shape == (1, 5, 4)
    (ranged,) = standin("ConditioningSetTimestepRange")().set_range(a, 0.2, 0.8)  # type: ignore[misc]
    assert (ranged[0][1]["start_percent"], ranged[0][1]["end_percent"]) == (0.2, 0.8)
    assert "start_percent" not in a[0][1]


def test_noise_composite_and_latent_batch_run_here() -> None:
    from comfy.sample import prepare_noise
    from comfy_extras.nodes_custom_sampler import Noise_EmptyNoise, Noise_RandomNoise
    from comfy_extras.nodes_latent import LatentBatch
    from comfy_extras.nodes_mask import composite

    latent = {"samples": torch.zeros(2, 4, 8, 8)}
    torch.testing.assert_close(Noise_RandomNoise(7).generate_noise(latent), prepare_noise(latent["samples"], 7))
    assert Noise_EmptyNoise().generate_noise(latent).abs().sum() == 0

    destination = torch.zeros(1, 3, 8, 8)
    composite(destination, torch.ones(1, 3, 2, 2), 4, 2, multiplier=1)
    assert destination[0, 0, 2:4, 4:6].sum() == 4 and destination.sum() == 12

    (batched,) = LatentBatch().batch(latent, {"samples": torch.ones(1, 4, 4, 4)})
    assert batched["samples"].shape == (3, 4, 8, 8) and batched["batch_index"] == [0, 1, 0]


def test_torch_helpers_run_here() -> None:
    import comfy.ops
    from comfy.k_diffusion.sampling import get_sigmas_karras, to_d
    from comfy.ldm.modules.attention import optimized_attention, wrap_attn
    from comfy.sampler_helpers import prepare_mask

    layer = comfy.ops.manual_cast.Linear(4, 2)
    torch.nn.init.ones_(layer.weight)
    torch.nn.init.zeros_(layer.bias)
    out = layer(torch.ones(1, 4, dtype=torch.float64))
    assert out.dtype == torch.float64 and out.tolist() == [[4.0, 4.0]]
    assert issubclass(comfy.ops.manual_cast.Conv2d, torch.nn.Conv2d)

    sigmas = get_sigmas_karras(5, 0.1, 10.0)
    assert sigmas.shape == (6,) and sigmas[0].item() == pytest.approx(10.0) and sigmas[-1] == 0
    x, denoised = torch.full((1, 2), 3.0), torch.ones(1, 2)
    torch.testing.assert_close(to_d(x, torch.tensor([2.0]), denoised), torch.ones(1, 2))

    q = torch.rand(1, 5, 8)
    expected = torch.softmax(q.view(1, 5, 2, 4).transpose(1, 2) @ q.view(1, 5, 2, 4).transpose(1, 2).transpose(-1, -2)
                             / 2.0, dim=-1) @ q.view(1, 5, 2, 4).transpose(1, 2)
    torch.testing.assert_close(optimized_attention(q, q, q, heads=2), expected.transpose(1, 2).reshape(1, 5, 8))
    assert wrap_attn(lambda v: v + 1)(1) == 2

    mask = prepare_mask(torch.ones(16, 16), (2, 4, 8, 8), "cpu")
    assert mask.shape == (2, 4, 8, 8)


def test_latent2rgb_previewer_makes_an_image() -> None:
    from latent_preview import Latent2RGBPreviewer

    previewer = Latent2RGBPreviewer([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    image = previewer.decode_latent_to_preview(torch.zeros(1, 4, 6, 10))
    assert image.size == (10, 6) and image.getpixel((0, 0)) == (127, 127, 127)
