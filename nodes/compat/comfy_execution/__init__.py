"""ComfyUI's ``comfy_execution`` package: graph building, the dynamic prompt, the executing context.

Submodules are registered under their ComfyUI names (``comfy_execution.graph_utils``, ...) by
:func:`nodes.boot.install_compat`.
"""
