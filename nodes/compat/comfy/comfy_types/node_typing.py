"""ComfyUI's ``comfy.comfy_types.node_typing``: type names and typing helpers for V1 node classes.

``IO`` members compare with a wildcard-aware ``!=`` (spec §3): ``IO.ANY`` ("*") is "not different"
from every type, and a comma union is "not different" from a type whose set of parts is a subset
or superset of its own (``IO.NUMBER != "INT"`` is False). Plain ``==`` is ordinary string equality.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from enum import StrEnum
from typing import Any, Literal, NotRequired, TypedDict

from nodes.compat.comfy_execution.validation import wildcard_ne

__all__ = [
    "IO",
    "CheckLazyMixin",
    "ComfyNodeABC",
    "FileLocator",
    "HiddenInputTypeDict",
    "InputTypeDict",
    "InputTypeOptions",
    "RemoteInputOptions",
]


class IO(StrEnum):
    """Node input/output data types, as used in ``INPUT_TYPES`` and ``RETURN_TYPES``."""

    STRING = "STRING"
    IMAGE = "IMAGE"
    MASK = "MASK"
    LATENT = "LATENT"
    BOOLEAN = "BOOLEAN"
    INT = "INT"
    FLOAT = "FLOAT"
    COMBO = "COMBO"
    CONDITIONING = "CONDITIONING"
    SAMPLER = "SAMPLER"
    SIGMAS = "SIGMAS"
    GUIDER = "GUIDER"
    NOISE = "NOISE"
    CLIP = "CLIP"
    CONTROL_NET = "CONTROL_NET"
    VAE = "VAE"
    MODEL = "MODEL"
    LORA_MODEL = "LORA_MODEL"
    LOSS_MAP = "LOSS_MAP"
    CLIP_VISION = "CLIP_VISION"
    CLIP_VISION_OUTPUT = "CLIP_VISION_OUTPUT"
    STYLE_MODEL = "STYLE_MODEL"
    GLIGEN = "GLIGEN"
    UPSCALE_MODEL = "UPSCALE_MODEL"
    AUDIO = "AUDIO"
    WEBCAM = "WEBCAM"
    POINT = "POINT"
    FACE_ANALYSIS = "FACE_ANALYSIS"
    BBOX = "BBOX"
    SEGS = "SEGS"
    VIDEO = "VIDEO"
    SVG = "SVG"
    HOOKS = "HOOKS"
    HOOK_KEYFRAMES = "HOOK_KEYFRAMES"
    TIMESTEPS_RANGE = "TIMESTEPS_RANGE"
    LATENT_OPERATION = "LATENT_OPERATION"
    MESH = "MESH"
    VOXEL = "VOXEL"
    FLOW_CONTROL = "FLOW_CONTROL"
    ACCUMULATION = "ACCUMULATION"

    ANY = "*"
    """Matches every type (through ``__ne__``)."""
    NUMBER = "FLOAT,INT"
    """A FLOAT or an INT."""
    PRIMITIVE = "STRING,FLOAT,INT,BOOLEAN"
    """A STRING, FLOAT, INT or BOOLEAN."""

    def __ne__(self, value: object) -> bool:
        return wildcard_ne(self, value)

    __hash__ = StrEnum.__hash__


class RemoteInputOptions(TypedDict, total=False):
    route: str
    refresh_button: bool
    control_after_refresh: Literal["first", "last"]
    timeout: int
    max_retries: int
    refresh: int


class MultiSelectOptions(TypedDict, total=False):
    placeholder: str
    chip: bool


class InputTypeOptions(TypedDict, total=False):
    """The options dict of one input (second element of its ``INPUT_TYPES`` entry)."""

    default: Any
    defaultInput: bool
    forceInput: bool
    lazy: bool
    rawLink: bool
    tooltip: str
    socketless: bool
    widgetType: str
    min: float
    max: float
    step: float
    round: float | Literal[False]
    display: Literal["number", "slider", "color"]
    label_on: str
    label_off: str
    multiline: bool
    placeholder: str
    dynamicPrompts: bool
    image_upload: bool
    image_folder: Literal["input", "output", "temp"]
    remote: RemoteInputOptions
    control_after_generate: bool
    options: list[Any]
    multi_select: MultiSelectOptions


class HiddenInputTypeDict(TypedDict, total=False):
    node_id: Literal["UNIQUE_ID"]
    unique_id: Literal["UNIQUE_ID"]
    prompt: Literal["PROMPT"]
    extra_pnginfo: Literal["EXTRA_PNGINFO"]
    dynprompt: Literal["DYNPROMPT"]
    auth_token_comfy_org: Literal["AUTH_TOKEN_COMFY_ORG"]
    api_key_comfy_org: Literal["API_KEY_COMFY_ORG"]


class InputTypeDict(TypedDict):
    """The return value of ``INPUT_TYPES()``."""

    required: NotRequired[dict[str, tuple[Any, InputTypeOptions] | tuple[Any]]]
    optional: NotRequired[dict[str, tuple[Any, InputTypeOptions] | tuple[Any]]]
    hidden: NotRequired[HiddenInputTypeDict]


class FileLocator(TypedDict):
    """Where a saved file lives, as in a ``ui`` ``images`` entry."""

    filename: str
    subfolder: str
    type: Literal["input", "output", "temp"]


class ComfyNodeABC(ABC):
    """Optional base class for V1 nodes: documents the class attributes ComfyUI reads.

    Only ``INPUT_TYPES`` is required; the other names are annotations, not attributes, so that
    ``/object_info`` rules like "``api_node`` only if ``API_NODE`` exists" keep working.
    """

    DESCRIPTION: str
    CATEGORY: str
    EXPERIMENTAL: bool
    DEPRECATED: bool
    API_NODE: bool
    RETURN_TYPES: tuple[Any, ...]
    RETURN_NAMES: tuple[str, ...]
    OUTPUT_TOOLTIPS: tuple[str, ...]
    OUTPUT_IS_LIST: tuple[bool, ...]
    INPUT_IS_LIST: bool
    OUTPUT_NODE: bool
    FUNCTION: str
    NOT_IDEMPOTENT: bool

    @classmethod
    @abstractmethod
    def INPUT_TYPES(cls) -> InputTypeDict:
        """The node's inputs: ``{"required": {...}, "optional": {...}, "hidden": {...}}``."""


class CheckLazyMixin:
    """Default ``check_lazy_status``: ask for every input that has not been evaluated yet (is None)."""

    def check_lazy_status(self, **kwargs: Any) -> list[str]:
        return [name for name, value in kwargs.items() if value is None]
