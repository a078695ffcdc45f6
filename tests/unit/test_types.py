"""Socket type compatibility (spec §3, "``*`` semantics") and the farm's documented deviations."""

from __future__ import annotations

import pytest

from nodes.types import types_match


class AnyType(str):
    """The common custom-node wildcard: never "not equal"."""

    def __ne__(self, other: object) -> bool:
        return False


class SubsetType(str):
    """Like ComfyUI's ``IO``: "*" matches anything, otherwise one union must contain the other."""

    def __ne__(self, other: object) -> bool:
        if str(self) == "*" or other == "*":
            return False
        if not isinstance(other, str):
            return True
        a, b = frozenset(self.split(",")), frozenset(other.split(","))
        return not (a <= b or b <= a)


class NeverEqualType(str):
    """A str subclass that claims to differ from everything, even itself."""

    def __ne__(self, other: object) -> bool:
        return True


@pytest.mark.parametrize(
    ("received", "expected"),
    [
        ("IMAGE", "IMAGE"),
        ("IMAGE,FLOAT", "FLOAT"),
        ("INT", "FLOAT, INT"),
        (" MASK ", "MASK"),
    ],
)
def test_equal_or_overlapping_unions_match(received: str, expected: str) -> None:
    assert types_match(received, expected)


@pytest.mark.parametrize(
    ("received", "expected"),
    [("INT", "IMAGE"), ("INT", "IMAGE,FLOAT"), ("LATENT", "IMAGE,MASK"), ("", "IMAGE")],
)
def test_disjoint_types_do_not_match(received: str, expected: str) -> None:
    assert not types_match(received, expected)


def test_anytype_is_a_wildcard_on_either_side() -> None:
    assert types_match(AnyType("*"), "IMAGE")
    assert types_match("IMAGE", AnyType("*"))
    assert types_match(AnyType("anything"), "LATENT")


def test_plain_star_is_a_wildcard_on_either_side() -> None:
    # Deviation from ComfyUI 0.3.64, which rejects IMAGE into a plain "*" input.
    assert types_match("IMAGE", "*")
    assert types_match("*", "IMAGE")
    assert types_match("IMAGE", "MASK,*")


def test_comparison_runs_on_the_real_objects() -> None:
    # The subset rule answers "equal" for "IMAGE" vs "IMAGE,MASK" before the split rule runs.
    assert types_match(SubsetType("IMAGE"), "IMAGE,MASK")
    # A subclass saying "different" still falls through to the split rule.
    assert types_match(NeverEqualType("IMAGE"), "IMAGE")
    assert not types_match(NeverEqualType("IMAGE"), "MASK")


def test_combos_compare_as_the_frontend_does() -> None:
    assert types_match("COMBO", ["a", "b"])
    assert types_match(["a", "b"], "COMBO")
    assert types_match(["a", "b"], ["c"])
    assert types_match(["a"], ["a"])
    assert not types_match("STRING", ["a", "b"])
    assert not types_match(["a", "b"], "STRING")


def test_non_strings_only_match_when_equal() -> None:
    assert not types_match(None, "IMAGE")
    assert not types_match(3, "INT")
    assert types_match(3, 3)
