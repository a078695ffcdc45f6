"""V3 io building blocks: ``Input``, ``WidgetInput``, ``Output``, io type bases and ``comfytype``.

Every io type (``io.Int``, ``io.Image``, ``io.Custom("X")``) is a class with an ``io_type`` name and
its own nested ``Input``/``Output`` classes whose ``Parent`` is that type. Type names are
:class:`_StringIOType`, whose ``!=`` is wildcard-aware, so ``"*"`` and comma unions behave as in
ComfyUI's validation (spec §3).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any, ClassVar, Literal, TypeVar

from nodes.compat.comfy_execution.validation import wildcard_ne

T = TypeVar("T", bound=type)


def prune_dict(d: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in d.items() if value is not None}


class FolderType(StrEnum):
    input = "input"
    output = "output"
    temp = "temp"


class UploadType(StrEnum):
    image = "image_upload"
    audio = "audio_upload"
    video = "video_upload"
    model = "file_upload"


class NumberDisplay(StrEnum):
    number = "number"
    slider = "slider"


class RemoteOptions:
    def __init__(
        self,
        route: str,
        refresh_button: bool,
        control_after_refresh: Literal["first", "last"] = "first",
        timeout: int | None = None,
        max_retries: int | None = None,
        refresh: int | None = None,
    ) -> None:
        self.route = route
        self.refresh_button = refresh_button
        self.control_after_refresh = control_after_refresh
        self.timeout = timeout
        self.max_retries = max_retries
        self.refresh = refresh

    def as_dict(self) -> dict[str, Any]:
        return prune_dict(
            {
                "route": self.route,
                "refresh_button": self.refresh_button,
                "control_after_refresh": self.control_after_refresh,
                "timeout": self.timeout,
                "max_retries": self.max_retries,
                "refresh": self.refresh,
            }
        )


class _StringIOType(str):
    """A type name whose ``!=`` is wildcard-aware (``"*"`` matches all; comma unions by subset)."""

    def __ne__(self, value: object) -> bool:
        return wildcard_ne(self, value)

    __hash__ = str.__hash__


# ---- inputs and outputs --------------------------------------------------------------------------


class _IOBase:
    Parent: ClassVar[type[_ComfyType] | None] = None

    @property
    def io_type(self) -> Any:
        return self.Parent.io_type if self.Parent is not None else _StringIOType("*")


class Input(_IOBase):
    """Base of every V3 input."""

    def __init__(
        self,
        id: str,
        display_name: str | None = None,
        optional: bool = False,
        tooltip: str | None = None,
        lazy: bool | None = None,
        extra_dict: dict[str, Any] | None = None,
        *,
        raw_link: bool | None = None,
        advanced: bool | None = None,
    ) -> None:
        self.id = id
        self.display_name = display_name
        self.optional = optional
        self.tooltip = tooltip
        self.lazy = lazy
        self.extra_dict = dict(extra_dict) if extra_dict else {}
        self.raw_link = raw_link
        self.advanced = advanced

    def as_dict(self) -> dict[str, Any]:
        return prune_dict(
            {
                "display_name": self.display_name,
                "optional": self.optional,
                "tooltip": self.tooltip,
                "lazy": self.lazy,
                "rawLink": self.raw_link,
                "advanced": self.advanced,
            }
        ) | prune_dict(self.extra_dict)

    def get_io_type(self) -> Any:
        io_type = self.io_type
        return _StringIOType(io_type) if isinstance(io_type, str) else io_type


class WidgetInput(Input):
    """Base of inputs that have a widget (a value typed in the node)."""

    def __init__(
        self,
        id: str,
        display_name: str | None = None,
        optional: bool = False,
        tooltip: str | None = None,
        lazy: bool | None = None,
        default: Any = None,
        socketless: bool | None = None,
        widget_type: str | None = None,
        force_input: bool | None = None,
        extra_dict: dict[str, Any] | None = None,
        *,
        raw_link: bool | None = None,
        advanced: bool | None = None,
    ) -> None:
        super().__init__(id, display_name, optional, tooltip, lazy, extra_dict, raw_link=raw_link, advanced=advanced)
        self.default = default
        self.socketless = socketless
        self.widget_type = widget_type
        self.force_input = force_input

    def as_dict(self) -> dict[str, Any]:
        return super().as_dict() | prune_dict(
            {
                "default": self.default,
                "socketless": self.socketless,
                "widgetType": self.widget_type,
                "forceInput": self.force_input,
            }
        )

    def get_io_type(self) -> Any:
        return _StringIOType(self.widget_type) if self.widget_type is not None else super().get_io_type()


class Output(_IOBase):
    """Base of every V3 output."""

    def __init__(
        self,
        id: str | None = None,
        display_name: str | None = None,
        tooltip: str | None = None,
        is_output_list: bool = False,
    ) -> None:
        self.id = id
        self.display_name = display_name
        self.tooltip = tooltip
        self.is_output_list = is_output_list

    def as_dict(self) -> dict[str, Any]:
        return prune_dict(
            {"display_name": self.display_name, "tooltip": self.tooltip, "is_output_list": self.is_output_list}
        )

    def get_io_type(self) -> Any:
        io_type = self.io_type
        return _StringIOType(io_type) if isinstance(io_type, str) else io_type


_Input = Input
_WidgetInput = WidgetInput
_Output = Output


# ---- io types ------------------------------------------------------------------------------------


class _ComfyType:
    Type: ClassVar[Any] = Any
    io_type: ClassVar[Any] = _StringIOType("*")


class ComfyTypeI(_ComfyType):
    """An io type with only an input side."""

    Input: ClassVar[type[_Input]] = _Input


class ComfyTypeIO(ComfyTypeI):
    """An io type with an input and an output side."""

    Output: ClassVar[type[_Output]] = _Output


def _bind_nested(cls: type, attr: str) -> None:
    nested = getattr(cls, attr, None)
    if nested is None:
        return
    if attr in cls.__dict__ and "Parent" not in nested.__dict__:
        nested.Parent = cls
        return
    bound = type(attr, (nested,), {"Parent": cls, "__module__": cls.__module__,
                                   "__qualname__": f"{cls.__qualname__}.{attr}"})
    setattr(cls, attr, bound)


def comfytype(io_type: str, **kwargs: Any) -> Callable[[T], T]:
    """Class decorator making ``cls`` an io type named ``io_type`` with its own ``Input``/``Output``."""

    def decorate(cls: T) -> T:
        target: Any = cls
        if not issubclass(cls, _ComfyType):
            namespace = {k: v for k, v in cls.__dict__.items() if k not in ("__dict__", "__weakref__")}
            target = type(cls.__name__, (cls, ComfyTypeIO), namespace)
        target.io_type = _StringIOType(io_type)
        _bind_nested(target, "Input")
        _bind_nested(target, "Output")
        return target  # type: ignore[no-any-return]

    return decorate


def Custom(io_type: str) -> type[ComfyTypeIO]:
    """An io type for a custom type name (``io.Custom("MY_TYPE").Input("x")``)."""

    @comfytype(io_type=io_type)
    class CustomComfyType(ComfyTypeIO):
        pass

    return CustomComfyType
