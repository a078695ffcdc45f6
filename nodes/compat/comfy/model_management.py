"""ComfyUI's ``comfy.model_management``: devices, memory figures and the interrupt flag.

Written from ComfyUI's documented behaviour (spec/comfyui.md sections 5.10 and 7). A worker process
owns one device (one GPU through ``CUDA_VISIBLE_DEVICES``, or the CPU with ``--cpu``), so device
choice is simple: the torch device for compute, the CPU for intermediates and offloading. There is
no model juggling on a farm worker; ``load_models_gpu`` and friends are accepted and do nothing.

Module state (ComfyUI's globals, set by :func:`configure` at boot and by the worker at run time):
``cpu_state`` (CPU forced or not), the interrupt flag guarded by ``_interrupt_lock``, and the
optional ``_interrupt_probe`` that a worker installs to learn of a cancel from outside the process.
"""

from __future__ import annotations

import enum
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

import torch

log = logging.getLogger("nodefarm.model_management")


class VRAMState(enum.Enum):
    DISABLED = 0
    NO_VRAM = 1
    LOW_VRAM = 2
    NORMAL_VRAM = 3
    HIGH_VRAM = 4
    SHARED = 5


class CPUState(enum.Enum):
    GPU = 0
    CPU = 1
    MPS = 2


class InterruptProcessingException(Exception):
    """Raised inside a node when the run it belongs to was interrupted."""


OOM_EXCEPTION = torch.cuda.OutOfMemoryError
DISABLE_SMART_MEMORY = False
XFORMERS_IS_AVAILABLE = False

cpu_state: CPUState = CPUState.GPU
vram_state: VRAMState = VRAMState.NORMAL_VRAM
set_vram_to: VRAMState = VRAMState.NORMAL_VRAM
current_loaded_models: list[Any] = []

interrupt_processing: bool = False
_interrupt_lock = threading.RLock()
_interrupt_probe: Callable[[], bool] | None = None


def configure(cpu: bool) -> None:
    """Force the CPU (``--cpu``) or let CUDA be used when present."""
    global cpu_state, vram_state
    cpu_state = CPUState.CPU if cpu else CPUState.GPU
    vram_state = VRAMState.DISABLED if cpu else VRAMState.NORMAL_VRAM


def cpu_mode() -> bool:
    return cpu_state == CPUState.CPU


def mps_mode() -> bool:
    return cpu_state == CPUState.MPS


def _cuda_usable() -> bool:
    return cpu_state == CPUState.GPU and torch.cuda.is_available()


def get_torch_device() -> torch.device:
    """The compute device: this process's CUDA device unless the CPU is forced or none exists."""
    if _cuda_usable():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def intermediate_device() -> torch.device:
    return torch.device("cpu")


def unet_offload_device() -> torch.device:
    return torch.device("cpu")


def unet_inital_load_device(parameters: int = 0, dtype: Any = None) -> torch.device:
    return get_torch_device()


def text_encoder_device() -> torch.device:
    return get_torch_device()


def text_encoder_offload_device() -> torch.device:
    return torch.device("cpu")


def vae_device() -> torch.device:
    return get_torch_device()


def vae_offload_device() -> torch.device:
    return torch.device("cpu")


def get_autocast_device(dev: Any) -> str:
    return str(getattr(dev, "type", "cuda"))


def is_device_type(device: Any, type_name: str) -> bool:
    return getattr(device, "type", None) == type_name


def is_device_cuda(device: Any) -> bool:
    return is_device_type(device, "cuda")


def is_device_cpu(device: Any) -> bool:
    return is_device_type(device, "cpu")


def is_device_mps(device: Any) -> bool:
    return is_device_type(device, "mps")


def is_nvidia() -> bool:
    return _cuda_usable() and torch.version.cuda is not None


def is_intel_xpu() -> bool:
    return False


def directml_enabled() -> bool:
    return False


def xformers_enabled() -> bool:
    return False


def pytorch_attention_enabled() -> bool:
    return True


