"""ComfyUI's ``comfy_api.v0_0_1``: the same API as ``comfy_api.latest`` (re-exported)."""

from nodes.compat.comfy_api.latest import *  # noqa: F403
from nodes.compat.comfy_api.latest import __all__ as __all__
