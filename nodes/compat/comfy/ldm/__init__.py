"""ComfyUI's ``comfy.ldm`` (model architectures): only the model-free building blocks packs import."""
