"""V3 half of the semantics test pack: ``io.ComfyNode`` classes registered through ``comfy_entrypoint``.

(A pack is either V1, with NODE_CLASS_MAPPINGS, or V3, with comfy_entrypoint; so this is its own pack.)
"""

from __future__ import annotations

from comfy_api.latest import ComfyExtension, io, ui


class SemV3Scale(io.ComfyNode):
    """value * factor, with its unique id (a hidden input) in the ui."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="SemV3Scale",
            display_name="Scale (V3 test)",
            category="testing/semantics",
            inputs=[io.Float.Input("value", default=1.0), io.Float.Input("factor", default=2.0, min=0.0, max=10.0)],
            outputs=[io.Float.Output()],
            hidden=[io.Hidden.unique_id],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, value: float, factor: float) -> io.NodeOutput:
        result = value * factor
        return io.NodeOutput(result, ui=ui.PreviewText(f"{cls.hidden.unique_id}:{result}"))

    @classmethod
    def validate_inputs(cls, factor: float) -> bool | str:
        return True if factor != 3.0 else "no threes"


class SemV3AsyncDouble(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(node_id="SemV3AsyncDouble", category="testing/semantics",
                         inputs=[io.Float.Input("value")], outputs=[io.Float.Output()])

    @classmethod
    async def execute(cls, value: float) -> io.NodeOutput:
        return io.NodeOutput(value * 2)


class SemanticsV3(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return [SemV3Scale, SemV3AsyncDouble]


async def comfy_entrypoint() -> SemanticsV3:
    return SemanticsV3()
