"""The one seam between tui-trainer and NVML: a pynvml-shaped backend, opened once, every call guarded.

The backend is anything with pynvml's function names (`NvmlBackend`); the real one is the `pynvml`
module of nvidia-ml-py itself, and tests pass a scripted fake with the same calls. `Nvml` owns the
connection (init once, shutdown at exit) and turns NVML's errors into values: a field a GPU does not
support reads as `None` (shown "n/a"), and a GPU that fell off the bus raises `GpuLost` so the caller
marks that one device lost and carries on with the others.
"""

from __future__ import annotations

import atexit
import threading
from typing import Any, Protocol

# NVML's return codes (nvml.h), stable across driver versions. Matching on the code rather than on
# pynvml's generated exception classes keeps this module import-free of pynvml and lets a fake raise
# the real pynvml classes (which carry `.value`) without the layer caring where they came from.
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_GPU_IS_LOST = 15

NVML_TEMPERATURE_GPU = 0  # the sensor id pynvml.NVML_TEMPERATURE_GPU
# pynvml.nvmlMemory_v2: the struct's size | 2 << 24. The v2 call's `used` excludes the memory the driver
# reserves (nvidia-smi's figure); the v1 call counts it as used.
NVML_MEMORY_V2 = 0x2000028

NO_GPU = "no NVIDIA GPU detected"


class NvmlBackend(Protocol):
    """The pynvml calls the layer makes. `pynvml` satisfies it; so does tests/fake_nvml.FakeNvml.

    Errors are pynvml's `NVMLError` subclasses (`NVMLError_NotSupported`, `NVMLError_GpuIsLost`, ...);
    structs are pynvml's: memory info has `.total/.free/.used` (bytes), utilisation `.gpu/.memory` (%),
    PCI info `.busId` (bytes), a process `.pid/.usedGpuMemory` (bytes or None).
    """

    def nvmlInit(self) -> None: ...
    def nvmlShutdown(self) -> None: ...
    def nvmlSystemGetDriverVersion(self) -> str: ...
    def nvmlSystemGetCudaDriverVersion(self) -> int: ...
    def nvmlSystemGetProcessName(self, pid: int) -> str: ...
    def nvmlDeviceGetCount(self) -> int: ...
    def nvmlDeviceGetHandleByIndex(self, index: int) -> Any: ...
    def nvmlDeviceGetName(self, handle: Any) -> str: ...
    def nvmlDeviceGetUUID(self, handle: Any) -> str: ...
    def nvmlDeviceGetPciInfo(self, handle: Any) -> Any: ...
    def nvmlDeviceGetCudaComputeCapability(self, handle: Any) -> tuple[int, int]: ...
    def nvmlDeviceGetMemoryInfo(self, handle: Any, version: int | None = None) -> Any: ...
    def nvmlDeviceGetUtilizationRates(self, handle: Any) -> Any: ...
    def nvmlDeviceGetTemperature(self, handle: Any, sensor: int) -> int: ...
    def nvmlDeviceGetPowerUsage(self, handle: Any) -> int: ...
    def nvmlDeviceGetEnforcedPowerLimit(self, handle: Any) -> int: ...
    def nvmlDeviceGetComputeRunningProcesses(self, handle: Any) -> list[Any]: ...
    def nvmlDeviceGetGraphicsRunningProcesses(self, handle: Any) -> list[Any]: ...
    def nvmlDeviceGetMigMode(self, handle: Any) -> tuple[int, int]: ...
    def nvmlDeviceGetMaxMigDeviceCount(self, handle: Any) -> int: ...
    def nvmlDeviceGetMigDeviceHandleByIndex(self, handle: Any, index: int) -> Any: ...


class GpuLost(Exception):
    """A GPU stopped answering (NVML_ERROR_GPU_IS_LOST): it fell off the bus until a reset."""


def is_gpu_lost(exc: BaseException) -> bool:
    """Whether an exception is NVML's "GPU is lost"."""
    return getattr(exc, "value", None) == NVML_ERROR_GPU_IS_LOST


def describe_error(exc: BaseException) -> str:
    """A short reason a user can act on, for an NVML failure (init, count, or one query)."""
    code = getattr(exc, "value", None)
    if isinstance(exc, ImportError):
        return "nvidia-ml-py (module pynvml) is not installed"
    if code == NVML_ERROR_LIBRARY_NOT_FOUND:
        return "NVML library not found"
    if code == NVML_ERROR_DRIVER_NOT_LOADED:
        return "NVIDIA driver not loaded"
    if code == NVML_ERROR_NO_PERMISSION:
        return "no permission to query NVML"
    try:
        text = str(exc)
    except Exception:  # pynvml's __str__ asks the library for unknown codes, which may itself fail
        text = ""
    return text or type(exc).__name__


