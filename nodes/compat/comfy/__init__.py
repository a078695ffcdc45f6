"""ComfyUI's ``comfy`` package as custom nodes import it (``comfy.model_management``, ``comfy.utils``, ...).

Each submodule is registered in ``sys.modules`` under its ComfyUI name by
:func:`nodes.boot.install_compat`; our code imports them as ``nodes.compat.comfy.<name>``.
"""
