"""Node class helpers and the exact ``/object_info`` entry (spec §3)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from nodes.registry import NodeRegistry
from nodes.schema import (
    declared_inputs,
    hidden_inputs,
    input_info,
    input_is_list,
    input_types,
    inputs_with_option,
    is_output_node,
    is_v3,
    node_info,
    object_info,
    output_is_list,
    return_types,
)


class SaveImage:
    DESCRIPTION = "Saves the input images to your ComfyUI output directory."
    CATEGORY = "image"
    OUTPUT_NODE = True
    RETURN_TYPES = ()
    FUNCTION = "save"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "The images to save."}),
                "filename_prefix": ("STRING", {"default": "ComfyUI", "tooltip": "..."}),
            },
            "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"},
        }


class PreviewImage(SaveImage):
    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"images": ("IMAGE",)}, "hidden": {"prompt": "PROMPT", "uid": "UNIQUE_ID"}}


class Plain:
    RETURN_TYPES = ("INT", "IMAGE")
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {"mode": (["a", "b"], {}), "n": ("INT", {"min": 0, "lazy": True})},
            "optional": {"extra": ("*", {"rawLink": True}), "n2": ("FLOAT",)},
        }


class Fancy:
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("picture",)
    OUTPUT_IS_LIST = (True,)
    OUTPUT_TOOLTIPS = ("the picture",)
    DEPRECATED = True
    EXPERIMENTAL = True
    API_NODE = False
    INPUT_IS_LIST = True
    RELATIVE_PYTHON_MODULE = "custom_nodes.fancy"
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {}}


class NotDeprecated(Fancy):
    DEPRECATED = False
    EXPERIMENTAL = False


class V3Node:
    @classmethod
    def define_schema(cls) -> object:
        return object()

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"image": ("IMAGE", {})}, "hidden": {"unique_id": ("UNIQUE_ID",)}}

    @classmethod
    def GET_NODE_INFO_V1(cls) -> dict[str, Any]:
        return {"input": {"required": {"image": ("IMAGE", {})}}, "name": "V3Node", "api_node": False}


class Broken:
    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        raise RuntimeError("boom")


def test_save_image_entry_is_exactly_the_documented_one() -> None:
    expected = json.loads(
        """{
      "input": {"required": {"images": ["IMAGE", {"tooltip": "The images to save."}],
                             "filename_prefix": ["STRING", {"default": "ComfyUI", "tooltip": "..."}]},
                "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}},
      "input_order": {"required": ["images", "filename_prefix"], "hidden": ["prompt", "extra_pnginfo"]},
      "output": [], "output_is_list": [], "output_name": [],
      "name": "SaveImage", "display_name": "Save Image",
      "description": "Saves the input images to your ComfyUI output directory.",
      "python_module": "nodes", "category": "image", "output_node": true}"""
    )
    info = node_info("SaveImage", SaveImage, "Save Image")
    assert info == expected
    assert list(info) == list(expected)  # key order as ComfyUI sends it
    assert json.loads(json.dumps(info)) == info


def test_description_is_inherited_and_defaults_apply() -> None:
    info = node_info("PreviewImage", PreviewImage)
    assert info["description"] == SaveImage.DESCRIPTION
    assert info["display_name"] == "PreviewImage"
    assert info["input"]["required"]["images"] == ["IMAGE"]

    plain = node_info("Plain", Plain)
    assert plain["description"] == ""
    assert plain["category"] == "sd"
    assert plain["python_module"] == "nodes"
    assert plain["output_node"] is False
    assert plain["output"] == ["INT", "IMAGE"]
    assert plain["output_is_list"] == [False, False]
    assert plain["output_name"] == ["INT", "IMAGE"]
    assert plain["input_order"] == {"required": ["mode", "n"], "optional": ["extra", "n2"]}
    assert plain["input"]["required"]["mode"] == [["a", "b"], {}]
    for key in ("output_tooltips", "deprecated", "experimental", "api_node"):
        assert key not in plain


def test_optional_fields_appear_only_when_defined_or_true() -> None:
    info = node_info("Fancy", Fancy, "Fancy!")
    assert info["output_name"] == ["picture"]
    assert info["output_is_list"] == [True]
    assert info["output_tooltips"] == ["the picture"]
    assert info["deprecated"] is True
    assert info["experimental"] is True
    assert info["api_node"] is False  # present because the attribute exists
    assert info["python_module"] == "custom_nodes.fancy"

    quiet = node_info("NotDeprecated", NotDeprecated)
    assert "deprecated" not in quiet
    assert "experimental" not in quiet


def test_v3_class_answers_with_its_own_v1_info() -> None:
    info = node_info("V3Node", V3Node, "V3 node")
    assert info["input"] == {"required": {"image": ["IMAGE", {}]}}
    assert info["api_node"] is False
    assert info["display_name"] == "V3 node"
    assert "input_order" not in info  # not synthesized by us


def test_object_info_skips_classes_that_raise(caplog: pytest.LogCaptureFixture) -> None:
    registry = NodeRegistry(
        classes={"SaveImage": SaveImage, "Broken": Broken, "Plain": Plain},
        display_names={"SaveImage": "Save Image"},
    )
    with caplog.at_level(logging.ERROR, logger="nodefarm.schema"):
        info = object_info(registry)
    assert list(info) == ["SaveImage", "Plain"]
    assert info["SaveImage"]["display_name"] == "Save Image"
    assert "Broken" in caplog.text


def test_input_info_sections_and_options() -> None:
    assert input_info(Plain, "mode") == (["a", "b"], "required", {})
    assert input_info(Plain, "n") == ("INT", "required", {"min": 0, "lazy": True})
    assert input_info(Plain, "n2") == ("FLOAT", "optional", {})
    assert input_info(SaveImage, "prompt") == ("PROMPT", "hidden", {})
    assert input_info(V3Node, "unique_id") == ("UNIQUE_ID", "hidden", {})
    assert input_info(Plain, "nope") is None
    types = {"required": {"x": ("INT", {"min": 3})}}
    assert input_info(Plain, "x", types) == ("INT", "required", {"min": 3})


def test_hidden_inputs_v1_and_v3_forms() -> None:
    assert hidden_inputs(SaveImage) == {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}
    assert hidden_inputs(V3Node) == {"unique_id": "UNIQUE_ID"}
    assert hidden_inputs(Plain) == {}


def test_hidden_entries_that_are_no_hidden_kind_are_not_filled() -> None:
    class ForOpen:
        @classmethod
        def INPUT_TYPES(cls) -> dict[str, Any]:
            return {"required": {}, "hidden": {"counter": ("*",), "odd": "NOT_A_KIND", "uid": ("UNIQUE_ID",)}}

    assert hidden_inputs(ForOpen) == {"uid": "UNIQUE_ID"}


def test_class_flags() -> None:
    class OutputOne:
        OUTPUT_NODE = 1

    assert is_output_node(SaveImage)
    assert not is_output_node(Plain)
    assert not is_output_node(OutputOne)  # ComfyUI requires OUTPUT_NODE is True
    assert return_types(Plain) == ("INT", "IMAGE")
    assert return_types(SaveImage) == ()
    assert output_is_list(Plain) == (False, False)
    assert output_is_list(Fancy) == (True,)
    assert input_is_list(Fancy) and not input_is_list(Plain)
    assert is_v3(V3Node) and not is_v3(Plain)
    assert declared_inputs(Plain) == ["mode", "n", "extra", "n2"]
    assert inputs_with_option(Plain, "lazy") == frozenset({"n"})
    assert inputs_with_option(Plain, "rawLink") == frozenset({"extra"})


def test_input_types_tolerates_missing_or_none() -> None:
    class NoInputs:
        pass

    class NoneInputs:
        @classmethod
        def INPUT_TYPES(cls) -> None:
            return None

    assert input_types(NoInputs) == {}
    assert input_types(NoneInputs) == {}
    assert input_types(Plain)["required"]["n"] == ("INT", {"min": 0, "lazy": True})
