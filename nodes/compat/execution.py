"""ComfyUI's ``execution`` module, as far as packs reach for it at import time.

A farm runs prompts with its own executor (one Celery task per node), so ComfyUI's
:class:`PromptExecutor` here only exists to be referenced (``execution.PromptExecutor.handle_execution_error``
is read, and sometimes wrapped, by packs at import); patching it changes nothing on the farm and
running it raises. The enums and :func:`full_type_name` are real.
"""

from __future__ import annotations

import enum
from typing import Any

from nodes.compat.needs_comfyui import fail


class ExecutionResult(enum.Enum):
    SUCCESS = 0
    FAILURE = 1
    PENDING = 2


class CacheType(enum.Enum):
    CLASSIC = 0
    LRU = 1
    NONE = 2
    RAM_PRESSURE = 3


class DuplicateNodeError(Exception):
    pass


def full_type_name(klass: type) -> str:
    """``module.QualName`` of a class (just the name for builtins)."""
    module = klass.__module__
    return klass.__qualname__ if module == "builtins" else f"{module}.{klass.__qualname__}"


class PromptExecutor:
    """ComfyUI's in-process executor; the farm's executor replaces it (see module docstring)."""

    def __init__(self, server: Any, cache_type: Any = False, cache_size: Any = None) -> None:
        self.server = server
        self.cache_type = cache_type
        self.cache_size = cache_size
        self.reset()

    def reset(self) -> None:
        self.status_messages: list[Any] = []
        self.success = True

    def add_message(self, event: str, data: dict[str, Any], broadcast: bool) -> None:
        self.status_messages.append((event, data))
        self.server.send_sync(event, data, None if broadcast else getattr(self.server, "client_id", None))

    def handle_execution_error(self, prompt_id: str, prompt: Any, current_outputs: Any, executed: Any,
                               error: dict[str, Any], ex: BaseException) -> None:
        self.add_message("execution_error", {"prompt_id": prompt_id, **error}, broadcast=False)

    def execute(self, prompt: Any, prompt_id: Any, extra_data: Any = None, execute_outputs: Any = None) -> None:
        fail("execution.PromptExecutor.execute (ComfyUI's in-process executor)")

    async def execute_async(self, *args: Any, **kwargs: Any) -> None:
        self.execute(*args, **kwargs)


class PromptQueue:
    """ComfyUI's in-process queue; the farm's queue lives in Redis (``PromptServer.instance.prompt_queue``)."""

    def __init__(self, server: Any) -> None:
        self.server = server

    def get_tasks_remaining(self) -> int:
        return 0

    def get_current_queue(self) -> tuple[list[Any], list[Any]]:
        return [], []

    def get_history(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return {}
