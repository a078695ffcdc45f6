"""V3 node API (``from comfy_api.latest import io``), spec §6.3, written from its documented behaviour.

A V3 node is a subclass of :class:`ComfyNode` whose classmethods ``define_schema`` and ``execute``
describe and run it. So that our validator and executor need only know V1 classes, every
``ComfyNode`` subclass also *looks like* a V1 class; the V1 attributes are computed from its schema
on access:

* ``INPUT_TYPES()`` (V1 form: ``(type, options)`` entries, options always present, combos as
  ``("COMBO", {"options": [...]})``, hidden inputs as bare strings ``{"unique_id": "UNIQUE_ID"}``),
  ``RETURN_TYPES``, ``RETURN_NAMES``, ``OUTPUT_IS_LIST``, ``OUTPUT_TOOLTIPS``, ``INPUT_IS_LIST``,
  ``OUTPUT_NODE``, ``CATEGORY``, ``DESCRIPTION``, ``NOT_IDEMPOTENT``, ``DEPRECATED``,
  ``EXPERIMENTAL``, ``API_NODE``;
* ``FUNCTION = "EXECUTE_NORMALIZED"``: calls ``execute`` and returns V1 shapes (a tuple, a dict with
  ``ui``/``result``/``expand``, or an :class:`ExecutionBlocker`). It is ``async`` exactly when
  ``execute`` is;
* ``VALIDATE_INPUTS`` / ``IS_CHANGED`` / ``check_lazy_status`` exist only when the node overrides
  ``validate_inputs`` / ``fingerprint_inputs`` / ``check_lazy_status`` (they keep its signature);
* ``GET_SCHEMA()`` and ``GET_NODE_INFO_V1()`` (the ``/object_info`` entry, V3 rules of spec §3).

Hidden inputs arrive as keyword arguments named after :class:`Hidden` members (``unique_id``,
``prompt``, ...; ``__hidden_<name>`` where an input already has that name). The wrappers remove them
and call the node on a per-call subclass clone whose ``cls.hidden`` (:class:`HiddenHolder`) holds them.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import types
from collections.abc import Callable
from typing import Any, ClassVar

from nodes.compat.comfy_api.latest._io_inputs import (
    ComfyTypeI,
    ComfyTypeIO,
    Custom,
    FolderType,
    Input,
    NumberDisplay,
    Output,
    RemoteOptions,
    UploadType,
    WidgetInput,
    comfytype,
    prune_dict,
)
from nodes.compat.comfy_api.latest._io_schema import (
    Hidden,
    HiddenHolder,
    NodeOutput,
    Schema,
    _hidden_key,
    _type_name,
)
from nodes.compat.comfy_api.latest._io_types import (
    BBOX,
    SEGS,
    SVG,
    AnyType,
    Audio,
    Boolean,
    Clip,
    ClipVision,
    ClipVisionOutput,
    Combo,
    Conditioning,
    ControlNet,
    FaceAnalysis,
    Float,
    FlowControl,
    Gligen,
    Guider,
    HookKeyframes,
    Hooks,
    Image,
    Int,
    Latent,
    LatentOperation,
    LoraModel,
    LossMap,
    Mask,
    Mesh,
    Model,
    MultiCombo,
    MultiType,
    Noise,
    Point,
    Sampler,
    Sigmas,
    String,
    StyleModel,
    TimestepsRange,
    UpscaleModel,
    Vae,
    Video,
    Voxel,
    WanCameraEmbedding,
    Webcam,
)
from nodes.compat.comfy_execution.graph_utils import ExecutionBlocker, GraphBuilder

# ---- the node base class ---------------------------------------------------------------------------


def _origin(cls: type) -> type:
    """The node class a per-call clone was made from (the class itself otherwise)."""
    return cls.__dict__.get("_nodefarm_clone_of", cls)  # type: ignore[no-any-return]


def _overrides(cls: type, name: str) -> bool:
    """True when a class below :class:`ComfyNode` in ``cls``'s MRO defines ``name``."""
    for klass in cls.__mro__:
        if klass is ComfyNode:
            return False
        if name in klass.__dict__:
            return True
    return False


