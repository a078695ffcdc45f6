"""ComfyUI's ``comfy.latent_formats``: what a model family's latents look like (channels, scaling).

``process_in`` maps a VAE latent into the model's space (``(x - shift) * scale_factor``) and
``process_out`` back. The scale and shift figures are the families' published VAE constants.
"""

from __future__ import annotations

from typing import Any


class LatentFormat:
    scale_factor = 1.0
    shift_factor = 0.0
    latent_channels = 4
    latent_dimensions = 2
    latent_rgb_factors: list[list[float]] | None = None
    latent_rgb_factors_bias: list[float] | None = None
    taesd_decoder_name: str | None = None

    def process_in(self, latent: Any) -> Any:
        return (latent - self.shift_factor) * self.scale_factor

    def process_out(self, latent: Any) -> Any:
        return latent / self.scale_factor + self.shift_factor


class SD15(LatentFormat):
    scale_factor = 0.18215
    taesd_decoder_name = "taesd_decoder"


class SDXL(LatentFormat):
    scale_factor = 0.13025
    taesd_decoder_name = "taesdxl_decoder"


class SDXL_Playground_2_5(LatentFormat):
    scale_factor = 0.5


class SD_X4(LatentFormat):
    scale_factor = 0.08333


class SC_Prior(LatentFormat):
    latent_channels = 16


class SC_B(LatentFormat):
    scale_factor = 1.0 / 0.43


class SD3(LatentFormat):
    scale_factor = 1.5305
    shift_factor = 0.0609
    latent_channels = 16
    taesd_decoder_name = "taesd3_decoder"


class Flux(SD3):
    scale_factor = 0.3611
    shift_factor = 0.1159
    taesd_decoder_name = "taef1_decoder"


class StableAudio1(LatentFormat):
    latent_channels = 64
    latent_dimensions = 1


class Mochi(LatentFormat):
    latent_channels = 12
    latent_dimensions = 3


class LTXV(LatentFormat):
    latent_channels = 128
    latent_dimensions = 3


class HunyuanVideo(LatentFormat):
    scale_factor = 0.476986
    latent_channels = 16
    latent_dimensions = 3


class Cosmos1CV8x8x8(LatentFormat):
    latent_channels = 16
    latent_dimensions = 3


class Wan21(LatentFormat):
    latent_channels = 16
    latent_dimensions = 3


class Wan22(Wan21):
    latent_channels = 48