def _load_pynvml() -> NvmlBackend:
    # Imported here, not at module top: the package stays cheap to import, and a missing
    # nvidia-ml-py becomes a reason ("not installed") instead of an ImportError at start-up.
    import pynvml

    return pynvml  # type: ignore[return-value]


class Nvml:
    """One NVML connection: opened once (thread-safe, idempotent), shut down at exit or on `close()`.

    Args:
        backend: a pynvml-shaped object; None means the real `pynvml`.
    """

    def __init__(self, backend: NvmlBackend | None = None) -> None:
        self._backend = backend
        self._lock = threading.Lock()
        self._opened = False
        self._ok = False
        self._reason = ""
        self._handles: dict[int | tuple[int, int], Any] = {}
        self._memory_v2 = True  # until the library or driver says it has no v2 memory call

    @property
    def reason(self) -> str:
        """Why NVML is unusable ("NVML library not found"), or "" when it opened."""
        return self._reason

    def open(self) -> bool:
        """Initialise NVML on the first call; later calls return the first answer. True when usable."""
        with self._lock:
            if self._opened:
                return self._ok
            self._opened = True
            try:
                if self._backend is None:
                    self._backend = _load_pynvml()
                self._backend.nvmlInit()
            except Exception as exc:  # no driver, no library, no GPU: a normal state, not a crash
                self._reason = describe_error(exc)
                return False
            self._ok = True
            atexit.register(self.close)
            return True

    def close(self) -> None:
        """Shut NVML down if this connection opened it. Safe to call twice."""
        with self._lock:
            if not self._ok:
                return
            self._ok = False
            self._reason = "NVML was shut down"
            self._handles.clear()
            try:
                self._backend.nvmlShutdown()  # type: ignore[union-attr]
            except Exception:  # at exit, a failed shutdown has nobody to tell
                pass

    def call(self, name: str, *args: Any) -> Any:
        """A system-level query (driver version, GPU count); raises the backend's error as is."""
        if not self.open():
            raise RuntimeError(self._reason)
        return getattr(self._backend, name)(*args)

    def handle(self, key: int | tuple[int, int]) -> Any:
        """The device handle of a physical GPU, or of MIG slot `s` of GPU `p` for key (p, s), cached.

        Raises GpuLost, or the backend's error.
        """
        with self._lock:
            cached = self._handles.get(key)
        if cached is not None:
            return cached
        physical_index = key if isinstance(key, int) else key[0]
        try:
            if isinstance(key, int):
                found = self.call("nvmlDeviceGetHandleByIndex", key)
            else:
                found = self.call("nvmlDeviceGetMigDeviceHandleByIndex", self.handle(key[0]), key[1])
        except GpuLost:
            raise
        except Exception as exc:
            if is_gpu_lost(exc):
                raise GpuLost(physical_index) from exc
            raise
        with self._lock:
            self._handles[key] = found
        return found

    def memory(self, key: int | tuple[int, int]) -> Any:
        """Memory info as nvidia-smi shows it (NVML's v2 call), else the v1 call's; None if unreadable.

        Raises GpuLost like `query`.
        """
        if self._memory_v2:
            found = self.query(key, "nvmlDeviceGetMemoryInfo", NVML_MEMORY_V2)
            if found is not None:
                return found
            # An older nvidia-ml-py (no `version` argument) or driver (no _v2 function): use v1 from now on,
            # unless v1 fails too (then the field is simply unreadable on this GPU).
            fallback = self.query(key, "nvmlDeviceGetMemoryInfo")
            if fallback is not None:
                self._memory_v2 = False
            return fallback
        return self.query(key, "nvmlDeviceGetMemoryInfo")

    def query(self, physical_index: int | tuple[int, int], name: str, *args: Any) -> Any:
        """One field of one GPU, or None where it cannot be read (unsupported, no permission, ...).

        Raises GpuLost when the GPU fell off the bus, so the caller stops asking that GPU and marks it.
        Any other failure is this field's alone: one unreadable field never hides the rest.
        """
        try:
            handle = self.handle(physical_index)
            return getattr(self._backend, name)(handle, *args)
        except GpuLost:
            raise
        except Exception as exc:  # pynvml raises NVMLError subclasses, and NVMLLibraryMismatchError
            if is_gpu_lost(exc):
                raise GpuLost(physical_index if isinstance(physical_index, int) else physical_index[0]) from exc
            return None


_default: Nvml | None = None
_default_lock = threading.Lock()


def default_nvml() -> Nvml:
    """The process-wide connection to the real NVML, so every reader shares one init and one shutdown."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Nvml()
        return _default
