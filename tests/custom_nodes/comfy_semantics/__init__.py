"""Test pack for ComfyUI's execution semantics (spec/comfyui.md section 5) on the farm.

Nodes write "marks" (lines appended to files in ``$NODEFARM_TEST_MARKS``) so a test can tell which
node ran, how often, with what, and on which worker process. Every node is small and CPU-only.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import comfy.model_management
import comfy.utils
import torch
from comfy_execution.graph import DynamicPrompt
from comfy_execution.graph_utils import ExecutionBlocker, GraphBuilder, is_link
from server import PromptServer

CATEGORY = "testing/semantics"


def mark(name: str, text: str) -> None:
    folder = os.environ.get("NODEFARM_TEST_MARKS")
    if folder:
        with open(Path(folder) / name, "a") as fh:
            fh.write(text + "\n")


def describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"Tensor{list(value.shape)}"
    if isinstance(value, ExecutionBlocker):
        return "Blocker"
    return repr(value)


# ---- list mapping ----------------------------------------------------------------------------------


class SemMakeList:
    """``values`` "0.0,1.0" -> a list output of two floats (OUTPUT_IS_LIST)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"values": ("STRING", {"default": "0.0,1.0"})}}

    RETURN_TYPES = ("FLOAT",)
    OUTPUT_IS_LIST = (True,)
    FUNCTION = "run"
    CATEGORY = CATEGORY

    def run(self, values):
        return ([float(v) for v in values.split(",") if v.strip()],)


class SemCall:
    """A normal node: one call per list element; marks every call under ``tag``."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"a": ("FLOAT", {"forceInput": True}), "tag": ("STRING", {"default": "call"})},
                "optional": {"b": ("FLOAT", {"forceInput": True})}}

    RETURN_TYPES = ("FLOAT",)
    FUNCTION = "run"
    CATEGORY = CATEGORY

    def run(self, a, tag, b=None):
        mark(tag, json.dumps([a, b]))
        return (a * 10 + (b or 0),)


class SemListSum:
    """INPUT_IS_LIST: called once with whole lists."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"values": ("FLOAT", {"forceInput": True}), "tag": ("STRING", {"default": "sum"})}}

    RETURN_TYPES = ("FLOAT",)
    INPUT_IS_LIST = True
    FUNCTION = "run"
    CATEGORY = CATEGORY

    def run(self, values, tag):
        mark(tag[0], json.dumps([values, tag]))
        return (sum(values),)


class SemShow:
    """An output node taking anything (plain ``"*"``): ui text = a description of each value."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("*", {})}, "optional": {"tag": ("STRING", {"default": ""})}}

    RETURN_TYPES = ()
    FUNCTION = "run"
    OUTPUT_NODE = True
    CATEGORY = CATEGORY

    def run(self, value, tag=""):
        if tag:
            mark(tag, describe(value))
        return {"ui": {"text": [describe(value)]}}


class SemUnion:
    """Accepts ``IMAGE,FLOAT`` (a comma union)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("IMAGE,FLOAT", {})}}

    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"
    CATEGORY = CATEGORY

    def run(self, value):
        return (describe(value),)


# ---- lazy inputs -----------------------------------------------------------------------------------


class SemMark:
    """Passes ``value`` through, marking ``tag`` (proves whether it ran)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("FLOAT", {"default": 0.0}), "tag": ("STRING", {"default": "mark"})}}

    RETURN_TYPES = ("FLOAT",)
    FUNCTION = "run"
    CATEGORY = CATEGORY

    def run(self, value, tag):
        mark(tag, f"{os.environ.get('NODEFARM_WORKER_NAME')} {value}")
        return (value,)


class SemLazySwitch:
    """check_lazy_status asks only for the branch ``condition`` selects."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"condition": ("BOOLEAN", {"default": True}),
                             "on_true": ("*", {"lazy": True}), "on_false": ("*", {"lazy": True})}}

    RETURN_TYPES = ("*",)
    FUNCTION = "run"
    CATEGORY = CATEGORY

    def check_lazy_status(self, condition, on_true=None, on_false=None):
        if condition and on_true is None:
            return ["on_true"]
        if not condition and on_false is None:
            return ["on_false"]
        return []

    def run(self, condition, on_true=None, on_false=None):
        return (on_true if condition else on_false,)


