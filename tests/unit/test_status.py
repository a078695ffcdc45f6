"""``nodefarm status`` drawn from canned API answers (/system_stats, /queue, /api/jobs, /history),
``--watch`` in and out of a terminal, and ``submit --wait``'s per-node progress bars on a terminal."""

from __future__ import annotations

import argparse
import io
import re
from typing import Any

import pytest

from api.cli import status
from api.cli.progress import NodeBars

NOW = 1_800_000_000.0  # the snapshot's clock (s)
MS = 1000
RUN_A = "aaaaaaaa-1111-2222-3333-444444444444"  # running, one node on gpu0
RUN_B, RUN_C = "bbbbbbbb-0000-0000-0000-000000000000", "cccccccc-0000-0000-0000-000000000000"  # pending
DONE, FAILED = "dddddddd-0000-0000-0000-000000000000", "eeeeeeee-0000-0000-0000-000000000000"

PROMPT = {
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "tiny.safetensors"}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["4", 1]}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
    "3": {"class_type": "KSampler", "inputs": {"model": ["4", 0], "positive": ["6", 0], "latent_image": ["5", 0],
                                               "steps": 20}},
    "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
    "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0]}},
    "99": {"class_type": "PreviewImage", "inputs": {"images": ["8", 0]}},  # not an output of these runs
}
GIB = 2**30


def stats() -> dict[str, Any]:
    return {
        "system": {"os": "posix", "nodefarm": {"host": "api-host", "workers": 2}},
        "devices": [
            {"name": "cuda:0 NVIDIA H200 (gpu0@node1)", "type": "cuda", "index": 0, "vram_total": 140 * GIB,
             "vram_free": 100 * GIB, "worker": "gpu0@node1", "host": "node1", "heartbeat_age": 0.4, "restarts": 2,
             "running": [{"prompt_id": RUN_A, "node": "3"}], "blocklisted": None, "models": []},
            {"name": "cpu (w1@node2)", "type": "cpu", "index": None, "vram_total": 16 * GIB, "vram_free": 12 * GIB,
             "worker": "w1@node2", "host": "node2", "heartbeat_age": 1.25, "restarts": 0, "running": [],
             "blocklisted": {"until": NOW + 300, "reason": "died 3 times in 10 min"}, "models": []},
        ],
    }


def queue() -> dict[str, Any]:
    return {"queue_running": [[0, RUN_A, PROMPT, {}, ["9"]]],
            "queue_pending": [[1, RUN_B, PROMPT, {}, ["9"]], [2, RUN_C, {"1": PROMPT["5"]}, {}, ["1"]]]}


def active() -> list[dict[str, Any]]:
    return [
        {"id": RUN_A, "status": "in_progress", "create_time": (NOW - 75) * MS, "execution_start_time": (NOW - 12) * MS,
         "submitter": "alice"},
        {"id": RUN_B, "status": "pending", "create_time": (NOW - 30) * MS, "submitter": "bob"},
        {"id": RUN_C, "status": "pending", "create_time": (NOW - 5) * MS},
    ]


def history_entry(messages: list[Any], ok: bool) -> dict[str, Any]:
    return {"prompt": [3, DONE, PROMPT, {}, ["9"]], "outputs": {},
            "status": {"status_str": "success" if ok else "error", "completed": ok, "messages": messages}}


def snapshot() -> status.Snapshot:
    recent = [
        {"id": DONE, "status": "completed", "submitter": "alice", "execution_start_time": (NOW - 40) * MS,
         "execution_end_time": (NOW - 37.5) * MS},
        {"id": FAILED, "status": "failed", "execution_start_time": (NOW - 200) * MS, "execution_end_time": (NOW - 130) * MS},
    ]
    history = {
        DONE: history_entry([["execution_start", {"timestamp": 1}], ["execution_cached", {"nodes": ["4", "6"]}],
                             ["execution_success", {"timestamp": 2}]], ok=True),
        FAILED: history_entry([["execution_start", {}], ["execution_cached", {"nodes": []}],
                               ["execution_error", {"node_id": "3", "executed": ["4", "5", "6"]}]], ok=False),
    }
    return status.Snapshot(stats=stats(), queue=queue(), active=active(), recent=recent, history=history, taken=NOW)


def section(lines: list[str], title: str) -> list[str]:
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    end = next((i for i in range(start + 1, len(lines)) if not lines[i]), len(lines))
    return lines[start:end]


