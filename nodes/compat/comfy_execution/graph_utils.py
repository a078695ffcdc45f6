"""ComfyUI's ``comfy_execution.graph_utils``: building expansion subgraphs (spec §5.6, §5.7).

A node expands by returning ``{"result": (...), "expand": GraphBuilder(...).finalize()}``. Node ids
are ``prefix + (explicit id or a counter 1, 2, ...)``; the default prefix is
``"<parent id>.<call index>.<graph index>."``, which the executor arranges by calling
:meth:`GraphBuilder.set_default_prefix` before every node call. Each builder created without an
explicit prefix takes the next graph index, so two builders of one call never collide.
"""

from __future__ import annotations

from typing import Any, ClassVar

from nodes.core.graph import is_link


class ExecutionBlocker:
    """Returned as an output value (or as a node's whole return) to skip every consumer of it.

    With a ``message`` the first consumer reports an ``execution_error`` (``ExecutionBlocked``);
    with ``None`` blocking is silent (spec §5.6).
    """

    def __init__(self, message: str | None) -> None:
        self.message = message

    def __repr__(self) -> str:
        return f"ExecutionBlocker({self.message!r})"


class Node:
    """One node of a :class:`GraphBuilder` graph."""

    def __init__(self, id: str, class_type: str, inputs: dict[str, Any]) -> None:
        self.id = id
        self.class_type = class_type
        self.inputs = inputs
        self.override_display_id: str | None = None

    def out(self, index: int) -> list[Any]:
        """A link to this node's output ``index``: ``[id, index]``."""
        return [self.id, index]

    def set_input(self, key: str, value: Any) -> None:
        """Set input ``key``; ``None`` removes it."""
        if value is None:
            self.inputs.pop(key, None)
        else:
            self.inputs[key] = value

    def get_input(self, key: str) -> Any:
        return self.inputs.get(key)

    def set_override_display_id(self, override_display_id: str | None) -> None:
        self.override_display_id = override_display_id

    def serialize(self) -> dict[str, Any]:
        serialized: dict[str, Any] = {"class_type": self.class_type, "inputs": self.inputs}
        if self.override_display_id is not None:
            serialized["override_display_id"] = self.override_display_id
        return serialized

    def __repr__(self) -> str:
        return f"Node({self.id!r}, {self.class_type!r})"


class GraphBuilder:
    """Builds the ``expand`` graph of a node. ``GraphBuilder(prefix=None)``."""

    _default_prefix_root: ClassVar[str] = ""
    _default_prefix_call_index: ClassVar[int] = 0
    _default_prefix_graph_index: ClassVar[int] = 0

    def __init__(self, prefix: str | None = None) -> None:
        self.prefix = prefix if prefix is not None else GraphBuilder.alloc_prefix()
        self.nodes: dict[str, Node] = {}
        self.id_gen = 1

    @classmethod
    def set_default_prefix(cls, prefix_root: str, call_index: int, graph_index: int = 0) -> None:
        """Make builders without a prefix use ``"<prefix_root>.<call_index>.<graph_index>."`` next."""
        GraphBuilder._default_prefix_root = str(prefix_root)
        GraphBuilder._default_prefix_call_index = call_index
        GraphBuilder._default_prefix_graph_index = graph_index

    @classmethod
    def alloc_prefix(
        cls, root: str | None = None, call_index: int | None = None, graph_index: int | None = None
    ) -> str:
        """The next default prefix; each allocation without an explicit ``graph_index`` advances it."""
        if root is None:
            root = GraphBuilder._default_prefix_root
        if call_index is None:
            call_index = GraphBuilder._default_prefix_call_index
        if graph_index is None:
            graph_index = GraphBuilder._default_prefix_graph_index
            GraphBuilder._default_prefix_graph_index += 1
        return f"{root}.{call_index}.{graph_index}."

    def _full_id(self, id: str) -> str:
        return id if id in self.nodes or id.startswith(self.prefix) else self.prefix + id

    def node(self, class_type: str, id: str | None = None, **kwargs: Any) -> Node:
        """Add (or return the existing) node ``prefix + id``; ``id`` defaults to a counter 1, 2, ..."""
        if id is None:
            id = str(self.id_gen)
            self.id_gen += 1
        full_id = self.prefix + str(id)
        existing = self.nodes.get(full_id)
        if existing is not None:
            return existing
        created = Node(full_id, class_type, dict(kwargs))
        self.nodes[full_id] = created
        return created

    def lookup_node(self, id: str) -> Node | None:
        """The node with id ``id`` (unprefixed or full)."""
        return self.nodes.get(self.prefix + id) or self.nodes.get(id)

    def remove_node(self, id: str) -> None:
        if self.prefix + id in self.nodes:
            del self.nodes[self.prefix + id]
        else:
            self.nodes.pop(id, None)

    def replace_node_output(self, node_id: str, index: int, new_value: Any) -> None:
        """Replace every link to output ``index`` of ``node_id`` by ``new_value`` (None removes the input)."""
        full_id = self._full_id(node_id)
        for graph_node in self.nodes.values():
            for key, value in list(graph_node.inputs.items()):
                if is_link(value) and value[0] == full_id and value[1] == index:
                    graph_node.set_input(key, new_value)

    def finalize(self) -> dict[str, dict[str, Any]]:
        """The graph as ``{node_id: {"class_type", "inputs"[, "override_display_id"]}}``."""
        return {node_id: graph_node.serialize() for node_id, graph_node in self.nodes.items()}


def _prefix_value(value: Any, prefix: str) -> Any:
    if is_link(value):
        return [prefix + value[0], value[1]]
    return value


def add_graph_prefix(
    graph: dict[str, dict[str, Any]], outputs: list[Any] | tuple[Any, ...], prefix: str
) -> tuple[dict[str, dict[str, Any]], tuple[Any, ...]]:
    """Prefix every node id of ``graph`` and every link in its inputs and in ``outputs``.

    Returns ``(new_graph, new_outputs)``; the arguments are left unchanged.
    """
    new_graph: dict[str, dict[str, Any]] = {}
    for node_id, node_info in graph.items():
        new_info = dict(node_info)
        new_info["inputs"] = {
            key: _prefix_value(value, prefix) for key, value in node_info.get("inputs", {}).items()
        }
        new_graph[prefix + node_id] = new_info
    new_outputs = tuple(_prefix_value(value, prefix) for value in outputs)
    return new_graph, new_outputs