class SemLazySwitchAsync(SemLazySwitch):
    """The same with ``async def check_lazy_status`` and an async function."""

    async def check_lazy_status(self, condition, on_true=None, on_false=None):
        await asyncio.sleep(0.01)
        return ["on_true"] if condition else ["on_false"]

    async def run(self, condition, on_true=None, on_false=None):
        await asyncio.sleep(0.01)
        return (on_true if condition else on_false,)


class SemLazyPick:
    """One lazy input it always wants (builds lazy dependency cycles inside expansions)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"a": ("FLOAT", {"lazy": True})}}

    RETURN_TYPES = ("FLOAT",)
    FUNCTION = "run"
    CATEGORY = CATEGORY

    def check_lazy_status(self, a=None):
        return ["a"] if a is None else []

    def run(self, a):
        return (a,)


# ---- ExecutionBlocker --------------------------------------------------------------------------


class SemBlock:
    """Returns an ExecutionBlocker (silent when ``message`` is empty) when ``block`` is on."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("FLOAT", {"default": 0.0}), "block": ("BOOLEAN", {"default": True}),
                             "message": ("STRING", {"default": ""})}}

    RETURN_TYPES = ("FLOAT",)
    FUNCTION = "run"
    CATEGORY = CATEGORY

    def run(self, value, block, message):
        if block:
            return (ExecutionBlocker(message or None),)
        return (value,)


# ---- expansion -------------------------------------------------------------------------------------


class SemExpandChain:
    """Expands into ``count`` MathOperation nodes, each adding 1: the result is start + count."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"start": ("FLOAT", {"default": 0.0}), "count": ("INT", {"default": 2, "min": 1})}}

    RETURN_TYPES = ("FLOAT",)
    FUNCTION = "run"
    CATEGORY = CATEGORY

    def run(self, start, count):
        g = GraphBuilder()
        value: Any = start
        for _ in range(count):
            value = g.node("MathOperation", a=value, b=1.0, operation="add").out(0)
        return {"result": (value,), "expand": g.finalize()}


class SemRecurse:
    """Adds 1 and expands into itself until ``n`` reaches 0 (an expansion that expands again)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("FLOAT", {"default": 0.0}), "n": ("INT", {"default": 2, "min": 0})}}

    RETURN_TYPES = ("FLOAT",)
    FUNCTION = "run"
    CATEGORY = CATEGORY

    def run(self, value, n):
        if n <= 0:
            return (value,)
        g = GraphBuilder()
        plus = g.node("MathOperation", a=value, b=1.0, operation="add")
        again = g.node("SemRecurse", value=plus.out(0), n=n - 1)
        return {"result": (again.out(0),), "expand": g.finalize()}


class SemExpandCycle:
    """Expands into nodes that wait on each other: strong links (``lazy`` off) or lazy requests."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"lazy": ("BOOLEAN", {"default": False}), "tag": ("STRING", {"default": ""})}}

    RETURN_TYPES = ("FLOAT",)
    FUNCTION = "run"
    CATEGORY = CATEGORY

    def run(self, lazy, tag):
        g = GraphBuilder()
        if lazy:
            first = g.node("SemLazyPick")
            second = g.node("SemLazyPick", a=first.out(0))
            first.set_input("a", second.out(0))
        else:
            first = g.node("MathOperation", b=1.0, operation="add")
            second = g.node("MathOperation", a=first.out(0), b=1.0, operation="add")
            first.set_input("a", second.out(0))
        return {"result": (second.out(0),), "expand": g.finalize()}


class SemExpandValues:
    """Puts its input *values* (a tensor, a tuple) into the graph it builds and into its result,
    as upstream nodes commonly do (``g.node("X", image=image)``)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE", {})}}

    RETURN_TYPES = ("IMAGE", "IMAGE", "*")
    FUNCTION = "run"
    CATEGORY = CATEGORY

    def run(self, image):
        g = GraphBuilder()
        inverted = g.node("ImageInvert", image=image)
        return {"result": (inverted.out(0), image, ("pair", 2)), "expand": g.finalize()}


