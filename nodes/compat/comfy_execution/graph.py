"""ComfyUI's ``comfy_execution.graph``: the dynamic prompt and input lookup (spec §5.7).

:class:`DynamicPrompt` is the prompt as the run sees it: the submitted nodes plus the ephemeral nodes
added by expansion, each ephemeral node remembering its parent (the expanding node) and the node
it is displayed as. Hidden input ``DYNPROMPT`` gives custom nodes this object.
"""

from __future__ import annotations

from typing import Any

from nodes.compat.comfy_execution.graph_utils import ExecutionBlocker

__all__ = [
    "DependencyCycleError",
    "DynamicPrompt",
    "ExecutionBlocker",
    "NodeInputError",
    "NodeNotFoundError",
    "get_input_info",
]


class DependencyCycleError(Exception):
    """The graph (after expansion) contains a cycle."""


class NodeInputError(Exception):
    """A node asked for an input that does not exist or cannot be linked (e.g. by check_lazy_status)."""


class NodeNotFoundError(Exception):
    """No node with that id in the dynamic prompt."""


class DynamicPrompt:
    def __init__(self, original_prompt: dict[str, Any]) -> None:
        self.original_prompt = original_prompt
        self.ephemeral_prompt: dict[str, Any] = {}
        self.ephemeral_parents: dict[str, str] = {}
        self.ephemeral_display: dict[str, str] = {}

    def get_node(self, node_id: str) -> dict[str, Any]:
        """The node's ``{"class_type", "inputs", ...}``: ephemeral first, else the original prompt's."""
        if node_id in self.ephemeral_prompt:
            return self.ephemeral_prompt[node_id]
        if node_id in self.original_prompt:
            return self.original_prompt[node_id]
        raise NodeNotFoundError(f"Node {node_id} not found")

    def has_node(self, node_id: str) -> bool:
        return node_id in self.original_prompt or node_id in self.ephemeral_prompt

    def add_ephemeral_node(
        self, node_id: str, node_info: dict[str, Any], parent_id: str, display_id: str
    ) -> None:
        self.ephemeral_prompt[node_id] = node_info
        self.ephemeral_parents[node_id] = parent_id
        self.ephemeral_display[node_id] = display_id

    def get_real_node_id(self, node_id: str) -> str:
        """The original prompt node an ephemeral node descends from (follows parents)."""
        seen: set[str] = set()
        while node_id in self.ephemeral_parents and node_id not in seen:
            seen.add(node_id)
            node_id = self.ephemeral_parents[node_id]
        return node_id

    def get_parent_node_id(self, node_id: str) -> str | None:
        return self.ephemeral_parents.get(node_id)

    def get_display_node_id(self, node_id: str) -> str:
        """The node the UI shows for ``node_id`` (follows display links)."""
        seen: set[str] = set()
        while node_id in self.ephemeral_display and node_id not in seen:
            seen.add(node_id)
            node_id = self.ephemeral_display[node_id]
        return node_id

    def all_node_ids(self) -> set[str]:
        return set(self.original_prompt) | set(self.ephemeral_prompt)

    def get_original_prompt(self) -> dict[str, Any]:
        return self.original_prompt


def get_input_info(
    class_def: type, input_name: str, valid_inputs: dict[str, Any] | None = None
) -> tuple[Any, str | None, dict[str, Any] | None]:
    """``(input type, "required"|"optional"|"hidden", options dict)`` of one declared input.

    ``(None, None, None)`` when the class does not declare it. Hidden inputs declared as bare strings
    (``"UNIQUE_ID"``) give that string as type and ``{}`` as options.
    """
    if valid_inputs is None:
        valid_inputs = class_def.INPUT_TYPES()  # type: ignore[attr-defined]
    for category in ("required", "optional", "hidden"):
        section = valid_inputs.get(category) or {}
        if input_name not in section:
            continue
        info = section[input_name]
        if isinstance(info, str):
            return info, category, {}
        if isinstance(info, list | tuple) and len(info) > 0:
            extra = info[1] if len(info) > 1 and isinstance(info[1], dict) else {}
            return info[0], category, extra
        return info, category, {}
    return None, None, None
