"""Test pack: idioms of real custom node packs (Impact Pack, Inspire Pack, rgthree, ...) that the farm
must accept as ComfyUI does.

* ``ByPassTypeTuple`` as ``RETURN_TYPES``: links may point past the declared outputs.
* A ``ui`` value that is an iterator (a ``map``), which ComfyUI turns into a list.
* The JS folder registered by writing ``nodes.EXTENSION_WEB_DIRS`` at import time, not by
  ``WEB_DIRECTORY``.
"""

from __future__ import annotations

import os

import nodes

CATEGORY = "testing/idioms"

nodes.EXTENSION_WEB_DIRS["pack_idioms_web"] = os.path.join(os.path.dirname(os.path.realpath(__file__)), "js")


class AnyType(str):
    def __ne__(self, other):
        return False


class ByPassTypeTuple(tuple):
    """Answers every index: past 0 it reads as index 0, and a string as AnyType (as the packs do)."""

    def __getitem__(self, index):
        if index > 0:
            index = 0
        item = super().__getitem__(index)
        if isinstance(item, str):
            return AnyType(item)
        return item


class IdiomFanOut:
    """Returns ``count`` floats ``start, start+1, ...`` through one declared output."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"start": ("FLOAT", {"default": 0.0}), "count": ("INT", {"default": 4, "min": 1})}}

    RETURN_TYPES = ByPassTypeTuple(("*",))
    FUNCTION = "run"
    CATEGORY = CATEGORY

    def run(self, start, count):
        return tuple(start + i for i in range(count))


class IdiomMapText:
    """An output node whose ui text is a ``map`` object."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("FLOAT", {"forceInput": True}), "times": ("INT", {"default": 2, "min": 1})}}

    RETURN_TYPES = ()
    FUNCTION = "run"
    OUTPUT_NODE = True
    CATEGORY = CATEGORY

    def run(self, value, times):
        return {"ui": {"text": map(repr, [value] * times)}}


NODE_CLASS_MAPPINGS = {"IdiomFanOut": IdiomFanOut, "IdiomMapText": IdiomMapText}
