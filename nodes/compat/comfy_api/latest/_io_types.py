"""V3 io types: ``io.Boolean``, ``io.Int``, ``io.Float``, ``io.String``, ``io.Combo``, ``io.Image``, ...

Widget types have their own ``Input`` signatures (``default``, ``min``, ``max``, ``options`` ...);
the others are plain sockets made with :func:`comfytype`.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from nodes.compat.comfy_api.latest._io_inputs import (
    ComfyTypeI,
    ComfyTypeIO,
    FolderType,
    NumberDisplay,
    RemoteOptions,
    UploadType,
    _Input,
    _Output,
    _StringIOType,
    _WidgetInput,
    comfytype,
    prune_dict,
)


@comfytype(io_type="BOOLEAN")
class Boolean(ComfyTypeIO):
    Type = bool

    class Input(_WidgetInput):
        def __init__(
            self,
            id: str,
            display_name: str | None = None,
            optional: bool = False,
            tooltip: str | None = None,
            lazy: bool | None = None,
            default: bool | None = None,
            label_on: str | None = None,
            label_off: str | None = None,
            socketless: bool | None = None,
            force_input: bool | None = None,
            extra_dict: dict[str, Any] | None = None,
            **kwargs: Any,
        ) -> None:
            super().__init__(id, display_name, optional, tooltip, lazy, default, socketless, None, force_input,
                             extra_dict, **kwargs)
            self.label_on = label_on
            self.label_off = label_off

        def as_dict(self) -> dict[str, Any]:
            return super().as_dict() | prune_dict({"label_on": self.label_on, "label_off": self.label_off})


@comfytype(io_type="INT")
class Int(ComfyTypeIO):
    Type = int

    class Input(_WidgetInput):
        def __init__(
            self,
            id: str,
            display_name: str | None = None,
            optional: bool = False,
            tooltip: str | None = None,
            lazy: bool | None = None,
            default: int | None = None,
            min: int | None = None,
            max: int | None = None,
            step: int | None = None,
            control_after_generate: bool | None = None,
            display_mode: NumberDisplay | None = None,
            socketless: bool | None = None,
            force_input: bool | None = None,
            extra_dict: dict[str, Any] | None = None,
            **kwargs: Any,
        ) -> None:
            super().__init__(id, display_name, optional, tooltip, lazy, default, socketless, None, force_input,
                             extra_dict, **kwargs)
            self.min = min
            self.max = max
            self.step = step
            self.control_after_generate = control_after_generate
            self.display_mode = display_mode

        def as_dict(self) -> dict[str, Any]:
            display = self.display_mode.value if isinstance(self.display_mode, Enum) else self.display_mode
            return super().as_dict() | prune_dict(
                {
                    "min": self.min,
                    "max": self.max,
                    "step": self.step,
                    "control_after_generate": self.control_after_generate,
                    "display": display,
                }
            )


@comfytype(io_type="FLOAT")
class Float(ComfyTypeIO):
    Type = float

    class Input(_WidgetInput):
        def __init__(
            self,
            id: str,
            display_name: str | None = None,
            optional: bool = False,
            tooltip: str | None = None,
            lazy: bool | None = None,
            default: float | None = None,
            min: float | None = None,
            max: float | None = None,
            step: float | None = None,
            round: float | None = None,
            display_mode: NumberDisplay | None = None,
            socketless: bool | None = None,
            force_input: bool | None = None,
            extra_dict: dict[str, Any] | None = None,
            **kwargs: Any,
        ) -> None:
            super().__init__(id, display_name, optional, tooltip, lazy, default, socketless, None, force_input,
                             extra_dict, **kwargs)
            self.min = min
            self.max = max
            self.step = step
            self.round = round
            self.display_mode = display_mode

        def as_dict(self) -> dict[str, Any]:
            display = self.display_mode.value if isinstance(self.display_mode, Enum) else self.display_mode
            return super().as_dict() | prune_dict(
                {"min": self.min, "max": self.max, "step": self.step, "round": self.round, "display": display}
            )


@comfytype(io_type="STRING")
class String(ComfyTypeIO):
    Type = str

    class Input(_WidgetInput):
        def __init__(
            self,
            id: str,
            display_name: str | None = None,
            optional: bool = False,
            tooltip: str | None = None,
            lazy: bool | None = None,
            multiline: bool = False,
            placeholder: str | None = None,
            default: str | None = None,
            dynamic_prompts: bool | None = None,
            socketless: bool | None = None,
            force_input: bool | None = None,
            extra_dict: dict[str, Any] | None = None,
            **kwargs: Any,
        ) -> None:
            super().__init__(id, display_name, optional, tooltip, lazy, default, socketless, None, force_input,
                             extra_dict, **kwargs)
            self.multiline = multiline
            self.placeholder = placeholder
            self.dynamic_prompts = dynamic_prompts

        def as_dict(self) -> dict[str, Any]:
            return super().as_dict() | prune_dict(
                {"multiline": self.multiline, "placeholder": self.placeholder, "dynamicPrompts": self.dynamic_prompts}
            )


@comfytype(io_type="COMBO")
class Combo(ComfyTypeIO):
    Type = str

    class Input(_WidgetInput):
        def __init__(
            self,
            id: str,
            options: list[Any] | type[Enum] | None = None,
            display_name: str | None = None,
            optional: bool = False,
            tooltip: str | None = None,
            lazy: bool | None = None,
            default: Any = None,
            control_after_generate: bool | None = None,
            upload: UploadType | None = None,
            image_folder: FolderType | None = None,
            remote: RemoteOptions | None = None,
            socketless: bool | None = None,
            extra_dict: dict[str, Any] | None = None,
            **kwargs: Any,
        ) -> None:
            if isinstance(options, type) and issubclass(options, Enum):
                options = [member.value for member in options]
            if isinstance(default, Enum):
                default = default.value
            super().__init__(id, display_name, optional, tooltip, lazy, default, socketless, None, None,
                             extra_dict, **kwargs)
            self.multiselect = False
            self.options = list(options) if options is not None else None
            self.control_after_generate = control_after_generate
            self.upload = upload
            self.image_folder = image_folder
            self.remote = remote

        def as_dict(self) -> dict[str, Any]:
            upload = {UploadType(self.upload).value: True} if self.upload is not None else {}
            folder = self.image_folder.value if isinstance(self.image_folder, Enum) else self.image_folder
            return super().as_dict() | prune_dict(
                {
                    "multiselect": self.multiselect,
                    "options": self.options,
                    "control_after_generate": self.control_after_generate,
                    **upload,
                    "image_folder": folder,
                    "remote": self.remote.as_dict() if self.remote is not None else None,
                }
            )

    class Output(_Output):
        def __init__(
            self,
            id: str | None = None,
            display_name: str | None = None,
            options: list[Any] | None = None,
            tooltip: str | None = None,
            is_output_list: bool = False,
        ) -> None:
            super().__init__(id, display_name, tooltip, is_output_list)
            self.options = list(options) if options is not None else []

        @property
        def io_type(self) -> Any:
            return self.options


@comfytype(io_type="COMBO")
class MultiCombo(ComfyTypeI):
    """A combo where several options may be selected."""

    Type = list

    class Input(Combo.Input):
        def __init__(
            self,
            id: str,
            options: list[Any],
            display_name: str | None = None,
            optional: bool = False,
            tooltip: str | None = None,
            lazy: bool | None = None,
            default: list[Any] | None = None,
            placeholder: str | None = None,
            chip: bool | None = None,
            control_after_generate: bool | None = None,
            socketless: bool | None = None,
            **kwargs: Any,
        ) -> None:
            super().__init__(id, options, display_name, optional, tooltip, lazy, default, control_after_generate,
                             socketless=socketless, **kwargs)
            self.multiselect = True
            self.placeholder = placeholder
            self.chip = chip

        def as_dict(self) -> dict[str, Any]:
            return super().as_dict() | prune_dict(
                {"multi_select": self.multiselect, "placeholder": self.placeholder, "chip": self.chip}
            )


def _simple_type(io_type: str, name: str) -> type[ComfyTypeIO]:
    created = type(name, (ComfyTypeIO,), {"__module__": __name__, "__qualname__": name})
    return comfytype(io_type=io_type)(created)


Image = _simple_type("IMAGE", "Image")
Mask = _simple_type("MASK", "Mask")
Latent = _simple_type("LATENT", "Latent")
Conditioning = _simple_type("CONDITIONING", "Conditioning")
Sampler = _simple_type("SAMPLER", "Sampler")
Sigmas = _simple_type("SIGMAS", "Sigmas")
Noise = _simple_type("NOISE", "Noise")
Guider = _simple_type("GUIDER", "Guider")
Clip = _simple_type("CLIP", "Clip")
ControlNet = _simple_type("CONTROL_NET", "ControlNet")
Vae = _simple_type("VAE", "Vae")
Model = _simple_type("MODEL", "Model")
ClipVision = _simple_type("CLIP_VISION", "ClipVision")
ClipVisionOutput = _simple_type("CLIP_VISION_OUTPUT", "ClipVisionOutput")
StyleModel = _simple_type("STYLE_MODEL", "StyleModel")
Gligen = _simple_type("GLIGEN", "Gligen")
UpscaleModel = _simple_type("UPSCALE_MODEL", "UpscaleModel")
Audio = _simple_type("AUDIO", "Audio")
Video = _simple_type("VIDEO", "Video")
SVG = _simple_type("SVG", "SVG")
LoraModel = _simple_type("LORA_MODEL", "LoraModel")
LossMap = _simple_type("LOSS_MAP", "LossMap")
Voxel = _simple_type("VOXEL", "Voxel")
Mesh = _simple_type("MESH", "Mesh")
Hooks = _simple_type("HOOKS", "Hooks")
HookKeyframes = _simple_type("HOOK_KEYFRAMES", "HookKeyframes")
TimestepsRange = _simple_type("TIMESTEPS_RANGE", "TimestepsRange")
LatentOperation = _simple_type("LATENT_OPERATION", "LatentOperation")
FlowControl = _simple_type("FLOW_CONTROL", "FlowControl")
Accumulation = _simple_type("ACCUMULATION", "Accumulation")
Point = _simple_type("POINT", "Point")
FaceAnalysis = _simple_type("FACE_ANALYSIS", "FaceAnalysis")
BBOX = _simple_type("BBOX", "BBOX")
SEGS = _simple_type("SEGS", "SEGS")
Webcam = _simple_type("WEBCAM", "Webcam")
WanCameraEmbedding = _simple_type("WAN_CAMERA_EMBEDDING", "WanCameraEmbedding")
AnyType = _simple_type("*", "AnyType")


class MultiType:
    """An input accepting several io types (its type is their comma union)."""

    class Input(_Input):
        def __init__(
            self,
            id: str | _Input,
            types: list[Any],
            display_name: str | None = None,
            optional: bool = False,
            tooltip: str | None = None,
            extra_dict: dict[str, Any] | None = None,
        ) -> None:
            self.input_override: _Input | None = None
            if isinstance(id, _Input):
                self.input_override = id
                super().__init__(id.id, id.display_name, id.optional, id.tooltip, id.lazy, id.extra_dict)
            else:
                super().__init__(id, display_name, optional, tooltip, None, extra_dict)
            self.io_types = list(types)

        def get_io_type(self) -> Any:
            names: list[str] = []
            if self.input_override is not None:
                names.append(str(self.input_override.get_io_type()))
            for io_cls in self.io_types:
                name = str(getattr(io_cls, "io_type", io_cls))
                if name not in names:
                    names.append(name)
            return _StringIOType(",".join(names))

        def as_dict(self) -> dict[str, Any]:
            return self.input_override.as_dict() if self.input_override is not None else super().as_dict()
