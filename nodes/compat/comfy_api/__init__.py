"""ComfyUI's ``comfy_api`` package: the versioned public API for custom nodes.

``comfy_api.latest`` is the implementation; ``comfy_api.v0_0_1`` and ``comfy_api.v0_0_2`` re-export it.
"""
