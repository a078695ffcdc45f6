"""ComfyUI's ``comfy.ldm.modules.distributions``."""