# A while loop built by expansion (the execution-inversion pattern): LoopOpen and LoopClose frame a
# body; while the condition holds, LoopClose clones the body (found through DYNPROMPT) with the new
# value and expands into the clone, whose own LoopClose decides again.


class SemLoopOpen:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("FLOAT", {"default": 0.0})}}

    RETURN_TYPES = ("FLOW_CONTROL", "FLOAT")
    FUNCTION = "run"
    CATEGORY = CATEGORY

    def run(self, value):
        return ("stub", value)


class SemLess:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"a": ("FLOAT", {"forceInput": True}), "b": ("FLOAT", {"default": 0.0})}}

    RETURN_TYPES = ("BOOLEAN",)
    FUNCTION = "run"
    CATEGORY = CATEGORY

    def run(self, a, b):
        return (a < b,)


class SemLoopClose:
    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {"flow": ("FLOW_CONTROL", {"rawLink": True}), "again": ("BOOLEAN", {"forceInput": True}),
                         "value": ("FLOAT", {"forceInput": True})},
            "hidden": {"dynprompt": "DYNPROMPT", "unique_id": "UNIQUE_ID"},
        }

    RETURN_TYPES = ("FLOAT",)
    FUNCTION = "run"
    CATEGORY = CATEGORY

    def _upstream(self, node_id: str, dynprompt: DynamicPrompt, upstream: dict[str, list[str]]) -> None:
        for value in dynprompt.get_node(node_id)["inputs"].values():
            if is_link(value):
                parent = value[0]
                if parent not in upstream:
                    upstream[parent] = []
                    self._upstream(parent, dynprompt, upstream)
                upstream[parent].append(node_id)

    def _contained(self, node_id: str, upstream: dict[str, list[str]], contained: dict[str, bool]) -> None:
        for child in upstream.get(node_id, []):
            if child not in contained:
                contained[child] = True
                self._contained(child, upstream, contained)

    def run(self, flow, again, value, dynprompt, unique_id):
        if not again:
            return (value,)
        upstream: dict[str, list[str]] = {}
        self._upstream(unique_id, dynprompt, upstream)
        open_id = flow[0]
        contained: dict[str, bool] = {}
        self._contained(open_id, upstream, contained)
        contained[unique_id] = True
        contained[open_id] = True
        g = GraphBuilder()
        for nid in contained:
            original = dynprompt.get_node(nid)
            clone = g.node(original["class_type"], "Recurse" if nid == unique_id else nid)
            clone.set_override_display_id(nid)
        for nid in contained:
            original = dynprompt.get_node(nid)
            clone = g.lookup_node("Recurse" if nid == unique_id else nid)
            for k, v in original["inputs"].items():
                if is_link(v) and v[0] in contained:
                    parent = g.lookup_node("Recurse" if v[0] == unique_id else v[0])
                    clone.set_input(k, parent.out(v[1]))
                else:
                    clone.set_input(k, v)
        g.lookup_node(open_id).set_input("value", value)
        return {"result": (g.lookup_node("Recurse").out(0),), "expand": g.finalize()}


# A for loop built by expansion (the shape of upstream's for-loop test nodes): SemForOpen passes its
# counter and values on (and expands into a SemWhileOpen that nothing uses); SemForClose expands into
# "counter - 1" (SemIntMath), a SemToBool of it and a SemWhileClose, which either returns the values
# or clones everything between the open node and itself (found through DYNPROMPT) for the next
# iteration. ``value0`` is the counter; ``value1``/``value2`` are carried through the loop.

