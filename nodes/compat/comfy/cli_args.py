"""ComfyUI's ``comfy.cli_args``: the ``args`` namespace with ComfyUI's command-line defaults.

Nothing is parsed from ``sys.argv`` (a worker's command line is Celery's). Custom nodes read
``args.disable_metadata``, ``args.preview_size``, ... ; the boot function may set fields from the
farm's settings.
"""

from __future__ import annotations

import argparse
import enum


class LatentPreviewMethod(enum.StrEnum):
    NoPreviews = "none"
    Auto = "auto"
    Latent2RGB = "latent2rgb"
    TAESD = "taesd"

    @classmethod
    def from_string(cls, value: str) -> LatentPreviewMethod | None:
        for member in cls:
            if member.value == value:
                return member
        return None


class PerformanceFeature(enum.StrEnum):
    Fp16Accumulation = "fp16_accumulation"
    Fp8MatrixMultiplication = "fp8_matrix_mult"
    CublasOps = "cublas_ops"
    AutoTune = "autotune"


def _defaults() -> dict[str, object]:
    return {
        # server
        "listen": "127.0.0.1",
        "port": 8188,
        "tls_keyfile": None,
        "tls_certfile": None,
        "enable_cors_header": None,
        "max_upload_size": 100,
        "multi_user": False,
        "dont_print_server": False,
        "quick_test_for_ci": False,
        "windows_standalone_build": False,
        "auto_launch": False,
        "disable_auto_launch": False,
        "enable_compress_response_body": False,
        "front_end_version": "comfyanonymous/ComfyUI@latest",
        "front_end_root": None,
        "comfy_api_base": "https://api.comfy.org",
        "database_url": None,
        # folders
        "base_directory": None,
        "extra_model_paths_config": None,
        "output_directory": None,
        "temp_directory": None,
        "input_directory": None,
        "user_directory": None,
        # devices and precision
        "cpu": False,
        "cuda_device": None,
        "default_device": None,
        "cuda_malloc": False,
        "disable_cuda_malloc": False,
        "directml": None,
        "oneapi_device_selector": None,
        "disable_ipex_optimize": False,
        "supports_fp8_compute": False,
        "force_fp32": False,
        "force_fp16": False,
        "fp32_unet": False,
        "fp64_unet": False,
        "bf16_unet": False,
        "fp16_unet": False,
        "fp8_e4m3fn_unet": False,
        "fp8_e5m2_unet": False,
        "fp8_e8m0fnu_unet": False,
        "fp16_vae": False,
        "fp32_vae": False,
        "bf16_vae": False,
        "cpu_vae": False,
        "fp8_e4m3fn_text_enc": False,
        "fp8_e5m2_text_enc": False,
        "fp16_text_enc": False,
        "fp32_text_enc": False,
        "bf16_text_enc": False,
        "force_channels_last": False,
        "use_split_cross_attention": False,
        "use_quad_cross_attention": False,
        "use_pytorch_cross_attention": False,
        "use_sage_attention": False,
        "use_flash_attention": False,
        "disable_xformers": False,
        "force_upcast_attention": False,
        "dont_upcast_attention": False,
        # memory
        "gpu_only": False,
        "highvram": False,
        "normalvram": False,
        "lowvram": False,
        "novram": False,
        "reserve_vram": None,
        "async_offload": False,
        "disable_smart_memory": False,
        "deterministic": False,
        "fast": set(),
        "mmap_torch_files": False,
        "disable_mmap": False,
        # caching
        "cache_classic": False,
        "cache_lru": 0,
        "cache_none": False,
        # previews and metadata
        "preview_method": LatentPreviewMethod.NoPreviews,
        "preview_size": 512,
        "disable_metadata": False,
        "default_hashing_function": "sha256",
        # custom nodes
        "disable_all_custom_nodes": False,
        "whitelist_custom_nodes": [],
        "disable_api_nodes": False,
        # logging
        "verbose": "INFO",
        "log_stdout": False,
    }


args = argparse.Namespace(**_defaults())
