"""ComfyUI's ``comfy_api.latest``: ``io``, ``ui``, ``ComfyExtension``, ``ComfyAPI`` (spec §6.3, §5.11).

``ComfyAPI().execution.set_progress(...)`` (async) and ``ComfyAPISync().execution.set_progress(...)``
(sync; broken upstream in 0.3.64, working here) report progress through ``comfy.utils.ProgressBar``,
i.e. through the farm's global progress hook, for the executing node unless ``node_id`` is given.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from nodes.compat.comfy_api.latest import _io as io
from nodes.compat.comfy_api.latest import _ui as ui

IO = io
UI = ui


def _preview_tuple(preview_image: Any, ignore_size_limit: bool) -> Any:
    """A PIL image or an IMAGE tensor as the ``("JPEG"|"PNG", PIL image, max size)`` preview tuple."""
    if preview_image is None or isinstance(preview_image, tuple):
        return preview_image
    from PIL import Image

    from nodes.compat.comfy.cli_args import args

    if not isinstance(preview_image, Image.Image):
        import numpy as np

        tensor = preview_image[0] if len(preview_image.shape) == 4 else preview_image
        array = np.clip(255.0 * tensor.cpu().numpy(), 0, 255).astype(np.uint8)
        preview_image = Image.fromarray(array)
    image_format = preview_image.format if preview_image.format in ("JPEG", "PNG") else "JPEG"
    return (image_format, preview_image, None if ignore_size_limit else args.preview_size)


def _set_progress(
    value: float, max_value: float, node_id: str | None, preview_image: Any, ignore_size_limit: bool
) -> None:
    from nodes.compat.comfy import utils as comfy_utils
    from nodes.compat.comfy_execution.utils import get_executing_context

    if node_id is None:
        context = get_executing_context()
        if context is None:
            raise ValueError("node_id must be provided if not in executing context")
        node_id = context.node_id
    bar = comfy_utils.ProgressBar(max_value, node_id=node_id)  # type: ignore[arg-type]
    bar.update_absolute(value, max_value, _preview_tuple(preview_image, ignore_size_limit))  # type: ignore[arg-type]


class _Execution:
    async def set_progress(
        self,
        value: float,
        max_value: float,
        node_id: str | None = None,
        preview_image: Any = None,
        ignore_size_limit: bool = False,
    ) -> None:
        """Update the node's progress bar (and preview) in the UI."""
        _set_progress(value, max_value, node_id, preview_image, ignore_size_limit)


class _ExecutionSync:
    def set_progress(
        self,
        value: float,
        max_value: float,
        node_id: str | None = None,
        preview_image: Any = None,
        ignore_size_limit: bool = False,
    ) -> None:
        """Update the node's progress bar (and preview) in the UI."""
        _set_progress(value, max_value, node_id, preview_image, ignore_size_limit)


class ComfyAPI:
    VERSION: ClassVar[str] = "latest"
    STABLE: ClassVar[bool] = False
    Execution = _Execution
    execution: ClassVar[_Execution] = _Execution()


class ComfyAPISync:
    VERSION: ClassVar[str] = "latest"
    STABLE: ClassVar[bool] = False
    Execution = _ExecutionSync
    execution: ClassVar[_ExecutionSync] = _ExecutionSync()


ComfyAPI_latest = ComfyAPI


class ComfyExtension(ABC):
    """What a V3 pack's ``comfy_entrypoint()`` returns."""

    async def on_load(self) -> None:  # noqa: B027 - optional hook, empty by default
        """Called once when the extension is loaded."""

    @abstractmethod
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        """The node classes this extension provides."""


class Input:
    """Value types nodes receive (``Input.Image`` is a tensor, ...)."""

    Image: ClassVar[Any] = Any
    Mask: ClassVar[Any] = Any
    Latent: ClassVar[Any] = dict
    Audio: ClassVar[Any] = dict
    Video: ClassVar[Any] = Any


class InputImpl:
    """Concrete input implementations (video decoding is not provided by nodefarm)."""


class Types:
    """Helper value types (video codecs and containers are not provided by nodefarm)."""


__all__ = [
    "IO",
    "UI",
    "ComfyAPI",
    "ComfyAPISync",
    "ComfyAPI_latest",
    "ComfyExtension",
    "Input",
    "InputImpl",
    "Types",
    "io",
    "ui",
]
