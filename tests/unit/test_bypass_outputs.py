"""Links past ``len(RETURN_TYPES)``: the ``ByPassTypeTuple`` pattern of Impact Pack, Inspire Pack and
rgthree (nodes/core/validation.py, worker/execute.py, nodes/core/inputs.py), pure.

ComfyUI checks a link by indexing ``RETURN_TYPES[index]``, so a tuple subclass that answers any index
accepts links to as many outputs as the node returns; upstream keeps every returned value
(``merge_result_data`` walks ``len(results[0])``), so the consumer of output 3 gets the 4th value.
"""

from __future__ import annotations

from typing import Any

from nodes.core.inputs import Hidden, assemble_inputs
from nodes.core.validation import validate_prompt
from nodes.registry import NodeRegistry
from worker.execute import normalize, run_node


class AnyType(str):
    def __ne__(self, other: object) -> bool:
        return False


class ByPassTypeTuple(tuple):
    """As the packs write it: every index past 0 reads as index 0, strings as AnyType."""

    def __getitem__(self, index: Any) -> Any:
        if index > 0:
            index = 0
        item = super().__getitem__(index)
        if isinstance(item, str):
            return AnyType(item)
        return item


class FanOut:
    """Returns ``count`` values through one declared output."""

    RETURN_TYPES = ByPassTypeTuple(("*",))
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"count": ("INT", {"default": 4})}}

    def run(self, count: int) -> tuple:
        return tuple(range(10, 10 + count))


class PlainOne:
    RETURN_TYPES = ("INT",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {}}


class TakeInt:
    OUTPUT_NODE = True
    RETURN_TYPES = ()
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"value": ("INT",)}}


REGISTRY = NodeRegistry(classes={"FanOut": FanOut, "PlainOne": PlainOne, "TakeInt": TakeInt})


def fan_prompt(source: str, index: Any) -> dict[str, Any]:
    return {"1": {"class_type": source, "inputs": {"count": 4} if source == "FanOut" else {}},
            "2": {"class_type": "TakeInt", "inputs": {"value": ["1", index]}}}


# ---- validation ---------------------------------------------------------------------------------------


def test_a_link_past_the_declared_outputs_of_a_bypass_tuple_is_valid() -> None:
    for index in (0, 1, 3, 3.0, 20):
        result = validate_prompt(fan_prompt("FanOut", index), REGISTRY)
        assert result.ok and result.outputs == ["2"], (index, result.node_errors)


def test_a_link_past_a_plain_tuple_is_still_an_index_error() -> None:
    result = validate_prompt(fan_prompt("PlainOne", 1), REGISTRY)
    (error,) = result.node_errors["2"]["errors"]
    assert error["type"] == "exception_during_validation"
    assert error["extra_info"]["exception_type"] == "IndexError"


def test_a_negative_link_index_is_rejected_even_for_a_bypass_tuple() -> None:
    result = validate_prompt(fan_prompt("FanOut", -1), REGISTRY)
    assert not result.ok
    assert result.node_errors["2"]["errors"][0]["extra_info"]["exception_type"] == "IndexError"


# ---- execution: every returned value is kept, and a link reaches it --------------------------------


def test_every_returned_value_gets_its_socket() -> None:
    out = run_node(FanOut, FanOut(), {"count": [4]}, node_id="1", prompt_id="P", unevaluated=set())
    assert out.outputs == [[10], [11], [12], [13]]


def test_calls_returning_different_counts_pad_the_shorter_with_none() -> None:
    assert normalize(FanOut, [(1, 2, 3), (4,)]).outputs == [[1, 4], [2, None], [3, None]]


def test_a_consumer_linked_past_the_declared_outputs_gets_that_value() -> None:
    produced = normalize(FanOut, [(10, 11, 12, 13)]).outputs
    data = assemble_inputs(TakeInt, {"inputs": {"value": ["1", 3]}}, {"1": produced},
                           Hidden(prompt={}, extra_data={}, unique_id="2"))
    assert data == {"value": [13]}
