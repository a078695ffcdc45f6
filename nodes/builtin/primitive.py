"""Constants and arithmetic: PrimitiveInt/Float/String/StringMultiline/Boolean, MathOperation."""

from __future__ import annotations

import sys
from typing import Any

OPERATIONS = ["add", "subtract", "multiply", "divide"]


class _Primitive:
    FUNCTION = "execute"
    CATEGORY = "utils/primitive"

    def execute(self, value: Any) -> tuple[Any]:
        return (value,)


class PrimitiveString(_Primitive):
    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"value": ("STRING", {})}}

    RETURN_TYPES = ("STRING",)


class PrimitiveStringMultiline(_Primitive):
    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"value": ("STRING", {"multiline": True})}}

    RETURN_TYPES = ("STRING",)


class PrimitiveInt(_Primitive):
    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"value": ("INT", {
            "default": 0, "min": -sys.maxsize, "max": sys.maxsize, "control_after_generate": True,
        })}}

    RETURN_TYPES = ("INT",)


class PrimitiveFloat(_Primitive):
    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"value": ("FLOAT", {"default": 0.0, "min": -sys.maxsize, "max": sys.maxsize})}}

    RETURN_TYPES = ("FLOAT",)


class PrimitiveBoolean(_Primitive):
    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"value": ("BOOLEAN", {})}}

    RETURN_TYPES = ("BOOLEAN",)


class MathOperation:
    """nodefarm's own: one arithmetic operation on two floats."""

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "a": ("FLOAT", {"default": 0.0, "min": -sys.maxsize, "max": sys.maxsize, "step": 0.001}),
                "b": ("FLOAT", {"default": 0.0, "min": -sys.maxsize, "max": sys.maxsize, "step": 0.001}),
                "operation": (OPERATIONS,),
            }
        }

    RETURN_TYPES = ("FLOAT",)
    FUNCTION = "calculate"
    CATEGORY = "utils/math"
    DESCRIPTION = "Adds, subtracts, multiplies or divides two numbers."

    def calculate(self, a: float, b: float, operation: str) -> tuple[float]:
        a, b = float(a), float(b)
        if operation == "add":
            return (a + b,)
        if operation == "subtract":
            return (a - b,)
        if operation == "multiply":
            return (a * b,)
        if operation == "divide":
            if b == 0:
                raise ValueError(f"MathOperation: cannot divide {a} by zero")
            return (a / b,)
        raise ValueError(f"MathOperation: unknown operation {operation!r}; expected one of {OPERATIONS}")


NODE_CLASS_MAPPINGS: dict[str, type] = {
    "PrimitiveString": PrimitiveString,
    "PrimitiveStringMultiline": PrimitiveStringMultiline,
    "PrimitiveInt": PrimitiveInt,
    "PrimitiveFloat": PrimitiveFloat,
    "PrimitiveBoolean": PrimitiveBoolean,
    "MathOperation": MathOperation,
}

NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {
    "PrimitiveString": "String",
    "PrimitiveStringMultiline": "String (Multiline)",
    "PrimitiveInt": "Int",
    "PrimitiveFloat": "Float",
    "PrimitiveBoolean": "Boolean",
    "MathOperation": "Math Operation",
}
