"""Progress bars per node for ``nodefarm submit --wait`` on a terminal.

On a farm several nodes of one run execute at once, so one line per *running* node is redrawn in
place at the bottom of the terminal (ANSI: cursor up, erase line); a node that finishes leaves that
live region as a permanent ``done`` line above it, so the region never grows past the nodes running
at once however large the graph. A node is finished when a ``progress_state`` frame says so (nodefarm
and newer ComfyUI send them); against a server that never sends one, the next ``executing`` ends the
previous node, as ComfyUI runs one node at a time. ``executed`` also ends a node.

Piped output keeps :class:`api.cli.submit.Follower`'s plain lines; this class is used only when
stderr is a terminal.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

REDRAW_S = 0.1  # progress frames between redraws are folded into one
UP = "\033[{n}F"  # cursor to the start of the line n lines up
ERASE = "\033[2K"


@dataclass
class Row:
    node: str
    label: str
    value: float = 0.0
    max: float = 0.0

    def bar(self, width: int) -> str:
        if self.max <= 0:
            return f"[{' ' * width}] running"
        done = min(width, int(width * self.value / self.max))
        return f"[{'#' * done}{'-' * (width - done)}] {self.value:g}/{self.max:g}"


class NodeBars:
    """One run's live region of per-node progress bars on a terminal stream."""

    def __init__(self, out: IO[str], class_of: Callable[[Any, Any], str], clock: Callable[[], float] = time.monotonic,
                 width: int | None = None) -> None:
        self.out = out
        self.class_of = class_of
        self.clock = clock
        self.width = width
        self.rows: dict[str, Row] = {}
        self.finished: set[str] = set()
        self.drawn = 0  # lines of the live region now on screen
        self.last_draw = 0.0
        self.states_seen = False  # the server sends progress_state: it says when a node finishes

    # ---- events ------------------------------------------------------------------------------
    def update(self, kind: str, data: dict[str, Any]) -> bool:
        """Show one /ws message of the run; False for the ones this view leaves to the caller."""
        node = data.get("node")
        if kind == "execution_start":
            self.note(f"execution_start {data.get('prompt_id')}")
        elif kind == "execution_cached":
            cached = data.get("nodes") or []
            if cached:
                self.note(f"cached: {len(cached)} nodes")
        elif kind == "executing" and node is not None:
            if not self.states_seen:
                for other in [n for n in self.rows if n != str(node)]:
                    self.finish(other)
            self.start(str(node), data.get("display_node"))
        elif kind == "progress" and node is not None:
            if str(node) in self.finished:
                return True  # a late frame of a node already done
            row = self.start(str(node), data.get("display_node"), draw=False)
            value, top = data.get("value"), data.get("max")
            if isinstance(value, (int, float)) and isinstance(top, (int, float)):
                row.value, row.max = float(value), float(top)
            self.draw(force=row.value >= row.max > 0)
        elif kind == "progress_state":
            self.states_seen = True
            nodes = data.get("nodes")
            for nid, state in (nodes.items() if isinstance(nodes, dict) else ()):
                if isinstance(state, dict) and state.get("state") == "finished" and str(nid) in self.rows:
                    self.finish(str(nid))
        elif kind == "executed" and node is not None:
            if str(node) in self.rows:
                self.finish(str(node))
        elif kind == "execution_success":
            self.close()
            self.note("execution_success")
        elif kind == "execution_error" and data.get("exception_type") == "ExecutionBlocked":
            self.note(f"blocked: {data.get('exception_message')}")
        else:
            return False
        return True

    def start(self, node: str, display: Any, draw: bool = True) -> Row:
        row = self.rows.get(node)
        if row is None:
            row = self.rows[node] = Row(node, f"{node} {self.class_of(node, display)}")
            self.finished.discard(node)
            if draw:
                self.draw(force=True)
        return row

    def finish(self, node: str) -> None:
        row = self.rows.pop(node, None)
        if row is None or node in self.finished:
            return
        self.finished.add(node)
        self.note(f"{row.label.ljust(self.label_width())}  [{'#' * self.bar_width()}] done")

    # ---- drawing -----------------------------------------------------------------------------
    def columns(self) -> int:
        return self.width or shutil.get_terminal_size((100, 24)).columns

    def label_width(self) -> int:
        return min(32, max([len(r.label) for r in self.rows.values()] + [16]))

    def bar_width(self) -> int:
        return max(10, min(40, self.columns() - self.label_width() - 20))

    def clear(self) -> None:
        if self.drawn:
            self.out.write(UP.format(n=self.drawn) + "".join(ERASE + "\n" for _ in range(self.drawn)) + UP.format(n=self.drawn))
            self.drawn = 0

    def note(self, text: str) -> None:
        """A permanent line above the live region."""
        self.clear()
        self.out.write(text[: self.columns() - 1] + "\n")
        self.draw(force=True)

    def draw(self, force: bool = False) -> None:
        now = self.clock()
        if not force and now - self.last_draw < REDRAW_S:
            return
        self.last_draw = now
        self.clear()
        width, bar = self.label_width(), self.bar_width()
        lines = [f"{r.label[:width].ljust(width)}  {r.bar(bar)}"[: self.columns() - 1] for r in self.rows.values()]
        self.out.write("".join(ERASE + line + "\n" for line in lines))
        self.drawn = len(lines)
        self.out.flush()

    def close(self) -> None:
        """The run ended: running rows become permanent lines (as they were) and the region is gone."""
        self.clear()
        width, bar = self.label_width(), self.bar_width()
        for row in self.rows.values():
            self.out.write(f"{row.label[:width].ljust(width)}  {row.bar(bar)}\n")
        self.rows.clear()
        self.out.flush()
