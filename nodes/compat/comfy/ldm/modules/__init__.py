"""ComfyUI's ``comfy.ldm.modules``."""
