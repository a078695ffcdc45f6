"""The prompt graph, pure: links, lazy inputs and which nodes a run must execute.

No redis, celery, flask or torch. A graph is the API-format prompt (``{node_id: {"class_type",
"inputs"}}``) plus ephemeral nodes from expansion; the facts this module needs about classes
(which inputs are lazy) arrive as plain data (:class:`NodeFacts`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


def is_link(value: Any) -> bool:
    """ComfyUI's link: ``[source_node_id (str), output_index (int or float)]``; a tuple is a value.

    The one definition of a link in nodefarm (validation, scheduling, execution and the compat
    ``comfy_execution.graph_utils.is_link`` all use it), with ComfyUI's exact rule.
    """
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], int | float)


def walk_links(value: Any) -> list[list]:
    """Every link inside a value (a link itself, or nested in lists and tuples), in order."""
    if is_link(value):
        return [value]
    if isinstance(value, list | tuple):
        return [link for v in value for link in walk_links(v)]
    return []


def links(node: Mapping[str, Any]) -> list[tuple[str, str, int]]:
    """``(input_name, source_id, socket)`` of every link input, in input order."""
    return [(name, v[0], int(v[1])) for name, v in node.get("inputs", {}).items() if is_link(v)]


def sources(node: Mapping[str, Any]) -> list[str]:
    """Link sources of a node, each once, in input order."""
    return list(dict.fromkeys(src for _name, src, _socket in links(node)))


@dataclass(frozen=True)
class NodeFacts:
    """What the scheduler must know of a node's class: its lazy and rawLink input names, output flag."""

    lazy: frozenset[str] = frozenset()
    raw_link: frozenset[str] = frozenset()
    output: bool = False


@dataclass
class Needed:
    """Result of :func:`needed_nodes`: nodes to add and the strong edges between them."""

    nodes: list[str] = field(default_factory=list)
    deps: dict[str, list[str]] = field(default_factory=dict)


def strong_sources(node: Mapping[str, Any], facts: NodeFacts) -> list[str]:
    """Sources a node must wait for: links on inputs that are not lazy.

    A rawLink input still waits for its source, as upstream's ``TopologicalSort.add_node`` does (only
    lazy inputs are skipped there); the node then receives the link instead of the value.
    """
    out: list[str] = []
    for name, src, _ in links(node):
        if name in facts.lazy:
            continue
        if src not in out:
            out.append(src)
    return out


def needed_nodes(roots: Iterable[str], strong: Callable[[str], list[str]], skip: Collection[str]) -> Needed:
    """Walk from ``roots`` like ComfyUI's TopologicalSort.add_node.

    A link source is added (with a blocking edge) unless it is in ``skip`` (already cached, done or
    already scheduled) or the input is lazy: ``strong(node)`` gives a node's blocking sources
    (:func:`strong_sources`). Returns the new nodes in discovery order with their strong
    dependencies (which may include skipped nodes that are scheduled but not yet done; the caller
    filters those it knows to be done).
    """
    result = Needed()
    stack = list(roots)
    seen: set[str] = set()
    while stack:
        nid = stack.pop()
        if nid in seen or nid in skip:
            continue
        seen.add(nid)
        result.nodes.append(nid)
        deps = strong(nid)
        result.deps[nid] = deps
        for src in deps:
            if src not in seen and src not in skip:
                stack.append(src)
    return result
