"""Stand-ins for ComfyUI's model code: importable, subclassable, and raising when used.

Without ``--comfyui`` a farm process has no diffusion model code. Custom node packs still import
names like ``comfy.sd.VAE``, ``nodes.KSampler`` or ``comfy_extras.nodes_upscale_model.ImageUpscaleWithModel``
at module level; the stand-ins made here let them import (and subclass, and list the node in
``/object_info``), and raise :class:`NeedsComfyUIError` the moment real model code would run.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import types
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from nodes.errors import NodefarmNodesError

HINT = "start the farm with --comfyui <your ComfyUI folder>"


class NeedsComfyUIError(NodefarmNodesError, NotImplementedError):
    """Raised by a stand-in when the work needs ComfyUI's own model code."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} needs ComfyUI's model code: {HINT}")
        self.what = what


def fail(what: str) -> NoReturn:
    raise NeedsComfyUIError(what)


def function(qualname: str) -> Callable[..., Any]:
    """A function that raises :class:`NeedsComfyUIError` naming ``qualname`` when called."""
    name = qualname.rpartition(".")[2]

    def standin(*args: Any, **kwargs: Any) -> Any:
        fail(qualname)

    standin.__name__ = standin.__qualname__ = name
    standin.__doc__ = f"Stand-in for ComfyUI's {qualname}: {HINT}."
    return standin


class ModelCode:
    """Base of stand-in classes: subclassable, but constructing one raises :class:`NeedsComfyUIError`.

    Class attributes given to :func:`model_class` (enum-like constants, name lists) stay readable.
    """

    _comfy_name = "model code"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        fail(type(self)._comfy_name)


def model_class(qualname: str, bases: tuple[type, ...] = (), **attrs: Any) -> type:
    """A class named like ComfyUI's ``qualname`` whose instances cannot be made without ComfyUI."""
    module, _, name = qualname.rpartition(".")
    namespace: dict[str, Any] = {"_comfy_name": qualname, "__module__": module or __name__, **attrs}
    return type(name, (*bases, ModelCode), namespace)


# ---- node classes ------------------------------------------------------------------------------

InputSpec = Mapping[str, Any]


def files(folder: str, **options: Any) -> Callable[[], tuple[Any, ...]]:
    """An input spec filled at ``INPUT_TYPES`` time with the files of a model folder."""

    def spec() -> tuple[Any, ...]:
        from nodes.compat import folder_paths

        names = folder_paths.get_filename_list(folder)
        return (names, options) if options else (names,)

    return spec


def _resolve(section: InputSpec) -> dict[str, Any]:
    return {key: value() if callable(value) else value for key, value in section.items()}


def node_class(
    name: str,
    *,
    required: InputSpec,
    returns: tuple[str, ...],
    function_name: str,
    category: str,
    optional: InputSpec | None = None,
    hidden: InputSpec | None = None,
    return_names: tuple[str, ...] | None = None,
    output_node: bool = False,
    module: str = "nodes",
    implementation: Callable[..., Any] | None = None,
    bases: tuple[type, ...] = (),
    **attrs: Any,
) -> type:
    """A V1 node class with ComfyUI's declaration of ``name``.

    ``INPUT_TYPES`` answers like ComfyUI's (file lists read at call time, so ``/object_info`` and
    subclasses see them); the ``function_name`` method runs ``implementation`` when one is given
    (model-free nodes) or raises :class:`NeedsComfyUIError`.
    """

    def input_types(cls: type) -> dict[str, Any]:
        spec: dict[str, Any] = {"required": _resolve(required)}
        if optional:
            spec["optional"] = _resolve(optional)
        if hidden:
            spec["hidden"] = dict(hidden)
        return spec

    if implementation is None:

        def run(self: Any, *args: Any, **kwargs: Any) -> Any:
            fail(name)

    else:
        run = implementation
    run.__name__ = run.__qualname__ = function_name
    namespace: dict[str, Any] = {
        "__module__": module,
        "__doc__": attrs.pop("doc", None) or f"ComfyUI's {name} node ({'runs here' if implementation else HINT}).",
        "INPUT_TYPES": classmethod(input_types),
        "RETURN_TYPES": returns,
        "FUNCTION": function_name,
        "CATEGORY": category,
        function_name: run,
        **attrs,
    }
    if return_names is not None:
        namespace["RETURN_NAMES"] = return_names
    if output_node:
        namespace["OUTPUT_NODE"] = True
    return type(name, bases, namespace)


# ---- model architectures: any module below comfy.ldm, comfy.taesd, comfy.text_encoders -------------

MODEL_CODE_PACKAGES = ("comfy.ldm", "comfy.taesd", "comfy.text_encoders")


class _ModelCodeModule(types.ModuleType):
    """A module of ComfyUI's model architectures: every name is a stand-in (classes for
    CapitalizedNames, functions otherwise), so ``from comfy.ldm.x.model import Block`` imports."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        qualname = f"{self.__name__}.{name}"
        value = model_class(qualname) if name[:1].isupper() else function(qualname)
        setattr(self, name, value)
        return value


class _ModelCodeFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the ``MODEL_CODE_PACKAGES`` submodules that no compat file provides."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith(tuple(p + "." for p in MODEL_CODE_PACKAGES)):
            return None
        if importlib.machinery.PathFinder.find_spec(fullname, path) is not None:
            return None  # a real compat module exists (comfy.ldm.modules.attention, ...)
        return importlib.machinery.ModuleSpec(fullname, self, is_package=True)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = _ModelCodeModule(spec.name, f"Stand-in for ComfyUI's {spec.name}: {HINT}.")
        module.__path__ = []
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        return None


def install_model_code_finder() -> None:
    """Let ``comfy.ldm.*``/``comfy.taesd.*``/``comfy.text_encoders.*`` modules without a compat file import
    as stand-ins (idempotent; called by the boot function when the compat modules are installed)."""
    if not any(isinstance(f, _ModelCodeFinder) for f in sys.meta_path):
        sys.meta_path.append(_ModelCodeFinder())