FLOW_VALUES = 3


class SemIntMath:
    @classmethod
    def INPUT_TYPES(cls):
        big = {"default": 0, "min": -(2**63), "max": 2**63 - 1}
        return {"required": {"a": ("INT", dict(big)), "b": ("INT", dict(big)),
                             "operation": (["add", "subtract", "multiply"],)}}

    RETURN_TYPES = ("INT",)
    FUNCTION = "run"
    CATEGORY = CATEGORY

    def run(self, a, b, operation):
        if a is None or b is None:
            raise ValueError(f"SemIntMath got a={a!r} b={b!r}")
        return ({"add": a + b, "subtract": a - b, "multiply": a * b}[operation],)


class SemToBool:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("*", {})}}

    RETURN_TYPES = ("BOOLEAN",)
    FUNCTION = "run"
    CATEGORY = CATEGORY

    def run(self, value):
        return (bool(value),)


class SemWhileOpen:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"condition": ("BOOLEAN", {"default": True})},
                "optional": {f"value{i}": ("*", {}) for i in range(FLOW_VALUES)}}

    RETURN_TYPES = ("FLOW_CONTROL",) + ("*",) * FLOW_VALUES
    FUNCTION = "run"
    CATEGORY = CATEGORY

    def run(self, condition, **values):
        return ("stub", *(values.get(f"value{i}") for i in range(FLOW_VALUES)))


class SemWhileClose:
    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {"flow": ("FLOW_CONTROL", {"rawLink": True}), "condition": ("BOOLEAN", {"forceInput": True})},
            "optional": {f"value{i}": ("*", {}) for i in range(FLOW_VALUES)},
            "hidden": {"dynprompt": "DYNPROMPT", "unique_id": "UNIQUE_ID"},
        }

    RETURN_TYPES = ("*",) * FLOW_VALUES
    FUNCTION = "run"
    CATEGORY = CATEGORY

    def run(self, flow, condition, dynprompt, unique_id, **values):
        if not condition:
            return tuple(values.get(f"value{i}") for i in range(FLOW_VALUES))
        # consumers of each node, over everything upstream of this node
        consumers: dict[str, set[str]] = {}
        todo = [unique_id]
        while todo:
            nid = todo.pop()
            for v in dynprompt.get_node(nid)["inputs"].values():
                if is_link(v):
                    if v[0] not in consumers:
                        consumers[v[0]] = set()
                        todo.append(v[0])
                    consumers[v[0]].add(nid)
        open_id = flow[0]
        body = {open_id, unique_id}
        todo = [open_id]
        while todo:
            for child in consumers.get(todo.pop(), ()):
                if child not in body:
                    body.add(child)
                    todo.append(child)

        def local(nid: str) -> str:
            return "Recurse" if nid == unique_id else nid

        g = GraphBuilder()
        for nid in sorted(body):
            g.node(dynprompt.get_node(nid)["class_type"], local(nid)).set_override_display_id(nid)
        for nid in sorted(body):
            clone = g.lookup_node(local(nid))
            for name, v in dynprompt.get_node(nid)["inputs"].items():
                inner = is_link(v) and v[0] in body
                clone.set_input(name, g.lookup_node(local(v[0])).out(v[1]) if inner else v)
        new_open = g.lookup_node(open_id)
        for i in range(FLOW_VALUES):
            new_open.set_input(f"value{i}", values.get(f"value{i}"))
        again = g.lookup_node("Recurse")
        return {"result": tuple(again.out(i) for i in range(FLOW_VALUES)), "expand": g.finalize()}


