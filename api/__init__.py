"""nodefarm's API: ComfyUI-compatible HTTP routes, /ws and Socket.IO; the `nodefarm` command."""