def _schema_of(cls: type) -> Schema:
    origin = _origin(cls)
    cached = origin.__dict__.get("_nodefarm_schema")
    if cached is None:
        cached = origin.GET_SCHEMA()  # type: ignore[attr-defined]
    return cached  # type: ignore[no-any-return]


def _prepare_call(cls: type, kwargs: dict[str, Any]) -> tuple[type, dict[str, Any]]:
    """Split hidden values out of ``kwargs``; return (clone with ``cls.hidden`` set, remaining kwargs)."""
    origin = _origin(cls)
    ids = _schema_of(origin).input_ids
    rest = dict(kwargs)
    hidden: dict[Hidden, Any] = {}
    for member in Hidden:
        key = _hidden_key(ids, member)
        if key in rest:
            hidden[member] = rest.pop(key)
    if not hidden and origin is not cls:
        return cls, rest
    return origin.PREPARE_CLASS_CLONE(hidden), rest  # type: ignore[attr-defined]


def _ui_dict(ui: Any) -> Any:
    as_dict = getattr(ui, "as_dict", None)
    return as_dict() if callable(as_dict) else ui


def _expand_dict(expand: Any) -> Any:
    return expand.finalize() if isinstance(expand, GraphBuilder) else expand


def normalize_output(result: Any) -> Any:
    """A V3 return (NodeOutput, tuple, dict, None, ExecutionBlocker, value) in V1 form."""
    if isinstance(result, NodeOutput):
        if result.block_execution is not None:
            return ExecutionBlocker(result.block_execution)
        values = tuple(result.args)
        if result.ui is None and result.expand is None:
            return values
        normalized: dict[str, Any] = {"result": values}
        if result.ui is not None:
            normalized["ui"] = _ui_dict(result.ui)
        if result.expand is not None:
            normalized["expand"] = _expand_dict(result.expand)
        return normalized
    if result is None:
        return ()
    if isinstance(result, ExecutionBlocker | tuple):
        return result
    if isinstance(result, dict):
        normalized = dict(result)
        if "ui" in normalized and normalized["ui"] is not None:
            normalized["ui"] = _ui_dict(normalized["ui"])
        if "expand" in normalized and normalized["expand"] is not None:
            normalized["expand"] = _expand_dict(normalized["expand"])
        if "result" in normalized and isinstance(normalized["result"], list):
            normalized["result"] = tuple(normalized["result"])
        return normalized
    if isinstance(result, list):
        return tuple(result)
    return (result,)


async def _await_normalized(awaitable: Any) -> Any:
    return normalize_output(await awaitable)


class _SchemaAttr:
    """A V1 class attribute computed from the schema on access (missing -> AttributeError)."""

    def __init__(self, compute: Callable[[type], Any]) -> None:
        self.compute = compute
        self.name = compute.__name__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if owner is None:
            owner = type(obj)
        return self.compute(owner)


class _OverrideOnly:
    """A base-class default that is visible only to classes overriding it (so ``super()`` works),
    and invisible (``hasattr`` False) to the others: ComfyUI ignores the base default."""

    def __init__(self, func: Callable[..., Any]) -> None:
        self.func = func
        self.name = func.__name__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if owner is None:
            owner = type(obj)
        if not _overrides(owner, self.name):
            raise AttributeError(self.name)
        return types.MethodType(self.func, owner)


def _hidden_aware(owner: type, name: str, v1_name: str) -> Callable[..., Any]:
    """A function with the signature of ``owner.<name>`` that routes hidden kwargs to ``cls.hidden``."""
    bound = getattr(owner, name)

    def call(*args: Any, **kwargs: Any) -> Any:
        target, rest = _prepare_call(owner, kwargs)
        return getattr(target, name)(*args, **rest)

    call.__name__ = v1_name
    call.__qualname__ = f"{owner.__qualname__}.{v1_name}"
    try:
        call.__signature__ = inspect.signature(bound)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        pass
    return call