class SemForOpen:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"remaining": ("INT", {"default": 1, "min": 0})},
                "optional": {f"value{i}": ("*", {}) for i in range(1, FLOW_VALUES)},
                "hidden": {"value0": ("*",)}}

    RETURN_TYPES = ("FLOW_CONTROL", "INT") + ("*",) * (FLOW_VALUES - 1)
    FUNCTION = "run"
    CATEGORY = CATEGORY

    def run(self, remaining, **values):
        if "value0" in values:  # a clone made by SemWhileClose carries the counter here
            remaining = values["value0"]
        g = GraphBuilder()
        carried = [values.get(f"value{i}") for i in range(1, FLOW_VALUES)]
        g.node("SemWhileOpen", condition=remaining, value0=remaining,
               **{f"value{i}": carried[i - 1] for i in range(1, FLOW_VALUES)})
        return {"result": ("stub", remaining, *carried), "expand": g.finalize()}


class SemForClose:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"flow": ("FLOW_CONTROL", {"rawLink": True})},
                "optional": {f"value{i}": ("*", {"rawLink": True}) for i in range(1, FLOW_VALUES)}}

    RETURN_TYPES = ("*",) * (FLOW_VALUES - 1)
    FUNCTION = "run"
    CATEGORY = CATEGORY

    def run(self, flow, **values):
        g = GraphBuilder()
        left = g.node("SemIntMath", operation="subtract", a=[flow[0], 1], b=1)
        more = g.node("SemToBool", value=left.out(0))
        close = g.node("SemWhileClose", flow=flow, condition=more.out(0), value0=left.out(0),
                       **{f"value{i}": values.get(f"value{i}") for i in range(1, FLOW_VALUES)})
        return {"result": tuple(close.out(i) for i in range(1, FLOW_VALUES)), "expand": g.finalize()}


# ---- inputs ----------------------------------------------------------------------------------------


class SemRawLink:
    """Receives its ``link`` input as the link itself."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"link": ("FLOAT", {"rawLink": True})}}

    RETURN_TYPES = ()
    FUNCTION = "run"
    OUTPUT_NODE = True
    CATEGORY = CATEGORY

    def run(self, link):
        return {"ui": {"text": [json.dumps(link)]}}


class SemKwargs:
    """Declares only ``label``; every other linked input arrives through ``**kwargs``."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"label": ("STRING", {"default": ""})}}

    RETURN_TYPES = ()
    FUNCTION = "run"
    OUTPUT_NODE = True
    CATEGORY = CATEGORY

    def run(self, label, **kwargs):
        return {"ui": {"text": [json.dumps({"label": label, "kwargs": {k: kwargs[k] for k in sorted(kwargs)}})]}}


class SemHidden:
    """Reports its hidden inputs."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"tag": ("STRING", {"default": ""})},
                "hidden": {"unique_id": "UNIQUE_ID", "prompt": "PROMPT", "dynprompt": "DYNPROMPT",
                           "extra_pnginfo": "EXTRA_PNGINFO"}}

    RETURN_TYPES = ()
    FUNCTION = "run"
    OUTPUT_NODE = True
    CATEGORY = CATEGORY

    def run(self, tag, unique_id, prompt, dynprompt, extra_pnginfo):
        report = {
            "unique_id": unique_id,
            "prompt_nodes": sorted(prompt),
            "prompt_tag": prompt[unique_id]["inputs"]["tag"] if unique_id in prompt else None,
            "dynprompt": type(dynprompt).__name__,
            "dyn_class": dynprompt.get_node(unique_id)["class_type"],
            "dyn_real": dynprompt.get_real_node_id(unique_id),
            "extra_pnginfo": extra_pnginfo,
        }
        return {"ui": {"text": [json.dumps(report, sort_keys=True)]}}


class SemExpandHidden:
    """Expands into a SemHidden (so its UNIQUE_ID is an ephemeral id)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"tag": ("STRING", {"default": ""})}}

    RETURN_TYPES = ("FLOAT",)
    FUNCTION = "run"
    CATEGORY = CATEGORY

    def run(self, tag):
        g = GraphBuilder()
        g.node("SemHidden", tag=tag)
        return {"result": (1.0,), "expand": g.finalize()}


