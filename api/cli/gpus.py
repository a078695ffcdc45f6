"""``--gpus all|0,1,3``: which GPUs of this host get a worker each, and what each worker is called.

One worker process per GPU is the farm's unit (DESIGN.md §5): the process sees only its GPU
(``CUDA_VISIBLE_DEVICES``), is named ``gpuN@<host>`` after the GPU's nvidia-smi index (so a name means
the same card on every restart, whatever else is pinned) and so owns the private queue of that name.

The GPUs are read with ``nvidia-smi --query-gpu=index,name,memory.total,uuid`` and never with CUDA,
so the supervisor never initialises a GPU. nvidia-smi ignores ``CUDA_VISIBLE_DEVICES``; an inherited
one (a scheduler or container that hands this host's process a subset) is honoured here: only the
GPUs it names, by index or UUID, are available, and ``--gpus 0,1`` names GPUs by nvidia-smi index.
``--gpus all`` on a host without a GPU falls back to CPU workers and says so in one line; an explicit
list that names a GPU this host does not have is an error (a typo should not start a CPU farm).
Supervision (PR_SET_PDEATHSIG, restarts with back-off) is :mod:`api.cli.supervisor`'s.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

QUERY = ("nvidia-smi", "--query-gpu=index,name,memory.total,uuid", "--format=csv,noheader")
QUERY_TIMEOUT_S = 20.0
HIDDEN = ("", "-1", "none", "NoDevFiles")  # CUDA_VISIBLE_DEVICES values that hide every GPU


class GpuError(Exception):
    """A --gpus value this host cannot honour (a GPU it does not have, a malformed list)."""


@dataclass(frozen=True)
class Gpu:
    """One GPU a worker can be pinned to."""

    index: str  # nvidia-smi's index, or a CUDA_VISIBLE_DEVICES entry nvidia-smi did not list (a MIG UUID)
    name: str = "?"
    memory_mib: int | None = None
    uuid: str = ""

    @property
    def cuda_visible_devices(self) -> str:
        """The child's CUDA_VISIBLE_DEVICES: the index (an absolute one: the child's replaces ours)."""
        return self.index

    @property
    def worker(self) -> str:
        """The worker name before ``@host``: ``gpu<index>`` (``gpu-<uuid>`` for a device without index)."""
        if self.index.isdigit():
            return f"gpu{self.index}"
        return "gpu-" + re.sub(r"[^A-Za-z0-9-]", "", self.index.removeprefix("GPU-").removeprefix("MIG-"))[:12]

    def describe(self) -> str:
        memory = f", {self.memory_mib} MiB" if self.memory_mib is not None else ""
        return f"GPU {self.index} ({self.name}{memory})"


@dataclass(frozen=True)
class Listing:
    """The GPUs this process may use; ``problem`` says why there are none (or why unchecked)."""

    gpus: tuple[Gpu, ...]
    problem: str | None = None
    checked: bool = True  # False: nvidia-smi could not be asked; explicit indices are taken on trust


@dataclass(frozen=True)
class Selection:
    """What ``--gpus`` resolved to: the GPUs to pin, or none and the one line that says CPU instead."""

    gpus: tuple[Gpu, ...]
    note: str | None = None  # printed once (the CPU fallback, or unchecked indices)


def parse_csv(text: str) -> tuple[Gpu, ...]:
    """``index, name, memory.total[, uuid]`` lines (``--format=csv,noheader``; units optional)."""
    gpus: list[Gpu] = []
    for raw in text.splitlines():
        parts = [p.strip() for p in raw.split(",")]
        if len(parts) < 3 or not parts[0].isdigit():
            continue  # "No devices were found", warnings
        memory = re.match(r"\d+", parts[2])
        gpus.append(Gpu(index=parts[0], name=parts[1], memory_mib=int(memory.group()) if memory else None,
                        uuid=parts[3] if len(parts) > 3 else ""))
    return tuple(gpus)


def query_nvidia_smi() -> tuple[tuple[Gpu, ...] | None, str | None]:
    """(every GPU nvidia-smi lists, None), or (None, why it could not be asked)."""
    if shutil.which(QUERY[0]) is None:
        return None, "nvidia-smi is not on PATH"
    try:
        done = subprocess.run(QUERY, capture_output=True, text=True, timeout=QUERY_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"nvidia-smi failed: {exc}"
    if done.returncode != 0:
        why = (done.stderr or done.stdout).strip().splitlines()
        return None, f"nvidia-smi failed: {why[0] if why else f'exit code {done.returncode}'}"
    return parse_csv(done.stdout), None


def visible(gpus: Sequence[Gpu], inherited: str) -> tuple[Gpu, ...]:
    """The GPUs an inherited CUDA_VISIBLE_DEVICES leaves, in its order (by index or UUID; an entry
    nvidia-smi did not list, e.g. a MIG slice's UUID, is kept as it is)."""
    entries = [e.strip() for e in inherited.split(",")]
    if not entries or entries[0] in HIDDEN:
        return ()
    out: list[Gpu] = []
    for entry in entries:
        if not entry or entry == "-1":
            break  # CUDA stops at the first invalid entry
        match = next((g for g in gpus if entry in (g.index, g.uuid)), None)
        found = match or Gpu(index=entry)
        if found not in out:
            out.append(found)
    return tuple(out)


def list_gpus(env: Mapping[str, str] | None = None) -> Listing:
    """The GPUs of this host this process may pin workers to."""
    env = os.environ if env is None else env
    listed, problem = query_nvidia_smi()
    inherited = env.get("CUDA_VISIBLE_DEVICES")
    if inherited is not None:
        gpus = visible(listed or (), inherited)
        if not gpus:
            return Listing((), f"CUDA_VISIBLE_DEVICES={inherited!r} hides every GPU")
        return Listing(gpus, problem, checked=listed is not None)
    if listed is None:
        return Listing((), problem, checked=False)
    return Listing(listed, None if listed else "nvidia-smi lists no GPU")


def select(spec: str, listing: Listing) -> Selection:
    """Resolve ``--gpus SPEC`` (``all`` or comma-separated indices/UUIDs) against ``listing``."""
    spec = spec.strip()
    if spec.lower() == "all":
        if listing.gpus:
            return Selection(listing.gpus)
        return Selection((), f"--gpus all: no GPU found ({listing.problem or 'none listed'}); starting CPU workers instead")
    wanted: list[str] = []
    for part in spec.split(","):
        item = part.strip()
        if not item:
            raise GpuError(f"--gpus {spec!r}: expected 'all' or GPU indices such as 0,1,3")
        if item not in wanted:
            wanted.append(item)
    if not listing.checked and not listing.gpus:  # no nvidia-smi: trust the operator, and say so
        return Selection(tuple(Gpu(index=i) for i in wanted),
                         f"--gpus {spec}: {listing.problem}; pinning workers to GPU {','.join(wanted)} unchecked")
    chosen: list[Gpu] = []
    for item in wanted:
        match = next((g for g in listing.gpus if item in (g.index, g.uuid)), None)
        if match is None:
            have = ", ".join(g.describe() for g in listing.gpus) or f"none ({listing.problem})"
            raise GpuError(f"--gpus {spec}: this host has no GPU {item}; available: {have}")
        chosen.append(match)
    return Selection(tuple(chosen))


def resolve(spec: str, env: Mapping[str, str] | None = None) -> Selection:
    """``--gpus SPEC`` on this host (nvidia-smi and CUDA_VISIBLE_DEVICES read now)."""
    return select(spec, list_gpus(env))


def pinning(selection: Selection) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(worker names before ``@host``, their CUDA_VISIBLE_DEVICES), one per selected GPU."""
    return tuple(g.worker for g in selection.gpus), tuple(g.cuda_visible_devices for g in selection.gpus)
