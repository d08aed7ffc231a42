"""What our own process holds on each GPU, from torch's caching allocator, without ever waking CUDA.

NVML sees a process's whole footprint (CUDA context, cached blocks, other libraries); torch knows
how much of it is live tensors (allocated), how much its allocator keeps (reserved) and the peak.
Reading it must stay free for the UI: importing torch costs seconds and initialising CUDA costs a
context (hundreds of MiB) on every visible GPU, so both happen only because a run asked for them.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from tui_trainer.hardware.inventory import MIB


@dataclass(frozen=True, slots=True)
class TorchMemory:
    """This process's torch allocator on one GPU (torch's visible id), in MiB."""

    index: int
    allocated_mib: float
    reserved_mib: float
    peak_allocated_mib: float


def cuda_ready() -> bool:
    """Whether torch is already imported and has already initialised CUDA in this process."""
    torch = sys.modules.get("torch")
    if torch is None:
        return False
    try:
        return bool(torch.cuda.is_initialized())
    except Exception:  # torch half-imported by another thread, or a build without torch.cuda
        return False


def read_torch_memory(index: int) -> TorchMemory | None:
    """torch's allocated / reserved / peak memory on GPU `index`; None unless CUDA is already up here."""
    if not cuda_ready():
        return None
    cuda = sys.modules["torch"].cuda
    try:
        if index >= cuda.device_count():
            return None
        return TorchMemory(
            index=index,
            allocated_mib=cuda.memory_allocated(index) / MIB,
            reserved_mib=cuda.memory_reserved(index) / MIB,
            peak_allocated_mib=cuda.max_memory_allocated(index) / MIB,
        )
    except Exception:  # a panel must never fail because the allocator could not answer
        return None