class SemTypes:
    """VALIDATE_INPUTS naming ``input_types``: the built-in link type check is skipped."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("FLOAT", {})}}

    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"
    CATEGORY = CATEGORY

    @classmethod
    def VALIDATE_INPUTS(cls, input_types):
        if input_types.get("value") in ("INT", "FLOAT"):
            return True
        return f"wants a number, got {input_types.get('value')}"

    def run(self, value):
        return (f"{type(value).__name__}:{value}",)


class SemTypedUnion:
    """``IMAGE,FLOAT`` input whose VALIDATE_INPUTS names it and ``input_types``: a linked value arrives
    as None, and only IMAGE or FLOAT sources pass."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("IMAGE,FLOAT", {})}}

    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"
    CATEGORY = CATEGORY

    @classmethod
    def VALIDATE_INPUTS(cls, value, input_types):
        if value is not None:
            return f"a linked value should arrive as None, got {describe(value)}"
        kind = input_types.get("value")
        if kind not in ("IMAGE", "FLOAT"):
            return f"Invalid type of value: {kind}"
        return True

    def run(self, value):
        return (describe(value),)


# ---- caching -----------------------------------------------------------------------------------


class SemAlwaysRun:
    """IS_CHANGED returns NaN: never cached."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"tag": ("STRING", {"default": "nan"})}}

    RETURN_TYPES = ("FLOAT",)
    FUNCTION = "run"
    CATEGORY = CATEGORY

    @classmethod
    def IS_CHANGED(cls, tag):
        return float("nan")

    def run(self, tag):
        mark(tag, "ran")
        return (1.0,)


class SemFreshInt:
    """Passes ``value`` on and marks ``tag``; IS_CHANGED returns NaN, so it and everything downstream
    run again every time."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("INT", {"default": 0}), "tag": ("STRING", {"default": "fresh"})}}

    RETURN_TYPES = ("INT",)
    FUNCTION = "run"
    CATEGORY = CATEGORY

    @classmethod
    def IS_CHANGED(cls, value, tag):
        return float("nan")

    def run(self, value, tag):
        mark(tag, "ran")
        return (value,)


class SemConstChanged(SemAlwaysRun):
    """IS_CHANGED returns a constant: cached like a plain node."""

    @classmethod
    def IS_CHANGED(cls, tag):
        return "same"


class SemNotIdempotent(SemMark):
    NOT_IDEMPOTENT = True


class SemInstance:
    """Counts its own calls: one instance per (node id, class) per worker process."""

    def __init__(self):
        self.calls = 0

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"tag": ("STRING", {"default": "instance"})}, "hidden": {"unique_id": "UNIQUE_ID"}}

    RETURN_TYPES = ("INT",)
    FUNCTION = "run"
    CATEGORY = CATEGORY

    @classmethod
    def IS_CHANGED(cls, tag, unique_id=None):
        return float("nan")

    def run(self, tag, unique_id):
        self.calls += 1
        mark(tag, json.dumps([unique_id, os.getpid(), id(self), self.calls]))
        return (self.calls,)


# ---- async, progress, events, interrupt --------------------------------------------------------


class SemAsync:
    """``async def`` node function."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("FLOAT", {"default": 0.0}), "seconds": ("FLOAT", {"default": 0.05})}}

    RETURN_TYPES = ("FLOAT",)
    FUNCTION = "run"
    CATEGORY = CATEGORY

    async def run(self, value, seconds):
        await asyncio.sleep(seconds)
        return (value * 2,)


class SemProgress:
    """Reports ``steps`` ProgressBar updates."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("FLOAT", {"default": 0.0}), "steps": ("INT", {"default": 3, "min": 1})}}

    RETURN_TYPES = ("FLOAT",)
    FUNCTION = "run"
    CATEGORY = CATEGORY

    def run(self, value, steps):
        bar = comfy.utils.ProgressBar(steps)
        for _ in range(steps):
            bar.update(1)
        return (value,)


