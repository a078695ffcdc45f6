"""Prompt validation: ComfyUI's error types and shapes (spec §1.3-1.4, §5.2, §5.9) plus farm rules."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from nodes.core.validation import ValidationResult, is_link, run_custom_validation, validate_prompt
from nodes.registry import NodeRegistry

# ---- stub node classes ----------------------------------------------------------------------------


class AnyType(str):
    def __ne__(self, other: object) -> bool:
        return False


class ExecutionBlocker:
    def __init__(self, message: str | None) -> None:
        self.message = message


class StubImage:
    # Declared in the order that reproduces the spec's captured example (upstream iterates a set).
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        size = {"default": 512, "min": 1, "max": 1073741824, "step": 1}
        return {
            "required": {
                "height": ("INT", dict(size)),
                "width": ("INT", dict(size)),
                "batch_size": ("INT", dict(size)),
                "content": (["WHITE", "BLACK", "NOISE"], {}),
            }
        }


class StubInt:
    RETURN_TYPES = ("INT",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"value": ("INT", {"min": -10, "max": 10})}}


class StubAny:
    RETURN_TYPES = (AnyType("*"),)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {}}


class SaveImage:
    OUTPUT_NODE = True
    RETURN_TYPES = ()
    FUNCTION = "save"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {"images": ("IMAGE",), "filename_prefix": ("STRING", {"default": "ComfyUI"})},
            "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"},
        }


class Sink:
    """An output node taking an image and optional extras of various types."""

    OUTPUT_NODE = True
    RETURN_TYPES = ()
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {"images": ("IMAGE",)},
            "optional": {
                "union": ("IMAGE,FLOAT",),
                "anything": ("*",),
                "any_obj": (AnyType("*"),),
                "flag": ("BOOLEAN",),
                "ratio": ("FLOAT", {"min": 0.0, "max": 1.0}),
                "text": ("STRING",),
                "choice": (["a", "b"],),
                "big": ([f"m{i}.safetensors" for i in range(25)],),
                "v3combo": ("COMBO", {"options": ["x", "y"]}),
                "items": ("LIST",),
            },
        }


class Passthrough:
    """A non-output node with one image input and output."""

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"image": ("IMAGE",)}}


def registry(*classes: type, **named: type) -> NodeRegistry:
    mapping = {cls.__name__: cls for cls in classes}
    mapping.update(named)
    return NodeRegistry(classes=mapping)


BASE = registry(StubImage, StubInt, StubAny, SaveImage, Sink, Passthrough)


def image() -> dict[str, Any]:
    return {
        "class_type": "StubImage",
        "inputs": {"height": 8, "width": 8, "batch_size": 1, "content": "WHITE"},
    }


def sink(**inputs: Any) -> dict[str, Any]:
    return {"class_type": "Sink", "inputs": {"images": ["1", 0], **inputs}}


def as_json(result: ValidationResult) -> Any:
    return json.loads(json.dumps({"error": result.error, "node_errors": result.node_errors}))


def only_error(result: ValidationResult, node_id: str) -> dict[str, Any]:
    errors = result.node_errors[node_id]["errors"]
    assert len(errors) == 1, errors
    return errors[0]


# ---- graph-level errors ---------------------------------------------------------------------------


def test_captured_example_one_node_with_three_problems() -> None:
    prompt = {
        "1": {"class_type": "StubImage", "inputs": {"height": 0, "width": 64, "content": "PURPLE"}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}},
    }
    expected = json.loads(
        """
{"error": {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation",
           "details": "Required input is missing: filename_prefix", "extra_info": {}},
 "node_errors": {
   "1": {"errors": [
      {"type": "value_smaller_than_min", "message": "Value 0 smaller than min of 1", "details": "height",
       "extra_info": {"input_name": "height", "input_config": ["INT", {"default": 512, "min": 1, "max": 1073741824, "step": 1}], "received_value": 0}},
      {"type": "required_input_missing", "message": "Required input is missing", "details": "batch_size", "extra_info": {"input_name": "batch_size"}},
      {"type": "value_not_in_list", "message": "Value not in list", "details": "content: 'PURPLE' not in ['WHITE', 'BLACK', 'NOISE']",
       "extra_info": {"input_name": "content", "input_config": [["WHITE", "BLACK", "NOISE"], {}], "received_value": "PURPLE"}}],
     "dependent_outputs": ["2"], "class_type": "StubImage"},
   "2": {"errors": [{"type": "required_input_missing", "message": "Required input is missing", "details": "filename_prefix",
                     "extra_info": {"input_name": "filename_prefix"}}], "dependent_outputs": ["2"], "class_type": "SaveImage"}}}
