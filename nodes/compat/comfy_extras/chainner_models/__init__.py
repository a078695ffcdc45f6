"""ComfyUI's old ``comfy_extras.chainner_models`` package (upscale model architectures)."""