def device_supports_non_blocking(device: Any) -> bool:
    return is_device_cuda(device)


def should_use_fp16(device: Any = None, model_params: int = 0, prioritize_performance: bool = True,
                    manual_cast: bool = False) -> bool:
    dev = device if device is not None else get_torch_device()
    return is_device_cuda(dev)


def should_use_bf16(device: Any = None, model_params: int = 0, prioritize_performance: bool = True,
                    manual_cast: bool = False) -> bool:
    dev = device if device is not None else get_torch_device()
    return is_device_cuda(dev) and torch.cuda.is_bf16_supported()


def cast_to_device(tensor: torch.Tensor, device: Any, dtype: Any, copy: bool = False) -> torch.Tensor:
    return tensor.to(device=device, dtype=dtype, copy=copy)


# ---- models: nothing to juggle on a farm worker ------------------------------------------------


def load_models_gpu(models: Any, *args: Any, **kwargs: Any) -> None:
    return None


def load_model_gpu(model: Any) -> None:
    return None


def free_memory(memory_required: int, device: Any, keep_loaded: Any = ()) -> list[Any]:
    return []


def cleanup_models(*args: Any, **kwargs: Any) -> None:
    return None


def unload_all_models() -> None:
    soft_empty_cache(force=True)


def soft_empty_cache(force: bool = False) -> None:
    if _cuda_usable() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
        torch.cuda.ipc_collect()


# ---- memory figures ----------------------------------------------------------------------------


def _host_memory() -> tuple[int, int]:
    """(total, available) bytes of host memory, from /proc/meminfo or sysconf."""
    try:
        fields: dict[str, int] = {}
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                name, _, rest = line.partition(":")
                fields[name] = int(rest.split()[0]) * 1024
        return fields["MemTotal"], fields.get("MemAvailable", fields.get("MemFree", 0))
    except (OSError, KeyError, ValueError, IndexError):
        pages = os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else 0
        size = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 0
        return pages * size, pages * size


def get_total_memory(dev: Any = None, torch_total_too: bool = False) -> Any:
    dev = get_torch_device() if dev is None else dev
    if is_device_cuda(dev):
        _free, total = torch.cuda.mem_get_info(dev)
        reserved = int(torch.cuda.memory_stats(dev).get("reserved_bytes.all.current", 0))
        return (int(total), reserved) if torch_total_too else int(total)
    total = _host_memory()[0]
    return (total, total) if torch_total_too else total


def get_free_memory(dev: Any = None, torch_free_too: bool = False) -> Any:
    dev = get_torch_device() if dev is None else dev
    if is_device_cuda(dev):
        free_cuda, _total = torch.cuda.mem_get_info(dev)
        stats = torch.cuda.memory_stats(dev)
        free_torch = int(stats.get("reserved_bytes.all.current", 0)) - int(stats.get("active_bytes.all.current", 0))
        free = int(free_cuda) + free_torch
        return (free, free_torch) if torch_free_too else free
    available = _host_memory()[1]
    return (available, available) if torch_free_too else available


# ---- interrupt ---------------------------------------------------------------------------------


def set_interrupt_probe(fn: Callable[[], bool] | None) -> None:
    """Install (or remove) a probe asked at every interrupt check; True means "stop now"."""
    global _interrupt_probe
    _interrupt_probe = fn


def interrupt_current_processing(value: bool = True) -> None:
    global interrupt_processing
    with _interrupt_lock:
        interrupt_processing = value


def processing_interrupted() -> bool:
    with _interrupt_lock:
        return interrupt_processing


def throw_exception_if_processing_interrupted() -> None:
    """Raise InterruptProcessingException (and reset the flag) if the flag is set or the probe says so."""
    global interrupt_processing
    probe = _interrupt_probe
    probed = bool(probe()) if probe is not None else False
    with _interrupt_lock:
        if interrupt_processing or probed:
            interrupt_processing = False
            raise InterruptProcessingException()
