"""ComfyUI's ``comfy.comfy_types``: ``IO`` and typing helpers for node classes."""

from nodes.compat.comfy.comfy_types.node_typing import *  # noqa: F403
from nodes.compat.comfy.comfy_types.node_typing import __all__ as __all__