def _wrap_classmethod(raw: Any) -> Any:
    """Wrap a node's own ``check_lazy_status`` so hidden kwargs land in ``cls.hidden``."""
    is_static = isinstance(raw, staticmethod)
    func = raw.__func__ if isinstance(raw, classmethod | staticmethod) else raw

    @functools.wraps(func)
    def wrapper(klass: type, *args: Any, **kwargs: Any) -> Any:
        if not isinstance(klass, type):
            klass = type(klass)
        target, rest = _prepare_call(klass, kwargs)
        if is_static:
            return func(*args, **rest)
        return func(target, *args, **rest)

    wrapper._nodefarm_wrapped = True  # type: ignore[attr-defined]
    return classmethod(wrapper)


def _default_check_lazy_status(cls: type, **kwargs: Any) -> list[str]:
    """V3 base default (reachable through ``super()``): ask for every input still None."""
    return [name for name, value in kwargs.items() if value is None]


def _override_wrapper(cls: type, name: str, v1_name: str) -> Callable[..., Any]:
    """``VALIDATE_INPUTS``/``IS_CHANGED``: present only when the node overrides ``name``."""
    if not _overrides(cls, name):
        raise AttributeError(v1_name)
    return _hidden_aware(cls, name, v1_name)


def _execute_normalized(owner: type) -> Callable[..., Any]:
    """``EXECUTE_NORMALIZED`` of ``owner``: ``async`` exactly when its ``execute`` is."""
    execute = owner.execute  # type: ignore[attr-defined]
    if inspect.iscoroutinefunction(execute):

        async def execute_normalized_async(**kwargs: Any) -> Any:
            target, rest = _prepare_call(owner, kwargs)
            return normalize_output(await target.execute(**rest))  # type: ignore[attr-defined]

        execute_normalized_async.__name__ = "EXECUTE_NORMALIZED"
        return execute_normalized_async

    def execute_normalized(**kwargs: Any) -> Any:
        target, rest = _prepare_call(owner, kwargs)
        result = target.execute(**rest)  # type: ignore[attr-defined]
        if inspect.isawaitable(result):
            return _await_normalized(result)
        return normalize_output(result)

    execute_normalized.__name__ = "EXECUTE_NORMALIZED"
    return execute_normalized


