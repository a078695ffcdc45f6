"""The host's cores, split between the workers that share it.

Torch sizes its intra-op thread pool to every core of the machine. N CPU workers on one host would
then each start as many threads as there are cores and fight over them; instead each worker child
takes ``cores / workers`` threads (at least 1), or ``NODEFARM_TORCH_THREADS`` when set. Applied in
each Celery pool child after the fork (``worker.main``), before any node runs.
"""

from __future__ import annotations

import logging
import os

import torch

from nodes.settings import Settings

log = logging.getLogger("nodefarm.worker.cores")

# Read by OpenMP / MKL when they start a pool: set for libraries and subprocesses started later.
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def threads_for(cores: int, host_workers: int, explicit: int) -> int:
    """Intra-op threads of one worker: ``explicit`` when positive, else its share of ``cores``."""
    if explicit > 0:
        return explicit
    return max(1, cores // max(1, host_workers))


def available_cores() -> int:
    """Cores this process may run on (its affinity mask; a container's cpuset is honoured)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def apply(settings: Settings, children: int = 1) -> int:
    """Size torch's thread pools for this process; ``children``: pool processes of this worker.

    Returns the intra-op thread count set.
    """
    cores = available_cores()
    sharers = settings.host_workers * max(1, children)
    n = threads_for(cores, sharers, settings.torch_threads)
    for var in THREAD_ENV_VARS:
        os.environ[var] = str(n)
    torch.set_num_threads(n)
    try:
        # raises once inter-op work has started (or the pool was sized before): keep what there is
        torch.set_num_interop_threads(n)
    except RuntimeError:
        pass
    how = "NODEFARM_TORCH_THREADS" if settings.torch_threads > 0 else f"{cores} cores / {sharers} worker processes"
    log.info("worker process %d: %d torch threads (%s)", os.getpid(), torch.get_num_threads(), how)
    return n
