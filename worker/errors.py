"""Exceptions of the worker package: one root, NodefarmWorkerError. Control-flow signals live elsewhere."""

from __future__ import annotations


class NodefarmWorkerError(Exception):
    """Root of every error raised by the worker package."""


class NotSerializable(NodefarmWorkerError):
    """A node output cannot be written to the shared result store (kept in the worker's memory)."""


class ResultLost(NodefarmWorkerError):
    """An input's result is neither in this worker's memory nor in the result store."""

    def __init__(self, node_ids: list[str]) -> None:
        super().__init__(f"results of nodes {node_ids} are lost")
        self.node_ids = node_ids


class NodeExecutionError(NodefarmWorkerError):
    """A node raised; carries ComfyUI's execution_error fields."""

    def __init__(self, info: dict) -> None:
        super().__init__(info.get("exception_message", "node failed"))
        self.info = info
