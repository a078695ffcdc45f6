"""Exceptions of the nodes package: one root, NodefarmNodesError."""


class NodefarmNodesError(Exception):
    """Root of every error raised by the nodes package."""


class NodePackError(NodefarmNodesError):
    """A custom node pack could not be loaded (logged; the pack is skipped)."""


class PromptValidationError(NodefarmNodesError):
    """A prompt failed validation; carries ComfyUI's error and node_errors shapes."""

    def __init__(self, error: dict, node_errors: dict) -> None:
        super().__init__(error.get("message", "invalid prompt"))
        self.error = error
        self.node_errors = node_errors