class ComfyNode:
    """Base class of V3 nodes. Override ``define_schema`` and ``execute`` (classmethods)."""

    FUNCTION: ClassVar[str] = "EXECUTE_NORMALIZED"
    hidden: ClassVar[HiddenHolder] = HiddenHolder()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "_nodefarm_clone_of" in cls.__dict__:
            return
        raw = cls.__dict__.get("check_lazy_status")
        if raw is not None and not getattr(getattr(raw, "__func__", raw), "_nodefarm_wrapped", False):
            type.__setattr__(cls, "check_lazy_status", _wrap_classmethod(raw))

    # ---- what a node defines -----------------------------------------------------------------

    @classmethod
    def define_schema(cls) -> Schema:
        raise NotImplementedError(f"{cls.__name__} must override define_schema()")

    @classmethod
    def execute(cls, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{cls.__name__} must override execute()")

    @classmethod
    def validate_inputs(cls, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    @classmethod
    def fingerprint_inputs(cls, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    check_lazy_status = _OverrideOnly(_default_check_lazy_status)

    # ---- schema access -----------------------------------------------------------------------

    @classmethod
    def GET_SCHEMA(cls) -> Schema:
        """Call ``define_schema`` afresh, validate and finalize it (and remember it for the V1 attributes)."""
        origin = _origin(cls)
        defined = origin.define_schema()  # type: ignore[attr-defined]
        schema = dataclasses.replace(defined)
        schema.validate()
        schema.finalize()
        type.__setattr__(origin, "_nodefarm_schema", schema)
        return schema

    @classmethod
    def GET_NODE_INFO_V1(cls) -> dict[str, Any]:
        return cls.GET_SCHEMA().get_v1_info(_origin(cls))

    @classmethod
    def INPUT_TYPES(cls, include_hidden: bool = True) -> dict[str, dict[str, Any]]:
        sections = cls.GET_SCHEMA().v1_inputs("v1")
        if not include_hidden:
            sections.pop("hidden", None)
        return sections

    @classmethod
    def PREPARE_CLASS_CLONE(cls, hidden_inputs: dict[Any, Any] | None) -> type:
        """A shallow per-call clone (a subclass) with ``cls.hidden`` set from ``hidden_inputs``."""
        origin = _origin(cls)
        namespace = {
            "hidden": HiddenHolder.from_dict(hidden_inputs),
            "_nodefarm_clone_of": origin,
            "__module__": origin.__module__,
            "__qualname__": origin.__qualname__,
        }
        return type(origin.__name__, (origin,), namespace)

    # ---- synthesized V1 attributes -----------------------------------------------------------

    RETURN_TYPES = _SchemaAttr(lambda cls: tuple(o.get_io_type() for o in _schema_of(cls).outputs))
    RETURN_NAMES = _SchemaAttr(
        lambda cls: tuple(o.display_name or str(_type_name(o.io_type)) for o in _schema_of(cls).outputs)
    )
    OUTPUT_IS_LIST = _SchemaAttr(lambda cls: tuple(bool(o.is_output_list) for o in _schema_of(cls).outputs))
    OUTPUT_TOOLTIPS = _SchemaAttr(lambda cls: tuple(o.tooltip for o in _schema_of(cls).outputs))
    INPUT_IS_LIST = _SchemaAttr(lambda cls: bool(_schema_of(cls).is_input_list))
    OUTPUT_NODE = _SchemaAttr(lambda cls: bool(_schema_of(cls).is_output_node))
    CATEGORY = _SchemaAttr(lambda cls: _schema_of(cls).category)
    DESCRIPTION = _SchemaAttr(lambda cls: _schema_of(cls).description)
    NOT_IDEMPOTENT = _SchemaAttr(lambda cls: bool(_schema_of(cls).not_idempotent))
    DEPRECATED = _SchemaAttr(lambda cls: bool(_schema_of(cls).is_deprecated))
    EXPERIMENTAL = _SchemaAttr(lambda cls: bool(_schema_of(cls).is_experimental))
    API_NODE = _SchemaAttr(lambda cls: bool(_schema_of(cls).is_api_node))
    VALIDATE_INPUTS = _SchemaAttr(lambda cls: _override_wrapper(cls, "validate_inputs", "VALIDATE_INPUTS"))
    IS_CHANGED = _SchemaAttr(lambda cls: _override_wrapper(cls, "fingerprint_inputs", "IS_CHANGED"))
    EXECUTE_NORMALIZED = _SchemaAttr(lambda cls: _execute_normalized(cls))


def is_v3_node(cls: Any) -> bool:
    return isinstance(cls, type) and issubclass(cls, ComfyNode)

__all__ = [
    "AnyType", "Audio", "BBOX", "Boolean", "Clip", "ClipVision", "ClipVisionOutput", "Combo", "ComfyNode",
    "ComfyTypeI", "ComfyTypeIO", "Conditioning", "ControlNet", "Custom", "FaceAnalysis", "Float",
    "FlowControl", "FolderType", "Gligen", "Guider", "Hidden", "HiddenHolder", "HookKeyframes", "Hooks",
    "Image", "Input", "Int", "Latent", "LatentOperation", "LoraModel", "LossMap", "Mask", "Mesh", "Model",
    "MultiCombo", "MultiType", "NodeOutput", "Noise", "NumberDisplay", "Output", "Point", "RemoteOptions",
    "SEGS", "SVG", "Sampler", "Schema", "Sigmas", "String", "StyleModel", "TimestepsRange", "UploadType",
    "UpscaleModel", "Vae", "Video", "Voxel", "WanCameraEmbedding", "Webcam", "WidgetInput", "comfytype",
    "is_v3_node", "normalize_output", "prune_dict",
]  # fmt: skip