class SemSpin:
    """Loops for up to ``seconds``, updating a ProgressBar each small step (interruptible there)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("FLOAT", {"default": 0.0}), "seconds": ("FLOAT", {"default": 20.0}),
                             "tag": ("STRING", {"default": "spin"})}}

    RETURN_TYPES = ("FLOAT",)
    FUNCTION = "run"
    CATEGORY = CATEGORY

    def run(self, value, seconds, tag):
        mark(tag, "start")
        steps = max(1, int(seconds / 0.02))
        bar = comfy.utils.ProgressBar(steps)
        for _ in range(steps):
            time.sleep(0.02)
            bar.update(1)
        mark(tag, "end")
        return (value,)


class SemNotify:
    """Custom events through PromptServer.instance.send_sync: one broadcast, one to the run's client."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("FLOAT", {"default": 0.0}), "tag": ("STRING", {"default": ""})},
                "hidden": {"unique_id": "UNIQUE_ID"}}

    RETURN_TYPES = ("FLOAT",)
    FUNCTION = "run"
    CATEGORY = CATEGORY

    def run(self, value, tag, unique_id):
        server = PromptServer.instance
        server.send_sync("sem.broadcast", {"node": unique_id, "tag": tag})
        server.send_sync("sem.direct", {"node": unique_id, "tag": tag}, server.client_id)
        comfy.model_management.throw_exception_if_processing_interrupted()
        return (value,)


class SemImage:
    """An IMAGE of any channel count (e.g. 2, which image nodes reject), filled with ``value``."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"width": ("INT", {"default": 4, "min": 1}), "height": ("INT", {"default": 4, "min": 1}),
                             "channels": ("INT", {"default": 3, "min": 1}), "value": ("FLOAT", {"default": 0.5})}}

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "run"
    CATEGORY = CATEGORY

    def run(self, width, height, channels, value):
        return (torch.full((1, height, width, channels), float(value)),)


NODE_CLASS_MAPPINGS = {
    "SemMakeList": SemMakeList,
    "SemCall": SemCall,
    "SemListSum": SemListSum,
    "SemShow": SemShow,
    "SemUnion": SemUnion,
    "SemMark": SemMark,
    "SemLazySwitch": SemLazySwitch,
    "SemLazySwitchAsync": SemLazySwitchAsync,
    "SemLazyPick": SemLazyPick,
    "SemBlock": SemBlock,
    "SemExpandChain": SemExpandChain,
    "SemRecurse": SemRecurse,
    "SemExpandValues": SemExpandValues,
    "SemExpandCycle": SemExpandCycle,
    "SemLoopOpen": SemLoopOpen,
    "SemLess": SemLess,
    "SemLoopClose": SemLoopClose,
    "SemIntMath": SemIntMath,
    "SemToBool": SemToBool,
    "SemWhileOpen": SemWhileOpen,
    "SemWhileClose": SemWhileClose,
    "SemForOpen": SemForOpen,
    "SemForClose": SemForClose,
    "SemRawLink": SemRawLink,
    "SemKwargs": SemKwargs,
    "SemHidden": SemHidden,
    "SemExpandHidden": SemExpandHidden,
    "SemTypes": SemTypes,
    "SemTypedUnion": SemTypedUnion,
    "SemAlwaysRun": SemAlwaysRun,
    "SemConstChanged": SemConstChanged,
    "SemFreshInt": SemFreshInt,
    "SemNotIdempotent": SemNotIdempotent,
    "SemInstance": SemInstance,
    "SemAsync": SemAsync,
    "SemProgress": SemProgress,
    "SemSpin": SemSpin,
    "SemNotify": SemNotify,
    "SemImage": SemImage,
}
