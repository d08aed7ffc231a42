"""A scripted stand-in for pynvml: the only fake in the suite, at the NVML seam (no GPU on CI).

It implements the pynvml calls of `tui_trainer.hardware.nvml.NvmlBackend` with pynvml's own shapes
(bytes busId, bytes in memory structs, milliwatts, process objects with `usedGpuMemory`) and raises
pynvml's real exception classes, so the layer is tested against what the real library does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

import pynvml

MIB = 1024 * 1024
# What NVML answers on a MIG instance's handle; utilisation, temperature and power are the parent GPU's.
MIG_HANDLE_CALLS = {"nvmlDeviceGetName", "nvmlDeviceGetUUID", "nvmlDeviceGetMemoryInfo",
                    "nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses"}


@dataclass
class FakeMig:
    """One MIG instance of a FakeGpu (a slot on its parent)."""

    uuid: str = "MIG-11111111-2222-3333-4444-555555555555"
    name: str = "NVIDIA A100-SXM4-40GB MIG 3g.20gb"
    total_mib: int = 19968
    used_mib: int = 300
    processes: list[tuple[int, str, int | None]] = field(default_factory=list)


@dataclass
class FakeGpu:
    """One scripted GPU. `unsupported` names pynvml functions that raise NotSupported on it."""

    name: str = "NVIDIA A100-SXM4-40GB"
    uuid: str = "GPU-00000000-0000-0000-0000-000000000000"
    total_mib: int = 40960
    used_mib: int = 1024
    util_gpu: int = 50
    util_memory: int = 20
    temperature_c: int = 55
    power_mw: int = 250_000
    power_limit_mw: int = 400_000
    capability: tuple[int, int] = (8, 0)
    pci_bus_id: str = "00000000:07:00.0"
    processes: list[tuple[int, str, int | None]] = field(default_factory=list)  # (pid, name, MiB)
    unsupported: set[str] = field(default_factory=set)
    lost: bool = False
    reserved_mib: int = 0  # driver-reserved memory: NVML's v1 memory call counts it as used, v2 does not
    mig: dict[int, FakeMig] = field(default_factory=dict)  # MIG slot -> instance; non-empty: MIG mode on
    max_mig: int = 7


@dataclass(frozen=True)
class FakeHandle:
    index: int
    mig: int | None = None  # a MIG instance's slot on GPU `index`


class FakeNvml:
    """pynvml with scripted GPUs. `calls` counts each function called, for the tests to assert on."""

    def __init__(self, gpus: list[FakeGpu], driver: str = "550.54.15", cuda: int = 12040,
                 init_error: Exception | None = None, memory_v2: bool = True) -> None:
        self.gpus = gpus
        self.memory_v2 = memory_v2  # False: an nvidia-ml-py older than the `version` argument
        self.memory_versions: list[int | None] = []
        self.driver = driver
        self.cuda = cuda
        self.init_error = init_error
        self.calls: dict[str, int] = {}
        self.on_shutdown = None

    @classmethod
    def with_gpus(cls, count: int, **kwargs) -> FakeNvml:
        """`count` distinct A100s: UUID GPU-<i>a3f..., bus id 0x07+i, and (i+1) GiB used, so each is recognisable."""
        gpus = [FakeGpu(uuid=f"GPU-{i}a3f{i:04d}-1111-2222-3333-44445555666{i}",
                        pci_bus_id=f"00000000:{7 + i:02X}:00.0", used_mib=1024 * (i + 1)) for i in range(count)]
        return cls(gpus, **kwargs)

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    def _gpu(self, handle: FakeHandle, name: str) -> FakeGpu:
        self._count(name)
        gpu = self.gpus[handle.index]
        if gpu.lost:
            raise pynvml.NVMLError_GpuIsLost()
        if name in gpu.unsupported or (handle.mig is not None and name not in MIG_HANDLE_CALLS):
            raise pynvml.NVMLError_NotSupported()
        return gpu

    # system
    def nvmlInit(self) -> None:
        self._count("nvmlInit")
        if self.init_error is not None:
            raise self.init_error

    def nvmlShutdown(self) -> None:
        self._count("nvmlShutdown")
        if self.on_shutdown is not None:
            self.on_shutdown()

    def nvmlSystemGetDriverVersion(self) -> str:
        self._count("nvmlSystemGetDriverVersion")
        return self.driver

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        self._count("nvmlSystemGetCudaDriverVersion")
        return self.cuda

    def nvmlSystemGetProcessName(self, pid: int) -> str:
        self._count("nvmlSystemGetProcessName")
        for gpu in self.gpus:
            for proc_pid, name, _ in [*gpu.processes, *(p for m in gpu.mig.values() for p in m.processes)]:
                if proc_pid == pid:
                    return name
        raise pynvml.NVMLError_NotFound()

    # devices
    def nvmlDeviceGetCount(self) -> int:
        self._count("nvmlDeviceGetCount")
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeHandle:
        self._count("nvmlDeviceGetHandleByIndex")
        if not 0 <= index < len(self.gpus):
            raise pynvml.NVMLError_InvalidArgument()
        return FakeHandle(index)

    def _mig(self, handle: FakeHandle) -> FakeMig | None:
        return None if handle.mig is None else self.gpus[handle.index].mig[handle.mig]

    def nvmlDeviceGetName(self, handle: FakeHandle) -> str:
        gpu = self._gpu(handle, "nvmlDeviceGetName")
        return self._mig(handle).name if handle.mig is not None else gpu.name

    def nvmlDeviceGetUUID(self, handle: FakeHandle) -> str:
        gpu = self._gpu(handle, "nvmlDeviceGetUUID")
        return self._mig(handle).uuid if handle.mig is not None else gpu.uuid

    def nvmlDeviceGetMigMode(self, handle: FakeHandle) -> tuple[int, int]:
        gpu = self._gpu(handle, "nvmlDeviceGetMigMode")
        on = int(bool(gpu.mig))
        return (on, on)

    def nvmlDeviceGetMaxMigDeviceCount(self, handle: FakeHandle) -> int:
        gpu = self._gpu(handle, "nvmlDeviceGetMaxMigDeviceCount")
        return gpu.max_mig if gpu.mig else 0

    def nvmlDeviceGetMigDeviceHandleByIndex(self, handle: FakeHandle, index: int) -> FakeHandle:
        gpu = self._gpu(handle, "nvmlDeviceGetMigDeviceHandleByIndex")
        if not gpu.mig:
            raise pynvml.NVMLError_InvalidArgument()
        if index not in gpu.mig:
            raise pynvml.NVMLError_NotFound()
        return FakeHandle(handle.index, index)

    def nvmlDeviceGetPciInfo(self, handle: FakeHandle):
        return SimpleNamespace(busId=self._gpu(handle, "nvmlDeviceGetPciInfo").pci_bus_id.encode())

    def nvmlDeviceGetCudaComputeCapability(self, handle: FakeHandle) -> tuple[int, int]:
        return self._gpu(handle, "nvmlDeviceGetCudaComputeCapability").capability

    def nvmlDeviceGetMemoryInfo(self, handle: FakeHandle, version: int | None = None):
        gpu = self._gpu(handle, "nvmlDeviceGetMemoryInfo")  # counted, so a test sees every attempt
        if version is not None and not self.memory_v2:
            raise TypeError("nvmlDeviceGetMemoryInfo() got an unexpected keyword argument 'version'")
        self.memory_versions.append(version)
        mig = self._mig(handle)
        if mig is not None:
            return SimpleNamespace(total=mig.total_mib * MIB, used=mig.used_mib * MIB,
                                   free=(mig.total_mib - mig.used_mib) * MIB)
        if version is None:  # v1: driver-reserved memory counts as used
            used = gpu.used_mib + gpu.reserved_mib
            return SimpleNamespace(total=gpu.total_mib * MIB, used=used * MIB, free=(gpu.total_mib - used) * MIB)
        if version != pynvml.nvmlMemory_v2:
            raise pynvml.NVMLError_InvalidArgument()
        return SimpleNamespace(version=version, total=gpu.total_mib * MIB, reserved=gpu.reserved_mib * MIB,
                               used=gpu.used_mib * MIB, free=(gpu.total_mib - gpu.used_mib - gpu.reserved_mib) * MIB)

    def nvmlDeviceGetUtilizationRates(self, handle: FakeHandle):
        gpu = self._gpu(handle, "nvmlDeviceGetUtilizationRates")
        return SimpleNamespace(gpu=gpu.util_gpu, memory=gpu.util_memory)

    def nvmlDeviceGetTemperature(self, handle: FakeHandle, sensor: int) -> int:
        gpu = self._gpu(handle, "nvmlDeviceGetTemperature")
        if sensor != pynvml.NVML_TEMPERATURE_GPU:
            raise pynvml.NVMLError_InvalidArgument()
        return gpu.temperature_c

    def nvmlDeviceGetPowerUsage(self, handle: FakeHandle) -> int:
        return self._gpu(handle, "nvmlDeviceGetPowerUsage").power_mw

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: FakeHandle) -> int:
        return self._gpu(handle, "nvmlDeviceGetEnforcedPowerLimit").power_limit_mw

    def nvmlDeviceGetComputeRunningProcesses(self, handle: FakeHandle) -> list:
        gpu = self._gpu(handle, "nvmlDeviceGetComputeRunningProcesses")
        mig = self._mig(handle)
        # pynvml turns "not available" (WDDM, some containers) into usedGpuMemory=None.
        return [SimpleNamespace(pid=pid, usedGpuMemory=None if mib is None else mib * MIB,
                                gpuInstanceId=0xFFFFFFFF, computeInstanceId=0xFFFFFFFF)
                for pid, _, mib in (mig.processes if mig is not None else gpu.processes)]

    def nvmlDeviceGetGraphicsRunningProcesses(self, handle: FakeHandle) -> list:
        self._gpu(handle, "nvmlDeviceGetGraphicsRunningProcesses")
        return []
