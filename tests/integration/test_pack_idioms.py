"""Idioms of real custom node packs on a real farm (tests/custom_nodes/pack_idioms): links past the
declared outputs of a ``ByPassTypeTuple``, ``ui`` values that are iterators, and JS folders a pack
registers through ``nodes.EXTENSION_WEB_DIRS``."""

from __future__ import annotations

import time

import pytest
import requests

from tests.farm import Farm, assert_success, texts

pytestmark = pytest.mark.integration


def test_links_past_a_bypass_tuple_reach_every_returned_value(farm: Farm) -> None:
    start = float(int(time.time() * 1000) % 100000)  # fresh values: no cache hit from another run
    prompt = {
        "1": {"class_type": "IdiomFanOut", "inputs": {"start": start, "count": 4}},
        "2": {"class_type": "TestFloatOutput", "inputs": {"value": ["1", 0]}},
        "3": {"class_type": "TestFloatOutput", "inputs": {"value": ["1", 3]}},
        "4": {"class_type": "IdiomMapText", "inputs": {"value": ["1", 2], "times": 2}},
    }
    entry = farm.run(prompt)
    assert_success(entry)
    assert texts(entry, "2") == [repr(start)]
    assert texts(entry, "3") == [repr(start + 3)]
    assert texts(entry, "4") == [repr(start + 2)] * 2  # the ui's map object arrives as a list


def test_a_ui_value_that_is_a_map_arrives_as_a_list(farm: Farm) -> None:
    value = float(int(time.time() * 1000) % 100000) + 0.5
    prompt = {
        "1": {"class_type": "PrimitiveFloat", "inputs": {"value": value}},
        "2": {"class_type": "IdiomMapText", "inputs": {"value": ["1", 0], "times": 3}},
    }
    entry = farm.run(prompt)
    assert_success(entry)
    assert entry["outputs"]["2"] == {"text": [repr(value)] * 3}


def test_a_link_past_a_plain_tuple_is_still_rejected(farm: Farm) -> None:
    prompt = {
        "1": {"class_type": "PrimitiveFloat", "inputs": {"value": 1.0}},
        "2": {"class_type": "TestFloatOutput", "inputs": {"value": ["1", 1]}},
    }
    res = farm.post(prompt)
    assert res.status_code == 400
    (error,) = res.json()["node_errors"]["2"]["errors"]
    assert error["extra_info"]["exception_type"] == "IndexError"


def test_a_folder_put_into_extension_web_dirs_is_served(farm: Farm) -> None:
    res = requests.get(farm.url + "/extensions/pack_idioms_web/idioms.js", timeout=10)
    assert res.status_code == 200
    assert "packIdiomsLoaded" in res.text
    assert "/extensions/pack_idioms_web/idioms.js" in requests.get(farm.url + "/extensions", timeout=10).json()
