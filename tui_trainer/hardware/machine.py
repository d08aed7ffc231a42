"""Build the `Machine` that validation checks against, from the NVML inventory (no torch import needed)."""

from __future__ import annotations

import functools
import os
import sys

from tui_trainer.config.machine import Machine, VisibleGpu
from tui_trainer.hardware.inventory import Inventory, read_inventory


@functools.lru_cache(maxsize=1)
def detect_machine() -> Machine:
    """The GPUs torch will see here (visible ids, after CUDA_VISIBLE_DEVICES), read through NVML; cached."""
    return machine_from_inventory(read_inventory(), os.cpu_count() or 1, _torch_cuda_available())


def machine_from_inventory(inventory: Inventory, cpu_count: int, torch_cuda: bool | None = None) -> Machine:
    """The runnable view of an inventory: lost GPUs left out, the reason kept when none is usable.

    Args:
        inventory: the visible GPUs.
        cpu_count: CPU cores here.
        torch_cuda: `torch.cuda.is_available()` where torch is already loaded; None when it is not.
    """
    if not inventory.gpus:
        return Machine((), cpu_count, inventory.reason)
    if torch_cuda is False:
        return Machine((), cpu_count, "NVIDIA GPU present but this torch build has no CUDA")
    gpus = tuple(
        # An unreadable capability counts as (0, 0): validation then refuses bf16 rather than guess.
        VisibleGpu(g.index, g.name or "unknown GPU", g.capability or (0, 0), g.memory_total_mib or 0)
        for g in inventory.gpus
        if not g.lost
    )
    return Machine(gpus, cpu_count, "" if gpus else "every visible GPU is lost (fell off the bus); reset it")


def _torch_cuda_available() -> bool | None:
    # Only asked when torch is already loaded: importing it here would cost seconds for a cross-check.
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    try:
        return bool(torch.cuda.is_available())
    except Exception:  # torch half-imported by another thread: no verdict rather than a crash
        return None
