"""A node's ``ui`` return as ComfyUI sends it: every value a list (worker/execute.py; spec 5.6).

Upstream builds the merged ui with ``[y for x in uis for y in x[k]]``, so any iterable a node hands
back (a ``map``, a generator, a tuple, a range) arrives as a list; custom node packs rely on it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import pytest

from worker.execute import normalize, run_node


class ShowValues:
    """A V1 output node whose ``ui`` value is whatever the test gives it."""

    RETURN_TYPES = ()
    FUNCTION = "run"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"values": ("*",)}}

    def __init__(self, make: Any = None) -> None:
        self.make = make

    def run(self, values: Any) -> dict[str, Any]:
        return {"ui": {"text": self.make(values)}}


def run_show(make: Any, values: list[Any]) -> Any:
    return run_node(ShowValues, ShowValues(make), {"values": values}, node_id="9", prompt_id="P", unevaluated=set())


@pytest.mark.parametrize(
    "make",
    [
        lambda v: map(str, range(v)),
        lambda v: (str(i) for i in range(v)),
        lambda v: tuple(str(i) for i in range(v)),
        lambda v: iter([str(i) for i in range(v)]),
        lambda v: [str(i) for i in range(v)],
    ],
    ids=["map", "generator", "tuple", "iterator", "list"],
)
def test_an_iterable_ui_value_becomes_a_json_list(make: Any) -> None:
    out = run_show(make, [3])
    assert out.ui == {"text": ["0", "1", "2"]}
    assert type(out.ui["text"]) is list
    assert json.loads(json.dumps(out.ui)) == {"text": ["0", "1", "2"]}


def test_iterable_ui_values_of_every_call_are_concatenated() -> None:
    out = run_show(lambda v: map(str, range(v)), [1, 2])
    assert out.ui == {"text": ["0", "0", "1"]}


def test_a_range_becomes_its_elements() -> None:
    assert run_show(range, [2]).ui == {"text": [0, 1]}


@pytest.mark.parametrize(
    ("value", "expected"),
    [("hello", ["hello"]), (b"raw", [b"raw"]), ({"a": 1}, [{"a": 1}]), (7, [7]), (2.5, [2.5])],
    ids=["str", "bytes", "dict", "int", "float"],
)
def test_strings_bytes_dicts_and_scalars_are_one_element(value: Any, expected: list[Any]) -> None:
    assert run_show(lambda _v: value, [0]).ui == {"text": expected}


def test_a_none_ui_value_adds_nothing() -> None:
    out = normalize(ShowValues, [{"ui": {"text": None, "images": (i for i in [1])}}])
    assert out.ui == {"text": [], "images": [1]}


def test_ui_values_are_lists_even_when_built_from_an_iterable_subclass() -> None:
    class Frames(Iterable):
        def __iter__(self) -> Any:
            return iter(["a", "b"])

    assert normalize(ShowValues, [{"ui": {"frames": Frames()}}]).ui == {"frames": ["a", "b"]}
