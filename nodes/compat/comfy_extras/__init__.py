"""ComfyUI's ``comfy_extras`` package as custom node packs import it.

Only the modules and names packs import (``nodes_custom_sampler``, ``nodes_upscale_model``, ``nodes_mask``,
``nodes_latent``, ``nodes_clip_sdxl``, ...). Model-free helpers and nodes run here (noise, masks,
latent batches, sigma lists); the rest are stand-ins that name ``--comfyui`` when called. None of these
classes is registered as a node: ComfyUI's extra nodes come with ``--comfyui``.
"""