def cells(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


def test_workers_show_host_device_vram_busy_node_beat_restarts_and_blocklist() -> None:
    workers = section(status.render(snapshot(), "http://farm:8188"), "WORKERS")
    assert workers[0] == "WORKERS (2)"
    assert cells(workers[1]) == ["NAME", "HOST", "DEVICE", "VRAM used/total", "BUSY", "BEAT", "RESTARTS", "BLOCKLISTED"]
    assert cells(workers[2]) == ["gpu0@node1", "node1", "cuda:0 NVIDIA H200", "40.0/140.0 GiB",
                                 "3 KSampler (run aaaaaaaa)", "0.4s", "2", "-"]
    assert cells(workers[3]) == ["w1@node2", "node2", "cpu", "4.0/16.0 GiB", "idle", "1.2s", "-",
                                 "yes for 5m00s: died 3 times in 10 min"]


def test_queue_lists_running_then_pending_in_order_with_submitter_and_age() -> None:
    lines = section(status.render(snapshot()), "QUEUE")
    assert lines[0] == "QUEUE (1 running, 2 pending)"
    assert cells(lines[1]) == ["POS", "RUN", "STATUS", "SUBMITTER", "AGE", "RUNNING", "NODES"]
    assert cells(lines[2]) == ["-", RUN_A, "running", "alice", "1m15s", "12s", "7"]
    assert cells(lines[3]) == ["1", RUN_B, "pending", "bob", "30s", "-", "7"]
    assert cells(lines[4]) == ["2", RUN_C, "pending", "-", "5s", "-", "1"]


def test_recent_runs_show_status_duration_and_nodes_run_and_cached() -> None:
    lines = section(status.render(snapshot()), "RECENT RUNS")
    assert cells(lines[1]) == ["RUN", "STATUS", "SUBMITTER", "FINISHED", "DURATION", "NODES run/cached"]
    # completed: 9 needs 8, 3, 4, 5, 6 (not the unused 99); 4 and 6 were cached -> 4 ran
    assert cells(lines[2]) == [DONE, "completed", "alice", "37s ago", "2.5s", "4/2"]
    # failed: its error lists what ran
    assert cells(lines[3]) == [FAILED, "failed", "-", "2m10s ago", "1m10s", "3/0"]


def test_header_names_the_server_and_the_api_host() -> None:
    assert status.render(snapshot(), "http://farm:8188")[0].startswith("nodefarm http://farm:8188 (API host api-host) at ")


def test_an_empty_farm_says_so() -> None:
    lines = status.render(status.Snapshot(stats={"devices": []}, queue={}, taken=NOW))
    assert "  no live worker" in lines and "  empty" in lines and "  none yet" in lines


def test_node_counts_without_the_outputs_list_count_every_node() -> None:
    entry = {"prompt": [1, "x", {"1": {"class_type": "A", "inputs": {}}, "2": {"class_type": "B", "inputs": {"a": ["1", 0]}}}],
             "status": {"status_str": "success", "messages": []}}
    assert status.node_counts(entry) == (2, 0)
    assert status.node_counts(None) == (None, None)
    assert status.needed(PROMPT, ["9"]) == {"9", "8", "3", "4", "5", "6"}


class Screen(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def watch_ns() -> argparse.Namespace:
    return argparse.Namespace(server="http://farm:8188", token="", watch=True, interval=1.0, runs=5)


def run_watch(tty: bool, frames: int = 3) -> str:
    """--watch for ``frames`` refreshes, then Ctrl-C; the second snapshot fails (farm unreachable)."""
    out, slept = Screen(tty), []
    takes = iter([snapshot(), status.StatusError("cannot reach http://farm:8188: refused"), snapshot()])

    def take() -> status.Snapshot:
        item = next(takes)
        if isinstance(item, Exception):
            raise item
        return item

    def sleep(s: float) -> None:
        slept.append(s)
        if len(slept) == frames:
            raise KeyboardInterrupt

    assert status.watch(watch_ns(), out, tty, take, sleep) == 0
    assert slept == [1.0] * frames
    return out.getvalue()


def test_watch_redraws_in_place_on_a_terminal_and_ctrl_c_exits_0() -> None:
    text = run_watch(tty=True)
    assert text.count(status.CLEAR) == 3 and text.startswith(status.CLEAR)
    assert "cannot reach http://farm:8188: refused" in text and "(retrying)" in text
    assert text.endswith("\n")


def test_watch_prints_plain_snapshots_when_not_a_terminal() -> None:
    text = run_watch(tty=False)
    assert "\033" not in text
    assert text.count("WORKERS (2)") == 2 and text.count("\n\nnodefarm http://farm:8188") == 2


def test_one_shot_status_of_an_unreachable_farm_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    from api.cli.supervisor import free_port

    ns = argparse.Namespace(server=f"http://127.0.0.1:{free_port()}", token="", watch=False, interval=1.0, runs=5)
    assert status.run(ns, Screen(False)) == 1
    assert capsys.readouterr().err.startswith(f"error: cannot reach {ns.server}")


# ---- submit --wait on a terminal: a bar per node ---------------------------------------------


def bars(clock: list[float]) -> tuple[NodeBars, io.StringIO]:
    out = io.StringIO()
    return NodeBars(out, lambda node, display: str(PROMPT.get(str(node), {}).get("class_type", "?")),
                    clock=lambda: clock[0], width=80), out


def screen(text: str) -> list[str]:
    """What a terminal shows after ``text`` (lines; cursor-up, erase-line and newlines honoured)."""
    lines, row = [""], 0
    for token in re.split(r"(\033\[\d+F|\033\[2K|\n)", text):
        if not token:
            continue
        if token == "\n":
            row += 1
            if row == len(lines):
                lines.append("")
        elif token == "\033[2K":
            lines[row] = ""
        elif token.startswith("\033["):
            row = max(0, row - int(token[2:-1]))
        else:
            lines[row] += token
    return [line for line in lines if line]


def test_a_bar_per_running_node_then_a_done_line_when_it_finishes() -> None:
    clock = [0.0]
    view, out = bars(clock)
    view.update("execution_start", {"prompt_id": DONE})
    view.update("execution_cached", {"nodes": ["4", "6"]})
    view.update("executing", {"node": "5"})  # nodefarm: each start sends the registry too
    view.update("progress_state", {"prompt_id": DONE, "nodes": {"5": {"state": "running"}}})
    view.update("executing", {"node": "3"})
    clock[0] += 1
    view.update("progress", {"node": "3", "value": 10, "max": 20})
    shown = screen(out.getvalue())
    assert shown[:2] == [f"execution_start {DONE}", "cached: 2 nodes"]
    assert re.fullmatch(r"5 EmptyLatentImage\s+\[ +\] running", shown[2])
    assert re.fullmatch(r"3 KSampler\s+\[#{20}-{20}\] 10/20", shown[3])
    # nodefarm's progress_state says 5 finished: it leaves the live region as a permanent line
    view.update("progress_state", {"prompt_id": DONE, "nodes": {"5": {"state": "finished"}, "3": {"state": "running"}}})
    clock[0] += 1
    view.update("progress", {"node": "3", "value": 20, "max": 20})
    view.update("progress_state", {"prompt_id": DONE, "nodes": {"3": {"state": "finished"}}})
    view.update("execution_success", {})
    shown = screen(out.getvalue())
    assert [re.sub(r"\s+", " ", line) for line in shown[2:]] == [
        f"5 EmptyLatentImage [{'#' * 40}] done", f"3 KSampler [{'#' * 40}] done", "execution_success"]


def test_without_progress_state_the_next_node_ends_the_previous_one() -> None:
    view, out = bars([0.0])
    view.update("executing", {"node": "4"})
    view.update("executing", {"node": "8"})
    shown = screen(out.getvalue())
    assert re.sub(r"\s+", " ", shown[0]) == f"4 CheckpointLoaderSimple [{'#' * 40}] done"
    assert shown[1].startswith("8 VAEDecode") and shown[1].endswith("running")


def test_progress_frames_are_folded_into_one_redraw_per_tenth_of_a_second() -> None:
    clock = [0.0]
    view, out = bars(clock)
    view.update("executing", {"node": "3"})
    before = out.getvalue().count("\033[2K")
    for step in range(1, 10):
        view.update("progress", {"node": "3", "value": step, "max": 20})
    assert out.getvalue().count("\033[2K") == before  # same instant: no redraw
    clock[0] += 0.2
    view.update("progress", {"node": "3", "value": 10, "max": 20})
    assert out.getvalue().count("\033[2K") > before
