"""One reading of every visible GPU's live state: memory, utilisation, temperature, power, processes."""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass

from tui_trainer.hardware.inventory import MIB, GpuInfo, Inventory
from tui_trainer.hardware.nvml import NVML_TEMPERATURE_GPU, GpuLost, Nvml
from tui_trainer.hardware.torch_memory import TorchMemory, read_torch_memory


@dataclass(frozen=True, slots=True)
class GpuProcess:
    """A process holding memory on a GPU. `name`/`memory_mib` are None where NVML cannot say."""

    pid: int
    name: str | None
    memory_mib: int | None


@dataclass(frozen=True, slots=True)
class GpuSample:
    """One GPU at one moment. `index` is torch's id; None in a field means n/a on this GPU.

    A lost GPU (fell off the bus) has `lost=True` and every reading None.
    `processes` is None when the list could not be read, () when nothing runs there.
    `torch` is this process's own allocator view, present only once CUDA is up in this process.
    """

    index: int
    physical_index: int
    name: str | None
    timestamp: float
    lost: bool = False
    memory_used_mib: int | None = None
    memory_free_mib: int | None = None
    memory_total_mib: int | None = None
    utilization_gpu: int | None = None
    utilization_memory: int | None = None
    temperature_c: int | None = None
    power_w: float | None = None
    power_limit_w: float | None = None
    processes: tuple[GpuProcess, ...] | None = None
    torch: TorchMemory | None = None
    is_mig: bool = False  # a MIG instance of GPU `physical_index`; its memory is the instance's own

    @property
    def memory_percent(self) -> float | None:
        """Used memory as a percentage of total, or None when either is unknown."""
        if self.memory_used_mib is None or not self.memory_total_mib:
            return None
        return 100.0 * self.memory_used_mib / self.memory_total_mib


def read_samples(nvml: Nvml, inventory: Inventory, lost: Collection[int] = ()) -> tuple[GpuSample, ...]:
    """Sample every GPU of the inventory; a GPU in `lost` (physical indices) is not asked again.

    Never raises: each GPU and each field is read on its own, so one bad GPU never hides the others.
    """
    now = time.time()
    return tuple(_read_one(nvml, gpu, now, gpu.lost or gpu.physical_index in lost) for gpu in inventory.gpus)


def _read_one(nvml: Nvml, gpu: GpuInfo, now: float, known_lost: bool) -> GpuSample:
    if known_lost:
        return GpuSample(gpu.index, gpu.physical_index, gpu.name, now, lost=True, is_mig=gpu.is_mig)
    p = gpu.nvml_key  # a MIG instance answers for itself (memory, processes); utilisation is n/a there
    try:
        memory = nvml.memory(p)
        rates = nvml.query(p, "nvmlDeviceGetUtilizationRates")
        whole = gpu.physical_index  # temperature and power belong to the whole board, MIG or not
        temperature = nvml.query(whole, "nvmlDeviceGetTemperature", NVML_TEMPERATURE_GPU)
        power = nvml.query(whole, "nvmlDeviceGetPowerUsage")
        limit = nvml.query(whole, "nvmlDeviceGetEnforcedPowerLimit")
        processes = _processes(nvml, p)
    except GpuLost:
        return GpuSample(gpu.index, gpu.physical_index, gpu.name, now, lost=True, is_mig=gpu.is_mig)
    return GpuSample(
        index=gpu.index,
        physical_index=gpu.physical_index,
        name=gpu.name,
        timestamp=now,
        memory_used_mib=_mib(getattr(memory, "used", None)),
        memory_free_mib=_mib(getattr(memory, "free", None)),
        memory_total_mib=_mib(getattr(memory, "total", None)) or gpu.memory_total_mib,
        utilization_gpu=_int(getattr(rates, "gpu", None)),
        utilization_memory=_int(getattr(rates, "memory", None)),
        temperature_c=_int(temperature),
        power_w=power / 1000 if power is not None else None,  # NVML reports milliwatts
        power_limit_w=limit / 1000 if limit is not None else None,
        processes=processes,
        torch=read_torch_memory(gpu.index),
        is_mig=gpu.is_mig,
    )


def _processes(nvml: Nvml, physical_index: int | tuple[int, int]) -> tuple[GpuProcess, ...] | None:
    compute = nvml.query(physical_index, "nvmlDeviceGetComputeRunningProcesses")
    graphics = nvml.query(physical_index, "nvmlDeviceGetGraphicsRunningProcesses")
    if compute is None and graphics is None:
        return None
    # A process can be listed as both compute and graphics; show it once, with its larger figure.
    memory: dict[int, int | None] = {}
    for proc in [*(compute or ()), *(graphics or ())]:
        pid = int(proc.pid)
        used = _mib(getattr(proc, "usedGpuMemory", None))
        before = memory.get(pid)
        memory[pid] = used if before is None else max(before, used or 0)
    return tuple(GpuProcess(pid, _process_name(nvml, pid), memory[pid]) for pid in sorted(memory))


def _process_name(nvml: Nvml, pid: int) -> str | None:
    # NVML's pids are the host's; asking NVML for the name (not /proc) stays right inside containers.
    try:
        name = nvml.call("nvmlSystemGetProcessName", pid)
    except Exception:
        return None
    if isinstance(name, bytes):
        name = name.decode(errors="replace")
    if not name:
        return None
    return str(name).rsplit("/", 1)[-1] or str(name)  # NVML gives a path; the table wants "python3"


def _mib(value) -> int | None:
    return int(value) // MIB if value is not None else None


def _int(value) -> int | None:
    return int(value) if value is not None else None
