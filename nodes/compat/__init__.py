"""ComfyUI's importable modules (``server``, ``folder_paths``, ``comfy.*``, ``comfy_execution.*``,
``node_helpers``, ``comfy_api``, ``latent_preview``, ``protocol``) as custom nodes expect them.

They are written here from ComfyUI's documented behaviour (spec/comfyui.md section 7), never copied.
:func:`nodes.boot.install_compat` imports every module below this package once and registers it in
``sys.modules`` under its ComfyUI name too, so ``import folder_paths`` in a custom node and
``nodes.compat.folder_paths`` in our code are the same module object. Modules in this folder import
each other as ``nodes.compat.<name>`` (never by the bare ComfyUI name).
The globals ComfyUI forces on custom nodes (``PromptServer.instance``, folder_paths state, the
progress hook, the interrupt flag) live only here and are set by the boot function.
"""
