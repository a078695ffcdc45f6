"""ComfyUI's ``comfy.taesd`` (tiny autoencoders): model code, its modules are stand-ins."""
