"""The ComfyUI modules custom nodes import: server, comfy_execution, comfy_api (V3), comfy.comfy_types, ..."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import struct
from collections.abc import Iterator
from typing import Any

import pytest
import torch

from nodes.boot import install_compat

install_compat()

from nodes.compat import folder_paths  # noqa: E402
from nodes.compat.comfy import utils as comfy_utils  # noqa: E402
from nodes.compat.comfy_api.latest import ComfyAPI, ComfyAPISync, io, ui  # noqa: E402
from nodes.compat.comfy_execution.graph import DynamicPrompt, NodeNotFoundError, get_input_info  # noqa: E402
from nodes.compat.comfy_execution.graph_utils import (  # noqa: E402
    ExecutionBlocker,
    GraphBuilder,
    add_graph_prefix,
    is_link,
)
from nodes.compat.comfy_execution.utils import CurrentNodeContext, get_executing_context  # noqa: E402
from nodes.compat.server import PromptServer  # noqa: E402

# ---- module identity ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "server",
        "protocol",
        "latent_preview",
        "comfy.comfy_types",
        "comfy.comfy_types.node_typing",
        "comfy.cli_args",
        "comfy.model_patcher",
        "comfy.samplers",
        "comfy.sd",
        "comfy.sample",
        "comfy_execution",
        "comfy_execution.graph",
        "comfy_execution.graph_utils",
        "comfy_execution.utils",
        "comfy_execution.validation",
        "comfy_api",
        "comfy_api.latest",
        "comfy_api.v0_0_1",
        "comfy_api.v0_0_2",
    ],
)
def test_comfyui_name_is_the_compat_module(name: str) -> None:
    assert importlib.import_module(name) is importlib.import_module(f"nodes.compat.{name}")


def test_from_imports_as_custom_nodes_write_them() -> None:
    from comfy_api.latest import io as latest_io
    from comfy_api.v0_0_2 import io as v2_io
    from comfy_execution.graph import ExecutionBlocker as GraphBlocker
    from protocol import BinaryEventTypes
    from server import PromptServer as ServerFromName

    assert ServerFromName is PromptServer
    assert latest_io is v2_io is io
    assert GraphBlocker is ExecutionBlocker
    assert (BinaryEventTypes.PREVIEW_IMAGE, BinaryEventTypes.TEXT, BinaryEventTypes.PREVIEW_IMAGE_WITH_METADATA) == (
        1,
        3,
        4,
    )


# ---- PromptServer -------------------------------------------------------------------------------


@pytest.fixture
def fresh_server() -> Iterator[PromptServer]:
    """A fresh PromptServer.instance for the test; the process-wide one is restored afterwards."""
    original = PromptServer.instance
    server = PromptServer()
    try:
        yield server
    finally:
        PromptServer.instance = original


def test_prompt_server_instance_exists_at_import() -> None:
    import server

    assert isinstance(server.PromptServer.instance, PromptServer)
    assert "custom_nodes_from_web" in server.PromptServer.instance.supports


def test_send_sync_reaches_the_bound_sink(fresh_server: PromptServer) -> None:
    received: list[tuple[Any, Any, Any]] = []
    fresh_server.send_sync("dropped", {"x": 0})  # no sink yet: dropped silently
    fresh_server.bind_sink(lambda event, data, sid: received.append((event, data, sid)))
    fresh_server.send_sync("my_node.progress", {"node_id": "5", "progress": 0.5}, "client-1")
    fresh_server.send_sync(2, ("PNG", "image", 512))
    asyncio.run(fresh_server.send("status", {"a": 1}))
    assert received == [
        ("my_node.progress", {"node_id": "5", "progress": 0.5}, "client-1"),
        (2, ("PNG", "image", 512), None),
        ("status", {"a": 1}, None),
    ]
    fresh_server.bind_sink(None)
    fresh_server.send_sync("after", {})
    assert len(received) == 3


def test_send_progress_text_is_binary_event_3(fresh_server: PromptServer) -> None:
    received: list[tuple[Any, Any, Any]] = []
    fresh_server.bind_sink(lambda event, data, sid: received.append((event, data, sid)))
    fresh_server.send_progress_text("héllo", "12", "sid-9")
    (event, payload, sid) = received[0]
    assert (event, sid) == (3, "sid-9")
    (length,) = struct.unpack(">I", payload[:4])
    assert payload[4 : 4 + length] == b"12"
    assert payload[4 + length :].decode("utf-8") == "héllo"


def test_routes_declared_by_a_pack_are_recorded(fresh_server: PromptServer) -> None:
    @PromptServer.instance.routes.get("/x")
    async def get_x(request: Any) -> Any:
        return None

    @PromptServer.instance.routes.post("/my_pack/save")
    async def save(request: Any) -> Any:
        return None

    async def via_router(request: Any) -> Any:
        return None

    PromptServer.instance.app.router.add_get("/via_router", via_router)
    PromptServer.instance.routes.static("/my_pack/static", "/tmp")
    assert get_x.__name__ == "get_x"  # decorators return the handler
    listed = [(route.method, route.path, route.handler) for route in PromptServer.instance.routes
              if hasattr(route, "method")]  # aiohttp's StaticDef has none
    assert ("GET", "/x", get_x) in listed and ("POST", "/my_pack/save", save) in listed
    records = PromptServer.instance.collected_routes()
    assert [(r.method, r.path) for r in records] == [
        ("GET", "/x"),
        ("POST", "/my_pack/save"),
        ("STATIC", "/my_pack/static"),
        ("GET", "/via_router"),
    ]
    assert records[2].kwargs["directory"] == "/tmp" and records[3].handler is via_router


def test_on_prompt_handlers_run_in_order_and_survive_errors(fresh_server: PromptServer) -> None:
    def broken(data: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("boom")

    fresh_server.add_on_prompt_handler(lambda data: {**data, "a": 1})
    fresh_server.add_on_prompt_handler(broken)
    fresh_server.add_on_prompt_handler(lambda data: {**data, "b": data["a"] + 1})
    assert fresh_server.trigger_on_prompt({"prompt": {}}) == {"prompt": {}, "a": 1, "b": 2}


def test_queue_updated_sends_status(fresh_server: PromptServer) -> None:
    received: list[tuple[Any, Any, Any]] = []
    fresh_server.bind_sink(lambda event, data, sid: received.append((event, data, sid)))
    fresh_server.queue_updated()
    assert received == [("status", {"status": {"exec_info": {"queue_remaining": 0}}}, None)]


# ---- GraphBuilder ---------------------------------------------------------------------------------


def test_graph_builder_ids_and_finalize() -> None:
    graph = GraphBuilder(prefix="p.")
    first = graph.node("StubInt", value=1)
    second = graph.node("Add", a=first.out(0), b=2)
    named = graph.node("Out", id="out", x=second.out(0))
    assert (first.id, second.id, named.id) == ("p.1", "p.2", "p.out")
    assert graph.node("Other", id="out") is named  # same id -> the existing node
    second.set_input("b", None)
    second.set_input("c", 3)
    assert second.get_input("c") == 3 and second.get_input("b") is None
    named.set_override_display_id("9")
    assert graph.finalize() == {
        "p.1": {"class_type": "StubInt", "inputs": {"value": 1}},
        "p.2": {"class_type": "Add", "inputs": {"a": ["p.1", 0], "c": 3}},
        "p.out": {"class_type": "Out", "inputs": {"x": ["p.2", 0]}, "override_display_id": "9"},
    }
    assert graph.lookup_node("2") is second and graph.lookup_node("p.2") is second
    graph.replace_node_output("2", 0, 42)
    assert named.get_input("x") == 42
    graph.remove_node("1")
    assert set(graph.finalize()) == {"p.2", "p.out"}


def test_graph_builder_default_prefix_follows_set_default_prefix() -> None:
    GraphBuilder.set_default_prefix("5", 0)
    a = GraphBuilder()
    b = GraphBuilder()
    assert (a.node("X").id, a.node("X").id, b.node("Y").id) == ("5.0.0.1", "5.0.0.2", "5.0.1.1")
    GraphBuilder.set_default_prefix("fc.0.0.3", 0, 0)
    assert GraphBuilder().node("Recurse", id="Recurse").id == "fc.0.0.3.0.0.Recurse"
    GraphBuilder.set_default_prefix("7", 2)
    assert GraphBuilder.alloc_prefix() == "7.2.0."


def test_add_graph_prefix_and_is_link() -> None:
    graph: dict[str, dict[str, Any]] = {"1": {"class_type": "A", "inputs": {"x": ["0", 0], "s": "str", "t": ("a", 1)}}}
    new_graph, outputs = add_graph_prefix(graph, [["1", 0], 5], "q.")
    assert new_graph == {"q.1": {"class_type": "A", "inputs": {"x": ["q.0", 0], "s": "str", "t": ("a", 1)}}}
    assert outputs == (["q.1", 0], 5)
    assert graph["1"]["inputs"]["x"] == ["0", 0]  # input left unchanged
    assert is_link(["3", 1]) and not is_link(("3", 1)) and not is_link(["3", "1"]) and not is_link([3, 1])


def test_execution_blocker_keeps_its_message() -> None:
    assert ExecutionBlocker("why").message == "why" and ExecutionBlocker(None).message is None


# ---- DynamicPrompt, get_input_info, executing context ------------------------------------------


def test_dynamic_prompt_ephemeral_nodes() -> None:
    original = {"1": {"class_type": "A", "inputs": {}}, "5": {"class_type": "Loop", "inputs": {}}}
    prompt = DynamicPrompt(original)
    prompt.add_ephemeral_node("5.0.0.1", {"class_type": "B", "inputs": {}}, "5", "5")
    prompt.add_ephemeral_node("5.0.0.1.0.0.2", {"class_type": "C", "inputs": {}}, "5.0.0.1", "5.0.0.1")
    prompt.add_ephemeral_node("1", {"class_type": "Shadow", "inputs": {}}, "5", "7")
    assert prompt.get_node("5.0.0.1")["class_type"] == "B"
    assert prompt.get_node("1")["class_type"] == "Shadow"  # ephemeral first
    assert prompt.get_real_node_id("5.0.0.1.0.0.2") == "5"
    assert prompt.get_parent_node_id("5.0.0.1.0.0.2") == "5.0.0.1"
    assert prompt.get_parent_node_id("5") is None
    assert prompt.get_display_node_id("5.0.0.1.0.0.2") == "5"
    assert prompt.all_node_ids() == {"1", "5", "5.0.0.1", "5.0.0.1.0.0.2"}
    assert prompt.has_node("5.0.0.1") and not prompt.has_node("nope")
    assert prompt.get_original_prompt() is original
    with pytest.raises(NodeNotFoundError):
        prompt.get_node("nope")


def test_get_input_info_sections() -> None:
    class Node:
        @classmethod
        def INPUT_TYPES(cls) -> dict[str, Any]:
            return {
                "required": {"image": ("IMAGE",), "n": ("INT", {"min": 1})},
                "optional": {"mode": (["a", "b"], {})},
                "hidden": {"unique_id": "UNIQUE_ID"},
            }

    assert get_input_info(Node, "image") == ("IMAGE", "required", {})
    assert get_input_info(Node, "n") == ("INT", "required", {"min": 1})
    assert get_input_info(Node, "mode") == (["a", "b"], "optional", {})
    assert get_input_info(Node, "unique_id") == ("UNIQUE_ID", "hidden", {})
    assert get_input_info(Node, "absent") == (None, None, None)


def test_current_node_context() -> None:
    assert get_executing_context() is None
    with CurrentNodeContext("p1", "5", 2) as context:
        assert get_executing_context() == context == ("p1", "5", 2)
        with CurrentNodeContext("p1", "6"):
            assert get_executing_context().node_id == "6"  # type: ignore[union-attr]
        assert get_executing_context().node_id == "5"  # type: ignore[union-attr]
    assert get_executing_context() is None


# ---- types --------------------------------------------------------------------------------------


def test_io_any_and_unions_compare_by_wildcard_ne() -> None:
    from comfy.comfy_types import IO

    assert not (IO.ANY != "IMAGE") and not ("IMAGE" != IO.ANY)  # reflected __ne__ on either side
    assert not (IO.NUMBER != "INT") and not ("FLOAT" != IO.NUMBER)
    assert IO.NUMBER != "STRING"
    assert not (IO.PRIMITIVE != IO.NUMBER)  # subset
    assert IO.IMAGE != "MASK"
    assert "*" != "IMAGE"  # a plain "*" string is no wildcard for !=
    assert IO.IMAGE == "IMAGE" and {IO.IMAGE: 1}["IMAGE"] == 1 and json.dumps(IO.ANY) == '"*"'


def test_validate_node_input() -> None:
    from comfy.comfy_types import IO
    from comfy_execution.validation import validate_node_input

    assert validate_node_input(IO.ANY, "IMAGE") and validate_node_input("IMAGE", IO.ANY)
    assert validate_node_input("IMAGE,MASK", "MASK")
    assert not validate_node_input("IMAGE", "MASK")
    assert not validate_node_input("IMAGE,MASK", "MASK", strict=True)
    assert validate_node_input("MASK", "IMAGE,MASK", strict=True)


def test_check_lazy_mixin_and_comfy_node_abc() -> None:
    from comfy.comfy_types import CheckLazyMixin, ComfyNodeABC

    assert CheckLazyMixin().check_lazy_status(a=None, b=1, c=None) == ["a", "c"]
    with pytest.raises(TypeError):
        ComfyNodeABC()  # type: ignore[abstract]
    assert not hasattr(ComfyNodeABC, "API_NODE")  # annotation only: /object_info adds api_node only if set


def test_cli_args_defaults() -> None:
    from comfy.cli_args import LatentPreviewMethod, args

    assert (args.disable_smart_memory, args.disable_metadata, args.cpu, args.multi_user) == (False,) * 4
    assert (args.preview_size, args.listen, args.port, args.verbose) == (512, "127.0.0.1", 8188, "INFO")
    assert args.preview_method == LatentPreviewMethod.NoPreviews == "none"


def test_model_stubs_import_and_raise_clearly() -> None:
    import comfy.sample
    import comfy.samplers
    import comfy.sd
    from comfy.model_patcher import ModelPatcher

    assert "euler" in comfy.samplers.KSampler.SAMPLERS and "karras" in comfy.samplers.KSampler.SCHEDULERS
    with pytest.raises(NotImplementedError, match="--comfyui"):
        comfy.sd.load_checkpoint_guess_config("x.safetensors")
    patcher = ModelPatcher(object(), "cpu", "cpu")
    clone = patcher.clone()
    clone.set_model_patch("p", "attn1_patch")
    assert patcher.model_options["transformer_options"] == {} and patcher.is_clone(clone)
    latent = torch.zeros(2, 4, 8, 8)
    noise = comfy.sample.prepare_noise(latent, 42)
    assert noise.shape == latent.shape and torch.equal(noise, comfy.sample.prepare_noise(latent, 42))
    assert torch.equal(comfy.sample.prepare_noise(latent, 42, [1])[0], noise[1])


# ---- V3 nodes -----------------------------------------------------------------------------------


class Scale(io.ComfyNode):
    calls: list[Any] = []

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="TestScale",
            display_name="Scale",
            category="image/test",
            description="scales",
            inputs=[
                io.Image.Input("image", tooltip="the image"),
                io.Float.Input("factor", default=1.0, min=0.0, max=4.0, step=0.5),
                io.Combo.Input("mode", options=["nearest", "bilinear"], default="nearest"),
                io.String.Input("prompt", optional=True, lazy=True),
            ],
            outputs=[io.Image.Output(tooltip="scaled"), io.Int.Output("width", display_name="width")],
            hidden=[io.Hidden.unique_id, io.Hidden.dynprompt],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, image: Any, factor: float, mode: str, prompt: str | None = None) -> io.NodeOutput:
        cls.calls.append((cls.hidden.unique_id, cls.hidden.prompt, cls.hidden.dynprompt, prompt))
        return io.NodeOutput(image * factor, 7, ui=ui.PreviewText(f"{mode}:{cls.hidden.unique_id}"))

    @classmethod
    def check_lazy_status(cls, image: Any, factor: float, mode: str, prompt: str | None = None) -> list[str]:
        return super().check_lazy_status(prompt=prompt) + [f"id={cls.hidden.unique_id}"]

    @classmethod
    def validate_inputs(cls, factor: float) -> bool | str:
        return True if factor != 3.0 else "no threes"


class Plain(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(node_id="TestPlain", outputs=[io.AnyType.Output()])

    @classmethod
    async def execute(cls) -> io.NodeOutput:
        graph = GraphBuilder()
        node = graph.node("TestScale", factor=2.0)
        return io.NodeOutput(node.out(0), expand=graph.finalize())


def test_v3_node_synthesized_v1_attributes() -> None:
    assert Scale.FUNCTION == "EXECUTE_NORMALIZED"
    assert Scale.RETURN_TYPES == ("IMAGE", "INT")
    assert Scale.RETURN_NAMES == ("IMAGE", "width")
    assert Scale.OUTPUT_IS_LIST == (False, False)
    assert (Scale.OUTPUT_NODE, Scale.INPUT_IS_LIST, Scale.NOT_IDEMPOTENT) == (True, False, False)
    assert (Scale.CATEGORY, Scale.DESCRIPTION) == ("image/test", "scales")
    assert not (Plain.RETURN_TYPES[0] != "IMAGE")  # AnyType output is a wildcard
    assert hasattr(Scale, "VALIDATE_INPUTS") and hasattr(Scale(), "check_lazy_status")
    assert not hasattr(Scale, "IS_CHANGED")
    assert not hasattr(Plain, "VALIDATE_INPUTS") and not hasattr(Plain(), "check_lazy_status")


def test_v3_input_types_is_v1_form() -> None:
    assert Scale.INPUT_TYPES() == {
        "required": {
            "image": ("IMAGE", {"tooltip": "the image"}),
            "factor": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 4.0, "step": 0.5}),
            "mode": ("COMBO", {"default": "nearest", "multiselect": False, "options": ["nearest", "bilinear"]}),
        },
        "optional": {"prompt": ("STRING", {"lazy": True, "multiline": False})},
        # output nodes get prompt + extra_pnginfo; "prompt" is also an input, so its hidden key differs
        "hidden": {
            "unique_id": "UNIQUE_ID",
            "dynprompt": "DYNPROMPT",
            "__hidden_prompt": "PROMPT",
            "extra_pnginfo": "EXTRA_PNGINFO",
        },
    }
    assert Plain.INPUT_TYPES() == {"required": {}}


def test_v3_node_info_v1_shape() -> None:
    info = json.loads(json.dumps(Scale.GET_NODE_INFO_V1()))
    assert info["input"]["hidden"] == {
        "unique_id": ["UNIQUE_ID"],
        "dynprompt": ["DYNPROMPT"],
        "prompt": ["PROMPT"],
        "extra_pnginfo": ["EXTRA_PNGINFO"],
    }
    assert info["input"]["required"]["image"] == ["IMAGE", {"tooltip": "the image"}]
    assert info["input_order"] == {
        "required": ["image", "factor", "mode"],
        "optional": ["prompt"],
        "hidden": ["unique_id", "dynprompt", "prompt", "extra_pnginfo"],
    }
    assert {k: v for k, v in info.items() if k not in ("input", "input_order")} == {
        "output": ["IMAGE", "INT"],
        "output_is_list": [False, False],
        "output_name": ["IMAGE", "width"],
        "output_tooltips": ["scaled", None],
        "name": "TestScale",
        "display_name": "Scale",
        "description": "scales",
        "python_module": "nodes",
        "category": "image/test",
        "output_node": True,
        "deprecated": False,
        "experimental": False,
        "api_node": False,
    }


def test_v3_execute_normalized_moves_hidden_values_to_cls_hidden() -> None:
    Scale.calls.clear()
    node = Scale()
    function = getattr(node, node.FUNCTION)
    result = function(
        image=torch.ones(1), factor=2.0, mode="bilinear", prompt="text", unique_id="12",
        dynprompt="DP", __hidden_prompt={"12": {}}, extra_pnginfo=None,
    )  # fmt: skip
    assert set(result) == {"result", "ui"}
    assert torch.equal(result["result"][0], torch.full((1,), 2.0)) and result["result"][1] == 7
    assert result["ui"] == {"text": ("bilinear:12",)}
    assert Scale.calls == [("12", {"12": {}}, "DP", "text")]
    assert Scale.hidden.unique_id is None  # the class itself is untouched


def test_v3_check_lazy_status_and_validate_inputs_see_hidden() -> None:
    node = Scale()
    lazy_check: Any = node.check_lazy_status  # the executor passes hidden values as kwargs too
    asked = lazy_check(image=1, factor=1.0, mode="nearest", prompt=None, unique_id="4")
    assert asked == ["prompt", "id=4"]
    assert inspect.getfullargspec(Scale.VALIDATE_INPUTS).args == ["factor"]
    assert Scale.VALIDATE_INPUTS(factor=1.0) is True and Scale.VALIDATE_INPUTS(factor=3.0) == "no threes"


def test_v3_async_execute_with_expand() -> None:
    assert inspect.iscoroutinefunction(Plain.EXECUTE_NORMALIZED)
    GraphBuilder.set_default_prefix("3", 0)
    result = asyncio.run(Plain.EXECUTE_NORMALIZED())
    assert result == {"result": (["3.0.0.1", 0],), "expand": {"3.0.0.1": {"class_type": "TestScale", "inputs": {"factor": 2.0}}}}


def test_v3_returns_are_normalized() -> None:
    normalize = io.normalize_output
    blocked = normalize(io.NodeOutput(1, block_execution="stop"))
    assert isinstance(blocked, ExecutionBlocker) and blocked.message == "stop"
    assert normalize(io.NodeOutput(1, 2)) == (1, 2)
    assert normalize(None) == () and normalize([1]) == (1,) and normalize(5) == (5,)
    assert normalize({"ui": ui.PreviewText("t"), "result": [1]}) == {"ui": {"text": ("t",)}, "result": (1,)}


def test_v3_fingerprint_inputs_becomes_is_changed() -> None:
    class Changing(io.ComfyNode):
        @classmethod
        def define_schema(cls) -> io.Schema:
            return io.Schema(node_id="Changing", inputs=[io.Int.Input("seed")], hidden=[io.Hidden.unique_id])

        @classmethod
        def fingerprint_inputs(cls, seed: int) -> str:
            return f"{seed}@{cls.hidden.unique_id}"

        @classmethod
        def execute(cls, seed: int) -> io.NodeOutput:
            return io.NodeOutput()

    assert Changing.IS_CHANGED(seed=3, unique_id="8") == "3@8"
    assert Changing.EXECUTE_NORMALIZED(seed=1, unique_id="8") == ()


def test_v3_extension_and_custom_types() -> None:
    from comfy_api.latest import ComfyExtension

    class Extension(ComfyExtension):
        async def get_node_list(self) -> list[type[io.ComfyNode]]:
            return [Scale, Plain]

    assert asyncio.run(Extension().get_node_list()) == [Scale, Plain]
    custom = io.Custom("MY_THING")
    assert custom.Input("a").get_io_type() == "MY_THING" and custom.Output().io_type == "MY_THING"
    assert io.Image.Input("a").get_io_type() == "IMAGE"  # Custom did not rebind the shared base classes
    multi = io.MultiType.Input("v", types=[io.Image, io.Mask])
    assert multi.get_io_type() == "IMAGE,MASK"


def test_v3_preview_image_saves_to_temp(tmp_path: Any) -> None:
    previous = folder_paths.get_temp_directory()
    folder_paths.set_temp_directory(str(tmp_path))
    try:
        preview = ui.PreviewImage(torch.rand(2, 4, 5, 3)).as_dict()
    finally:
        folder_paths.set_temp_directory(previous)
    assert preview["animated"] == (False,) and len(preview["images"]) == 2
    for entry in preview["images"]:
        assert entry["type"] == "temp" and (tmp_path / entry["subfolder"] / entry["filename"]).is_file()


# ---- progress -----------------------------------------------------------------------------------


@pytest.fixture
def progress_reports() -> Iterator[list[tuple[Any, ...]]]:
    reports: list[tuple[Any, ...]] = []
    previous = comfy_utils.PROGRESS_BAR_HOOK
    comfy_utils.set_progress_bar_global_hook(
        lambda value, total, preview, node_id=None: reports.append((value, total, preview, node_id))
    )
    try:
        yield reports
    finally:
        comfy_utils.set_progress_bar_global_hook(previous)


def test_comfy_api_set_progress_reports_for_the_executing_node(progress_reports: list[tuple[Any, ...]]) -> None:
    with CurrentNodeContext("p", "9"):
        ComfyAPISync().execution.set_progress(3, 10)
        asyncio.run(ComfyAPI().execution.set_progress(4, 10, node_id="2"))
    assert progress_reports == [(3, 10, None, "9"), (4, 10, None, "2")]
    with pytest.raises(ValueError):
        ComfyAPISync.execution.set_progress(1, 2)  # outside a node and no node_id


def test_comfy_api_set_progress_with_preview(progress_reports: list[tuple[Any, ...]]) -> None:
    ComfyAPISync().execution.set_progress(1, 2, node_id="3", preview_image=torch.zeros(1, 8, 6, 3))
    (_, _, preview, _) = progress_reports[0]
    assert preview[0] == "JPEG" and preview[1].size == (6, 8) and preview[2] == 512


def test_latent_preview_callback_drives_a_progress_bar(progress_reports: list[tuple[Any, ...]]) -> None:
    import latent_preview

    x0_store: dict[str, Any] = {}
    callback = latent_preview.prepare_callback(None, 3, x0_store)
    for step in range(3):
        callback(step, f"x0-{step}", None, 3)
    assert [(v, t) for v, t, _, _ in progress_reports] == [(1, 3), (2, 3), (3, 3)]
    assert x0_store == {"x0": "x0-2"} and latent_preview.get_previewer("cpu", None) is None
