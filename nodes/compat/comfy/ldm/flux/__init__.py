"""ComfyUI's ``comfy.ldm.flux``."""
