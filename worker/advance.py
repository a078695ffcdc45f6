"""Advancing a run: the one function that applies a node task's outcome to its run.

:func:`advance` applies :class:`~nodes.core.state.Done` with the Redis Function ``nf_done`` (one
round trip, touching only what changes); every other outcome (lazy inputs pending, an expansion, a
failure, an interrupt, lost inputs) goes through the pure state machine in one optimistic
transaction (:func:`worker.runstore.transact`). Either way the step's events are written in the same
atomic step, in state order, together with the tasks of the nodes it made ready.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from nodes.core.state import Done, Outcome, RunState, Step, apply
from worker import admission, functions, runstore
from worker.farm import Farm


def now_ms() -> int:
    return int(time.time() * 1000)


def advance(farm: Farm, pid: str, nid: str, seq: int, outcome: Outcome) -> None:
    """Apply ``outcome`` of node ``nid`` (its dispatch ``seq``) to run ``pid``."""
    if isinstance(outcome, Done):
        got = functions.done(farm.r, pid, nid, seq, farm.settings.worker_name, now_ms(), ran=outcome.ran,
                             holder=outcome.holder, ui=outcome.ui, nbytes=outcome.nbytes,
                             alive_after=time.time() - 3 * farm.settings.heartbeat_s)
        if got.finished:
            admission.run_ended(farm, pid)
        return
    transact(farm, pid, lambda st: apply(st, nid, outcome, now_ms(), seq))


def transact(farm: Farm, pid: str, stimulus: Callable[[RunState], Step]) -> Step | None:
    """Apply a stimulus of the pure state machine to a run (its tasks are queued in the same
    transaction), then what follows the run's end if it ended."""
    got = runstore.transact(farm.r, pid, stimulus, now_ms())
    if got is None:
        return None
    _st, step = got
    if step.finish:
        admission.run_ended(farm, pid)
    return step