"""
    )
    result = validate_prompt(prompt, BASE)
    assert not result.ok
    assert result.outputs == []
    assert as_json(result) == expected
    assert list(result.node_errors) == ["1", "2"]


def test_node_without_class_type_is_an_invalid_prompt() -> None:
    result = validate_prompt({"1": image(), "my[x]": {"inputs": {}}}, BASE)
    assert as_json(result) == {
        "error": {
            "type": "invalid_prompt",
            "message": "Cannot execute because a node is missing the class_type property.",
            "details": "Node ID '#my[x]'",
            "extra_info": {},
        },
        "node_errors": {},
    }


def test_unknown_class_is_an_invalid_prompt() -> None:
    result = validate_prompt({"7": {"class_type": "Nope", "inputs": {}}}, BASE)
    assert not result.ok
    assert result.error == {
        "type": "invalid_prompt",
        "message": "Cannot execute because node Nope does not exist.",
        "details": "Node ID '#7'",
        "extra_info": {},
    }
    assert result.node_errors == {}


def test_a_comfyui_core_node_on_a_farm_without_comfyui_says_how_to_get_it() -> None:
    result = validate_prompt({"3": {"class_type": "KSampler", "inputs": {}}}, BASE)
    assert not result.ok
    assert result.error["message"] == "Cannot execute because node KSampler does not exist."  # ComfyUI's words
    assert result.error["details"] == ("Node ID '#3': KSampler is one of ComfyUI's core nodes: "
                                       "start the farm with --comfyui <your ComfyUI folder>")


NO_OUTPUTS = {
    "type": "prompt_no_outputs",
    "message": "Prompt has no outputs",
    "details": "",
    "extra_info": {},
}


def test_prompt_without_output_nodes() -> None:
    result = validate_prompt({"1": image()}, BASE)
    assert (result.ok, result.error, result.node_errors) == (False, NO_OUTPUTS, {})


def test_empty_partial_targets_or_only_non_outputs_means_no_outputs() -> None:
    prompt = {"1": image(), "2": sink()}
    assert validate_prompt(prompt, BASE, []).error == NO_OUTPUTS
    assert validate_prompt(prompt, BASE, ["1"]).error == NO_OUTPUTS


def test_partial_targets_select_outputs_and_skip_the_others() -> None:
    prompt = {
        "1": image(),
        "2": sink(),
        "3": {"class_type": "Sink", "inputs": {}},  # invalid, but not selected
    }
    result = validate_prompt(prompt, BASE, ["2", "1", "zzz"])
    assert result.ok and result.outputs == ["2"] and result.node_errors == {}
    full = validate_prompt(prompt, BASE)
    assert full.ok and full.outputs == ["2"] and list(full.node_errors) == ["3"]


def test_some_outputs_pass_gives_ok_with_node_errors() -> None:
    prompt = {
        "1": image(),
        "bad": {"class_type": "StubImage", "inputs": {"height": 8, "width": 8, "batch_size": 99999999999}},
        "2": sink(),
        "3": {"class_type": "Sink", "inputs": {"images": ["bad", 0]}},
        "4": {"class_type": "Sink", "inputs": {"images": ["bad", 0], "ratio": 2}},
    }
    result = validate_prompt(prompt, BASE)
    assert result.ok
    assert result.error is None
    assert result.outputs == ["2"]
    assert set(result.node_errors) == {"bad", "4"}
    assert result.node_errors["bad"]["dependent_outputs"] == ["3", "4"]
    assert result.node_errors["4"]["dependent_outputs"] == ["4"]
    assert [e["type"] for e in result.node_errors["bad"]["errors"]] == [
        "value_bigger_than_max",
        "required_input_missing",
    ]


def test_upstream_only_failure_leaves_details_empty_and_no_entry_for_the_output() -> None:
    prompt = {
        "1": {"class_type": "StubImage", "inputs": {"height": 8, "width": 8, "batch_size": 1}},
        "p": {"class_type": "Passthrough", "inputs": {"image": ["1", 0]}},
        "2": {"class_type": "Sink", "inputs": {"images": ["p", 0]}},
    }
    result = validate_prompt(prompt, BASE)
    assert not result.ok
    assert result.error == {
        "type": "prompt_outputs_failed_validation",
        "message": "Prompt outputs failed validation",
        "details": "",
        "extra_info": {},
    }
    assert list(result.node_errors) == ["1"]
    assert result.node_errors["1"]["dependent_outputs"] == ["2"]


def test_error_details_join_every_failed_outputs_own_reasons() -> None:
    prompt = {"1": image(), "2": {"class_type": "Sink", "inputs": {"ratio": -1}}, "3": {"class_type": "Sink"}}
    result = validate_prompt(prompt, BASE)
    assert result.error is not None
    assert result.error["details"] == (
        "Required input is missing: images\n"
        "Value -1.0 smaller than min of 0.0: ratio\n"
        "Required input is missing: images"
    )


# ---- exceptions ---------------------------------------------------------------------------------


def test_link_to_missing_node_from_output_is_exception_during_validation() -> None:
    result = validate_prompt({"2": {"class_type": "Sink", "inputs": {"images": ["99", 0]}}}, BASE)
    error = only_error(result, "2")
    assert error["type"] == "exception_during_validation"
    assert error["message"] == "Exception when validating node"
    assert error["details"] == "'99'"
    assert error["extra_info"]["exception_type"] == "KeyError"
    assert isinstance(error["extra_info"]["traceback"], list) and error["extra_info"]["traceback"]
    assert result.error is not None and result.error["details"] == "Exception when validating node: '99'"


def test_exception_in_upstream_node_is_inner_validation_error_on_that_node() -> None:
    prompt = {
        "p": {"class_type": "Passthrough", "inputs": {"image": ["99", 0]}},
        "2": {"class_type": "Sink", "inputs": {"images": ["p", 0]}},
    }
    result = validate_prompt(prompt, BASE)
    assert list(result.node_errors) == ["p"]
    error = only_error(result, "p")
    assert error["type"] == "exception_during_inner_validation"
    assert error["message"] == "Exception when validating inner node"
    assert error["details"] == "'99'"
    info = error["extra_info"]
    assert info["input_name"] == "images"
    assert info["input_config"] == ["IMAGE", {}]
    assert info["exception_message"] == "'99'"
    assert info["exception_type"] == "KeyError"
    assert info["linked_node"] == ["p", 0]
    assert isinstance(info["traceback"], list)
    assert result.error is not None and result.error["details"] == ""


def test_static_cycle_is_reported_not_recursed_forever() -> None:
    prompt = {
        "a": {"class_type": "Passthrough", "inputs": {"image": ["b", 0]}},
        "b": {"class_type": "Passthrough", "inputs": {"image": ["a", 0]}},
        "2": {"class_type": "Sink", "inputs": {"images": ["a", 0]}},
    }
    result = validate_prompt(prompt, BASE)
    error = only_error(result, "2")
    assert error["type"] == "exception_during_validation"
    assert error["extra_info"]["exception_type"] == "nodes.core.validation.DependencyCycleError"
    assert "cycle" in error["details"]


def test_long_chain_validates_without_recursion_limit() -> None:
    prompt: dict[str, Any] = {"0": image()}
    for i in range(1, 3000):
        prompt[str(i)] = {"class_type": "Passthrough", "inputs": {"image": [str(i - 1), 0]}}
    prompt["out"] = {"class_type": "Sink", "inputs": {"images": ["2999", 0]}}
    result = validate_prompt(prompt, BASE)
    assert result.ok and result.outputs == ["out"]


def test_output_index_out_of_range_is_an_exception() -> None:
    result = validate_prompt({"1": image(), "2": sink(images=["1", 1])}, BASE)
    error = only_error(result, "2")
    assert error["type"] == "exception_during_validation"
    assert error["extra_info"]["exception_type"] == "IndexError"


# ---- per-input errors -----------------------------------------------------------------------------


def test_float_link_index_is_accepted() -> None:
    assert validate_prompt({"1": image(), "2": sink(images=["1", 0.0])}, BASE).ok


def test_bad_linked_input() -> None:
    result = validate_prompt({"1": image(), "2": sink(union=[1, 2, 3])}, BASE)
    assert only_error(result, "2") == {
        "type": "bad_linked_input",
        "message": "Bad linked input, must be a length-2 list of [node_id, slot_index]",
        "details": "union",
        "extra_info": {
            "input_name": "union",
            "input_config": ["IMAGE,FLOAT", {}],
            "received_value": [1, 2, 3],
        },
    }


def test_return_type_mismatch() -> None:
    prompt = {"1": image(), "i": {"class_type": "StubInt", "inputs": {"value": 1}}, "2": sink(union=["i", 0])}
    result = validate_prompt(prompt, BASE)
    assert only_error(result, "2") == {
        "type": "return_type_mismatch",
        "message": "Return type mismatch between linked nodes",
        "details": "union, received_type(INT) mismatch input_type(IMAGE,FLOAT)",
        "extra_info": {
            "input_name": "union",
            "input_config": ["IMAGE,FLOAT", {}],
            "received_type": "INT",
            "linked_node": ["i", 0],
        },
    }


def test_wildcard_types_accept_links() -> None:
    prompt = {
        "1": image(),
        "any": {"class_type": "StubAny", "inputs": {}},
        "2": sink(anything=["1", 0], any_obj=["1", 0]),
        "3": {"class_type": "Sink", "inputs": {"images": ["any", 0]}},
    }
    result = validate_prompt(prompt, BASE)
    assert result.ok and result.outputs == ["2", "3"]


def test_invalid_input_type() -> None:
    result = validate_prompt({"1": image(), "2": sink(ratio="abc")}, BASE)
    assert only_error(result, "2") == {
        "type": "invalid_input_type",
        "message": "Failed to convert an input value to a FLOAT value",
        "details": "ratio, abc, could not convert string to float: 'abc'",
        "extra_info": {
            "input_name": "ratio",
            "input_config": ["FLOAT", {"min": 0.0, "max": 1.0}],
            "received_value": "abc",
            "exception_message": "could not convert string to float: 'abc'",
        },
    }


def test_value_bigger_than_max() -> None:
    result = validate_prompt({"1": image(), "2": sink(ratio=1.5)}, BASE)
    assert only_error(result, "2") == {
        "type": "value_bigger_than_max",
        "message": "Value 1.5 bigger than max of 1.0",
        "details": "ratio",
        "extra_info": {
            "input_name": "ratio",
            "input_config": ["FLOAT", {"min": 0.0, "max": 1.0}],
            "received_value": 1.5,
        },
    }


def test_long_combo_list_is_not_echoed() -> None:
    result = validate_prompt({"1": image(), "2": sink(big="nope.safetensors")}, BASE)
    assert only_error(result, "2") == {
        "type": "value_not_in_list",
        "message": "Value not in list",
        "details": "big: 'nope.safetensors' not in (list of length 25)",
        "extra_info": {"input_name": "big", "input_config": None, "received_value": "nope.safetensors"},
    }


def test_v3_combo_is_not_membership_checked() -> None:
    assert validate_prompt({"1": image(), "2": sink(v3combo="zzz")}, BASE).ok


def test_constants_are_converted_and_written_back() -> None:
    prompt = {
        "1": {
            "class_type": "StubImage",
            "inputs": {"height": "16", "width": 8.9, "batch_size": 1, "content": "NOISE"},
        },
        "2": sink(flag=1, ratio="0.5", text=12, items={"__value__": [1, 2, 3]}),
    }
    result = validate_prompt(prompt, BASE)
    assert result.ok
    assert prompt["1"]["inputs"]["height"] == 16 and type(prompt["1"]["inputs"]["height"]) is int
    assert prompt["1"]["inputs"]["width"] == 8
    assert prompt["2"]["inputs"]["flag"] is True
    assert prompt["2"]["inputs"]["ratio"] == 0.5
    assert prompt["2"]["inputs"]["text"] == "12"
    assert prompt["2"]["inputs"]["items"] == [1, 2, 3]
    assert prompt["2"]["inputs"]["images"] == ["1", 0]


def test_value_wrapped_list_reaches_the_checks_unwrapped() -> None:
    result = validate_prompt({"1": image(), "2": sink(choice={"__value__": "c"})}, BASE)
    error = only_error(result, "2")
    assert error["type"] == "value_not_in_list"
    assert error["extra_info"]["received_value"] == "c"


def test_undeclared_link_inputs_are_neither_type_checked_nor_validated() -> None:
    prompt = {
        "1": image(),
        "bad": {"class_type": "StubInt", "inputs": {"value": 999}},
        "2": sink(undeclared=["bad", 0], dropped_constant=5),
    }
    result = validate_prompt(prompt, BASE)
    assert result.ok and result.node_errors == {}


def test_shared_upstream_node_is_validated_once() -> None:
    calls: list[int] = []

    class Counted(StubImage):
        @classmethod
        def VALIDATE_INPUTS(cls, height: int) -> bool:
            calls.append(height)
            return True

    reg = registry(Counted, Sink)
    prompt = {
        "1": {
            "class_type": "Counted",
            "inputs": {"height": 8, "width": 8, "batch_size": 1, "content": "WHITE"},
        },
        "2": sink(),
        "3": sink(),
    }
    result = validate_prompt(prompt, reg)
    assert result.ok and result.outputs == ["2", "3"]
    assert calls == [8]


# ---- VALIDATE_INPUTS --------------------------------------------------------------------------------


def make_validated(validator: Any, **extra: Any) -> type:
    """A Sink-like output node with a required INT (min 1) and STRING, plus the given VALIDATE_INPUTS."""

    class Checked:
        OUTPUT_NODE = True
        RETURN_TYPES = ()
        FUNCTION = "run"
        VALIDATE_INPUTS = validator

        @classmethod
        def INPUT_TYPES(cls) -> dict[str, Any]:
            return {
                "required": {"count": ("INT", {"min": 1}), "label": ("STRING",), "images": ("IMAGE",)},
                "optional": {"raw": ("*", {"rawLink": True})},
                "hidden": {"prompt": "PROMPT", "uid": "UNIQUE_ID", "png": "EXTRA_PNGINFO"},
            }

    for key, value in extra.items():
        setattr(Checked, key, value)
    return Checked


def checked_prompt(**inputs: Any) -> dict[str, Any]:
    return {
        "1": image(),
        "i": {"class_type": "StubInt", "inputs": {"value": 1}},
        "c": {"class_type": "Checked", "inputs": {"count": "0", "label": 5, "images": ["1", 0], **inputs}},
    }


def run_checked(validator: Any, **inputs: Any) -> tuple[ValidationResult, dict[str, Any]]:
    prompt = checked_prompt(**inputs)
    result = validate_prompt(prompt, registry(StubImage, StubInt, Checked=make_validated(validator)))
    return result, prompt


def test_validator_gets_only_named_inputs_and_skips_their_range_checks() -> None:
    seen: list[dict[str, Any]] = []

    def check(cls: type, count: int, uid: str) -> bool:
        seen.append({"count": count, "uid": uid})
        return True

    result, _ = run_checked(classmethod(check))
    assert result.ok, result.node_errors
    assert seen == [{"count": 0, "uid": "c"}]  # converted value; count's min check skipped


def test_range_checks_still_apply_to_unnamed_inputs() -> None:
    def check(cls: type, label: str) -> bool:
        return True

    result, _ = run_checked(classmethod(check))
    assert only_error(result, "c")["type"] == "value_smaller_than_min"


def test_validator_with_kwargs_gets_everything_and_skips_all_checks() -> None:
    seen: dict[str, Any] = {}

    def check(cls: type, **kwargs: Any) -> bool:
        seen.update(kwargs)
        return True

    result, _ = run_checked(classmethod(check), raw=["i", 0], extra=["i", 0])
    assert result.ok, result.node_errors
    assert seen == {
        "count": 0,
        "label": "5",
        "images": None,
        "raw": ["i", 0],
        "extra": None,
        "prompt": {},
        "uid": "c",
        "png": None,
    }


def test_input_types_argument_gets_linked_types_and_disables_type_check() -> None:
    seen: dict[str, Any] = {}

    def check(cls: type, input_types: dict[str, Any], count: int) -> bool:
        seen.update(input_types)
        return True

    result, _ = run_checked(classmethod(check), images=["i", 0])  # INT into IMAGE
    assert result.ok, result.node_errors
    assert seen == {"images": "INT"}

    def no_types(cls: type, count: int) -> bool:
        return True

    mismatch, _ = run_checked(classmethod(no_types), images=["i", 0])
    assert only_error(mismatch, "c")["type"] == "return_type_mismatch"


def test_validator_returning_a_string_fails_once_per_named_input() -> None:
    def check(cls: type, count: int, label: str) -> str:
        return "nope"

    result, _ = run_checked(classmethod(check))
    assert result.node_errors["c"]["errors"] == [
        {
            "type": "custom_validation_failed",
            "message": "Custom validation failed for node",
            "details": "count - nope",
            "extra_info": {"input_name": "count"},
        },
        {
            "type": "custom_validation_failed",
            "message": "Custom validation failed for node",
            "details": "label - nope",
            "extra_info": {"input_name": "label"},
        },
    ]


def test_validator_returning_false_names_the_input_only() -> None:
    result, _ = run_checked(staticmethod(lambda count: False))
    assert only_error(result, "c")["details"] == "count"


def test_async_validator() -> None:
    async def ok(cls: type, count: int) -> bool:
        return count == 0

    async def bad(cls: type, count: int) -> str:
        return f"got {count}"

    assert run_checked(classmethod(ok))[0].ok
    result, _ = run_checked(classmethod(bad))
    assert only_error(result, "c")["details"] == "count - got 0"


def test_execution_blocker_return_counts_as_ok() -> None:
    def check(cls: type, count: int) -> ExecutionBlocker:
        return ExecutionBlocker("later")

    assert run_checked(classmethod(check))[0].ok


def test_validator_is_list_mapped_or_gets_lists_with_input_is_list() -> None:
    seen: list[Any] = []

    def check(cls: type, count: Any) -> bool:
        seen.append(count)
        return True

    prompt = checked_prompt()
    reg = registry(StubImage, StubInt, Checked=make_validated(classmethod(check), INPUT_IS_LIST=True))
    assert validate_prompt(prompt, reg).ok
    assert seen == [[0]]


def test_rejection_with_a_linked_argument_is_deferred() -> None:
    def robust(cls: type, images: Any, count: int) -> bool | str:
        if images is None or not hasattr(images, "shape"):
            return "Image must be a tensor"
        return True

    result, _ = run_checked(classmethod(robust))
    assert result.ok and result.outputs == ["c"]
    assert result.node_errors == {}
    assert result.deferred_validation == {
        "c": [
            {
                "type": "custom_validation_failed",
                "message": "Custom validation failed for node",
                "details": f"{name} - Image must be a tensor",
                "extra_info": {"input_name": name},
            }
            for name in ("count", "images")
        ]
    }


class UnionPair:
    """Two ``IMAGE,FLOAT`` inputs judged by a VALIDATE_INPUTS that names ``input_types``."""

    OUTPUT_NODE = True
    RETURN_TYPES = ()
    FUNCTION = "run"
    seen: list[dict[str, Any]] = []

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"input1": ("IMAGE,FLOAT",), "input2": ("IMAGE,FLOAT",)}}

    @classmethod
    def VALIDATE_INPUTS(cls, input1: Any, input2: Any, input_types: dict[str, Any]) -> bool | str:
        cls.seen.append({"input1": input1, "input2": input2, "input_types": dict(input_types)})
        for name in ("input1", "input2"):
            if input_types[name] not in ("IMAGE", "FLOAT"):
                return f"Invalid type of {name}: {input_types[name]}"
        return True


def union_pair_prompt(source: str) -> dict[str, Any]:
    src = image() if source == "StubImage" else {"class_type": source, "inputs": {"value": 1}}
    return {"s": src, "u": {"class_type": "UnionPair", "inputs": {"input1": ["s", 0], "input2": ["s", 0]}}}


def test_input_types_validator_gets_linked_inputs_as_none_and_their_types() -> None:
    UnionPair.seen = []
    result = validate_prompt(union_pair_prompt("StubImage"), registry(StubImage, UnionPair))
    assert result.ok and result.outputs == ["u"], result.node_errors
    assert result.deferred_validation == {}
    assert UnionPair.seen == [{"input1": None, "input2": None, "input_types": {"input1": "IMAGE", "input2": "IMAGE"}}]


def test_input_types_validator_rejecting_a_linked_type_fails_at_post_time_not_deferred() -> None:
    UnionPair.seen = []
    result = validate_prompt(union_pair_prompt("StubInt"), registry(StubInt, UnionPair))
    assert not result.ok and result.outputs == []
    assert result.deferred_validation == {}
    assert UnionPair.seen == [{"input1": None, "input2": None, "input_types": {"input1": "INT", "input2": "INT"}}]
    # one error per argument it received, input_types included (upstream iterates input_filtered)
    assert as_json(result) == {
        "error": {
            "type": "prompt_outputs_failed_validation",
            "message": "Prompt outputs failed validation",
            "details": "\n".join(
                f"Custom validation failed for node: {name} - Invalid type of input1: INT"
                for name in ("input1", "input2", "input_types")
            ),
            "extra_info": {},
        },
        "node_errors": {
            "u": {
                "errors": [
                    {
                        "type": "custom_validation_failed",
                        "message": "Custom validation failed for node",
                        "details": f"{name} - Invalid type of input1: INT",
                        "extra_info": {"input_name": name},
                    }
                    for name in ("input1", "input2", "input_types")
                ],
                "dependent_outputs": ["u"],
                "class_type": "UnionPair",
            }
        },
    }


def test_validator_without_input_types_rejecting_a_linked_none_is_still_deferred() -> None:
    def check(cls: type, images: Any) -> bool | str:
        return True if images is not None else "no image yet"

    result, _ = run_checked(classmethod(check), count=1)
    assert result.ok and result.node_errors == {}
    assert list(result.deferred_validation) == ["c"]


def test_rejection_with_only_constants_is_reported_not_deferred() -> None:
    def check(cls: type, count: int) -> str:
        return "bad count"

    result, _ = run_checked(classmethod(check))
    assert not result.ok
    assert result.deferred_validation == {}
    assert only_error(result, "c")["details"] == "count - bad count"


def test_run_custom_validation_with_real_values() -> None:
    class Tensorish:
        shape = (1, 8, 8, 3)

    def robust(cls: type, images: Any, count: int) -> bool | str:
        return True if hasattr(images, "shape") else "Image must be a tensor"

    cls = make_validated(classmethod(robust))
    assert run_custom_validation(cls, {"images": [Tensorish()], "count": [1], "label": ["x"]}) == []
    errors = run_custom_validation(cls, {"images": [None], "count": [1]})
    assert [e["details"] for e in errors] == [
        "images - Image must be a tensor",
        "count - Image must be a tensor",
    ]


def test_is_link() -> None:
    assert is_link(["1", 0]) and is_link(["a:b", 1.0])
    assert not is_link([1, 0]) and not is_link(["1", "0"]) and not is_link(["1", 0, 2]) and not is_link("1")


@pytest.mark.parametrize("bad", [None, ["1"], "text"])
def test_non_object_prompt_or_node_is_rejected(bad: Any) -> None:
    result = validate_prompt({"1": bad}, BASE)
    assert result.error is not None and result.error["type"] == "invalid_prompt"


def test_dependent_outputs_list_only_outputs_whose_subtree_holds_the_node() -> None:
    prompt = {
        "bad": {"class_type": "StubImage", "inputs": {"height": 8, "width": 8, "batch_size": 1}},
        "2": {"class_type": "Sink", "inputs": {"images": ["bad", 0]}},
        "3": {"class_type": "Sink", "inputs": {}},
    }
    result = validate_prompt(prompt, BASE)
    assert result.node_errors["bad"]["dependent_outputs"] == ["2"]
    assert result.node_errors["3"]["dependent_outputs"] == ["3"]


def test_async_validator_works_when_called_inside_a_running_loop() -> None:
    async def bad(cls: type, count: int) -> str:
        return "no"

    async def main() -> ValidationResult:
        return run_checked(classmethod(bad))[0]

    result = asyncio.run(main())
    assert only_error(result, "c")["details"] == "count - no"


def test_many_outputs_failing_the_same_way_format_one_traceback_and_log_a_bounded_number_of_lines(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """A prompt of thousands of broken outputs is answered in time linear in its size: the traceback of
    one code path is formatted once (it reads and parses source), and the log gets 20 outputs and a count."""
    import traceback

    from nodes.core import validation

    calls: list[int] = []
    real = traceback.format_tb
    monkeypatch.setattr(validation.traceback, "format_tb", lambda tb: calls.append(1) or real(tb))
    n = 2000
    prompt = {str(i): {"class_type": "SaveImage", "inputs": {"images": [f"gone{i}", 0], "filename_prefix": "x"}}
              for i in range(n)}
    with caplog.at_level("WARNING", logger=validation.log.name):
        result = validate_prompt(prompt, BASE, None)
    assert not result.ok and len(result.node_errors) == n
    first = result.node_errors["0"]["errors"][0]
    assert first["type"] == "exception_during_validation" and first["extra_info"]["traceback"]  # ComfyUI's shape
    assert len(calls) == 1, len(calls)
    assert len(caplog.records) <= 2 * validation.LOGGED_FAILURES + 1, len(caplog.records)
    assert "1980 more outputs failed validation" in caplog.records[-1].getMessage()
