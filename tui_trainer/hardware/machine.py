"""Build the `Machine` that validation checks against, from NVML (no torch import needed)."""

from __future__ import annotations

import functools
import os
import sys

from tui_trainer.config.machine import Machine, VisibleGpu


@functools.lru_cache(maxsize=1)
def detect_machine() -> Machine:
    """The GPUs torch will see here, read through NVML; cached for the process."""
    cpus = os.cpu_count() or 1
    torch = sys.modules.get("torch")
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception as exc:  # no driver, no library, no GPU: a normal state
        return Machine((), cpus, f"no NVIDIA GPU detected: {_nvml_reason(exc)}")
    try:
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            name = pynvml.nvmlDeviceGetName(handle)
            name = name.decode() if isinstance(name, bytes) else name
            major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
            total = pynvml.nvmlDeviceGetMemoryInfo(handle).total // (1024 * 1024)
            gpus.append(VisibleGpu(index, name, (major, minor), total))
    finally:
        pynvml.nvmlShutdown()
    if torch is not None and not torch.cuda.is_available():
        return Machine((), cpus, "NVIDIA GPU present but this torch build has no CUDA")
    return Machine(tuple(gpus), cpus, "" if gpus else "no NVIDIA GPU detected")


def _nvml_reason(exc: Exception) -> str:
    text = str(exc)
    if "Library" in type(exc).__name__ or "not found" in text.lower():
        return "NVML library not found"
    return text or type(exc).__name__
