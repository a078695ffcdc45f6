"""ComfyUI's ``comfy.text_encoders``: model code, its modules are stand-ins."""
