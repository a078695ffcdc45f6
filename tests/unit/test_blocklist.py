"""The blocklist's rules, pure: what counts against a worker, when it is blocklisted, when that ends,
and which failures look like the worker's (worker/blocklist.py)."""

from __future__ import annotations

import pytest
import torch

from worker.blocklist import Entry, counts, culprits, describe, live_entry, verdict, worker_fault

NOW = 1_000_000.0
WINDOW = 600.0


def test_three_failures_in_the_window_blocklist_a_worker_for_the_window() -> None:
    failures = [(NOW - 500, "died"), (NOW - 200, "TestX failed there"), (NOW, "restarted with 1 node(s) running")]
    entry = verdict(failures, NOW, threshold=3, window=WINDOW)
    assert entry is not None
    assert (entry.since, entry.until, entry.failures) == (NOW, NOW + WINDOW, 3)
    assert entry.reason == "3 failures in 600 s; the last: restarted with 1 node(s) running"


def test_two_failures_are_not_enough() -> None:
    assert verdict([(NOW - 10, "a"), (NOW, "b")], NOW, threshold=3, window=WINDOW) is None


def test_failures_older_than_the_window_do_not_count() -> None:
    failures = [(NOW - 601, "old"), (NOW - 100, "a"), (NOW, "b")]
    assert verdict(failures, NOW, threshold=3, window=WINDOW) is None
    assert not counts(NOW - WINDOW, NOW, WINDOW) and counts(NOW - WINDOW + 0.001, NOW, WINDOW)


def test_a_threshold_of_zero_turns_the_blocklist_off() -> None:
    assert verdict([(NOW, "a")] * 10, NOW, threshold=0, window=WINDOW) is None


def test_an_entry_expires_by_itself() -> None:
    entry = Entry(since=NOW, until=NOW + WINDOW, reason="r", failures=3)
    assert live_entry(entry, NOW + WINDOW - 1) == entry
    assert live_entry(entry, NOW + WINDOW) is None
    assert live_entry(None, NOW) is None


def test_an_entry_round_trips_through_json_and_bad_json_is_no_entry() -> None:
    import json

    entry = Entry(since=NOW, until=NOW + 1, reason="why", failures=4)
    assert Entry.from_json(json.dumps(entry.to_json())) == entry
    assert Entry.from_json(b"{not json") is None
    assert Entry.from_json('{"since": 1}') is None
    assert Entry.from_json(None) is None


def test_a_success_elsewhere_charges_every_other_worker_that_failed_the_same_key_lately() -> None:
    record = {"class": "K", "error": "E", "workers": {"w0": NOW - 5, "w2": NOW - 700, "w1": NOW - 1}}
    assert culprits(record, "w1", NOW, WINDOW) == ["w0"]  # not the winner itself, not a stale failure
    assert culprits(record, "w3", NOW, WINDOW) == ["w0", "w1"]
    assert culprits({"workers": "junk"}, "w1", NOW, WINDOW) == []


@pytest.mark.parametrize("exc", [
    RuntimeError("CUDA error: an illegal memory access was encountered"),
    RuntimeError("CUBLAS_STATUS_EXECUTION_FAILED when calling `cublasSgemm`"),
    torch.AcceleratorError("CUDA error: unspecified launch failure") if hasattr(torch, "AcceleratorError")
    else RuntimeError("CUDA error: unspecified launch failure"),
    ModuleNotFoundError("No module named 'onnxruntime'"),
    RuntimeError("node class Foo is not installed on worker w0@test"),
    OSError(28, "No space left on device"),
    MemoryError(),
])
def test_failures_that_look_like_the_workers_fault(exc: BaseException) -> None:
    assert worker_fault(exc)


@pytest.mark.parametrize("exc", [
    ValueError("broken on purpose"),
    RuntimeError("mat1 and mat2 shapes cannot be multiplied (1x4 and 3x4)"),  # the prompt's, on any GPU
    torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB"),  # too big, not broken
    KeyError("model"),
])
def test_failures_that_do_not(exc: BaseException) -> None:
    assert not worker_fault(exc)


def test_a_reason_names_the_error_briefly() -> None:
    assert describe(RuntimeError("CUDA error: x\nmore lines")) == "RuntimeError: CUDA error: x"
    assert describe(MemoryError()) == "MemoryError"
    assert len(describe(ValueError("y" * 5000))) <= 300
