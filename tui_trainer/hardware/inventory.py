"""What GPUs this process can use, numbered the way torch (and therefore every preset) numbers them.

NVML counts GPUs physically, in PCI bus order, like nvidia-smi. CUDA, and so torch, counts only the
GPUs that CUDA_VISIBLE_DEVICES lets through, in the order it lists them: with
`CUDA_VISIBLE_DEVICES=2,3`, torch's `cuda:0` is physical GPU 2. Each `GpuInfo` carries both numbers;
`index` is torch's and is the one the UI shows. GPUs the variable hides are not listed at all; the
inventory only keeps their physical indices in `hidden`, so a screen can say "2 GPUs hidden".
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from tui_trainer.hardware.nvml import NO_GPU, GpuLost, Nvml, default_nvml, describe_error

MIB = 1024 * 1024  # bytes in a MiB: every memory figure in the app is in MiB
_FROM_ENVIRONMENT = object()


@dataclass(frozen=True, slots=True)
class GpuInfo:
    """The static facts about one visible GPU. `None` in a field means NVML could not tell (n/a)."""

    index: int
    physical_index: int
    name: str | None
    uuid: str | None
    memory_total_mib: int | None
    pci_bus_id: str | None
    capability: tuple[int, int] | None
    lost: bool = False
    mig_slot: int | None = None  # a MIG instance: its slot on the parent GPU (physical_index)

    @property
    def is_mig(self) -> bool:
        """Whether this device is a MIG instance (a slice of GPU `physical_index`), not a whole GPU."""
        return self.mig_slot is not None

    @property
    def nvml_key(self) -> int | tuple[int, int]:
        """How `Nvml.query` finds this device: the physical index, or (parent, MIG slot)."""
        return self.physical_index if self.mig_slot is None else (self.physical_index, self.mig_slot)

    @property
    def label(self) -> str:
        """How the UI names this GPU: torch's id, plus the physical one when they differ."""
        if self.is_mig:
            return f"GPU {self.index} (MIG instance on physical {self.physical_index})"
        if self.index == self.physical_index:
            return f"GPU {self.index}"
        return f"GPU {self.index} (physical {self.physical_index})"


@dataclass(frozen=True, slots=True)
class Inventory:
    """The visible GPUs in torch's order, or the reason there are none (`reason`, "" when there are)."""

    gpus: tuple[GpuInfo, ...] = ()
    reason: str = ""
    driver_version: str | None = None
    cuda_version: str | None = None
    visible_devices: str | None = None
    hidden: tuple[int, ...] = ()
    notes: tuple[str, ...] = ()
    timestamp: float = field(default_factory=time.time)

    @property
    def available(self) -> bool:
        """Whether at least one GPU is visible (it may still be marked lost)."""
        return bool(self.gpus)

    def gpu(self, index: int) -> GpuInfo | None:
        """The GPU with torch's id `index`, or None."""
        return next((g for g in self.gpus if g.index == index), None)


def resolve_visible(spec: str | None, uuids: Sequence[str | None]) -> tuple[int, ...]:
    """The physical GPUs CUDA exposes, in torch's order, for a CUDA_VISIBLE_DEVICES value.

    Follows CUDA's own rules (as torch.cuda mirrors them): unset means all; a list of integers or of
    "GPU-" UUIDs (full, or prefixes that match exactly one GPU); the first invalid, out-of-range or
    ambiguous entry ends the list; a repeated device makes the list empty. MIG instances ("MIG-...")
    are mapped by `resolve_mig`, not here (this returns () for them).

    Args:
        spec: the variable's value, or None when it is unset.
        uuids: the UUID of each physical GPU, by NVML index (None where it could not be read).
    """
    if spec is None:
        return tuple(range(len(uuids)))
    entries = [entry.strip() for entry in spec.split(",")]
    chosen: list[int] = []
    if entries[0].startswith("GPU-"):
        for entry in entries:
            matches = [i for i, uuid in enumerate(uuids)
                       if uuid and entry.startswith("GPU-") and uuid.startswith(entry)]
            if len(matches) != 1:  # unknown or ambiguous: CUDA stops here
                break
            if matches[0] in chosen:
                return ()
            chosen.append(matches[0])
        return tuple(chosen)
    for entry in entries:
        number = _leading_int(entry)
        if number is None or number < 0 or number >= len(uuids):
            break
        if number in chosen:
            return ()
        chosen.append(number)
    return tuple(chosen)


def _leading_int(text: str) -> int | None:
    # CUDA parses each entry like strtoul: "1gpu" is 1, "gpu1" is invalid.
    digits = len(text) - len(text.lstrip("+-"))
    if digits > 1:
        return None
    end = digits
    while end < len(text) and text[end].isdigit():
        end += 1
    return int(text[:end]) if end > digits else None


def read_inventory(nvml: Nvml | None = None, visible_devices: str | None | object = _FROM_ENVIRONMENT,
                   device_order: str | None | object = _FROM_ENVIRONMENT) -> Inventory:
    """Read the visible GPUs through NVML. Never raises: a broken NVML gives an empty inventory with a reason.

    Args:
        nvml: the connection to read through; None means the process-wide real one.
        visible_devices: CUDA_VISIBLE_DEVICES (None: unset); read from the environment by default.
        device_order: CUDA_DEVICE_ORDER; read from the environment by default.
    """
    nvml = nvml or default_nvml()
    if visible_devices is _FROM_ENVIRONMENT:
        visible_devices = os.environ.get("CUDA_VISIBLE_DEVICES")
    if device_order is _FROM_ENVIRONMENT:
        device_order = os.environ.get("CUDA_DEVICE_ORDER")
    assert visible_devices is None or isinstance(visible_devices, str)
    if not nvml.open():
        return Inventory(reason=f"{NO_GPU}: {nvml.reason}", visible_devices=visible_devices)
    driver = _system(nvml, "nvmlSystemGetDriverVersion")
    cuda = _system(nvml, "nvmlSystemGetCudaDriverVersion")
    cuda_version = f"{cuda // 1000}.{cuda % 1000 // 10}" if isinstance(cuda, int) else None
    try:
        count = int(nvml.call("nvmlDeviceGetCount"))
    except Exception as exc:
        return Inventory(reason=f"{NO_GPU}: NVML could not count the GPUs ({describe_error(exc)})",
                         driver_version=driver, cuda_version=cuda_version, visible_devices=visible_devices)
    if count == 0:
        return Inventory(reason=f"{NO_GPU}: the NVIDIA driver reports no GPUs", driver_version=driver,
                         cuda_version=cuda_version, visible_devices=visible_devices)

    # UUIDs first: with CUDA_VISIBLE_DEVICES=GPU-..., they decide which GPUs are visible at all.
    physical = [_static(nvml, i) for i in range(count)]
    notes = []
    if visible_devices is not None and visible_devices.strip().startswith("MIG-"):
        gpus, mig_notes = resolve_mig(nvml, visible_devices, physical)
        notes.extend(mig_notes)
        order = tuple(dict.fromkeys(g.physical_index for g in gpus))
    else:
        order = resolve_visible(visible_devices, [p.uuid for p in physical])
        gpus = tuple(replace(physical[p], index=visible) for visible, p in enumerate(order))
    hidden = tuple(i for i in range(count) if i not in order)
    names = {g.name for g in gpus if g.name}
    if len(names) > 1 and device_order != "PCI_BUS_ID":
        # CUDA's default order is fastest-first; with mixed models it can differ from NVML's PCI order.
        notes.append("mixed GPU models: set CUDA_DEVICE_ORDER=PCI_BUS_ID so torch's ids match nvidia-smi's")
    reason = ""
    if not gpus:
        reason = f"{NO_GPU}: CUDA_VISIBLE_DEVICES={visible_devices!r} leaves none of the {count} GPU(s) visible"
    return Inventory(gpus, reason, driver, cuda_version, visible_devices, hidden, tuple(notes))


def resolve_mig(nvml: Nvml, spec: str, physical: Sequence[GpuInfo]) -> tuple[tuple[GpuInfo, ...], list[str]]:
    """The MIG instances a `CUDA_VISIBLE_DEVICES=MIG-<uuid>,...` value names, each with its parent GPU.

    NVML lists a MIG-enabled GPU's instances by slot (`nvmlDeviceGetMigDeviceHandleByIndex` up to
    `nvmlDeviceGetMaxMigDeviceCount`); each has its own "MIG-" UUID, name and memory. As with GPU
    UUIDs, an entry may be a unique prefix, and the first unknown entry ends the list. CUDA gives one
    process one MIG instance, so only the first entry becomes a device (torch's cuda:0).
    """
    entries = [e.strip() for e in spec.split(",") if e.strip()]
    instances: list[tuple[str, GpuInfo]] = []
    for parent in physical:
        if parent.lost:
            continue
        p = parent.physical_index
        mode = nvml.query(p, "nvmlDeviceGetMigMode")
        if not mode or not mode[0]:  # (current, pending); NotSupported/None: not a MIG-capable GPU
            continue
        for slot in range(int(nvml.query(p, "nvmlDeviceGetMaxMigDeviceCount") or 0)):
            try:
                uuid = _text(nvml.query((p, slot), "nvmlDeviceGetUUID"))
            except GpuLost:
                break
            if not uuid:  # an empty slot (NVML: NotFound)
                continue
            memory = nvml.query((p, slot), "nvmlDeviceGetMemoryInfo")
            instances.append((uuid, replace(
                parent, uuid=uuid, mig_slot=slot, name=_text(nvml.query((p, slot), "nvmlDeviceGetName")) or
                f"{parent.name or 'GPU'} MIG",
                memory_total_mib=int(memory.total) // MIB if memory is not None else None)))
    chosen: list[GpuInfo] = []
    for entry in entries:
        matches = [info for uuid, info in instances if uuid.startswith(entry)]
        if len(matches) != 1 or not entry.startswith("MIG-"):
            break
        chosen.append(matches[0])
    notes = []
    if not chosen:
        known = ", ".join(uuid for uuid, _ in instances) or "none"
        notes.append(f"CUDA_VISIBLE_DEVICES names MIG instance(s) NVML does not list (MIG instances here: {known})")
    elif len(chosen) > 1 or len(entries) > 1:
        notes.append("CUDA gives a process one MIG instance: only the first listed is used (cuda:0)")
    gpus = tuple(replace(info, index=0) for info in chosen[:1])
    if gpus:
        notes.append(f"cuda:0 is a MIG instance of physical GPU {gpus[0].physical_index} "
                     f"({gpus[0].memory_total_mib or 'n/a'} MiB of its own)")
    return gpus, notes


def _system(nvml: Nvml, name: str):
    try:
        return nvml.call(name)
    except Exception:  # the versions are decoration: n/a rather than no inventory
        return None


def _static(nvml: Nvml, physical_index: int) -> GpuInfo:
    """One physical GPU's facts; `index` is filled in once the visible order is known."""
    try:
        name = nvml.query(physical_index, "nvmlDeviceGetName")
        uuid = nvml.query(physical_index, "nvmlDeviceGetUUID")
        memory = nvml.query(physical_index, "nvmlDeviceGetMemoryInfo")
        pci = nvml.query(physical_index, "nvmlDeviceGetPciInfo")
        capability = nvml.query(physical_index, "nvmlDeviceGetCudaComputeCapability")
    except GpuLost:
        return GpuInfo(physical_index, physical_index, None, None, None, None, None, lost=True)
    return GpuInfo(
        index=physical_index,
        physical_index=physical_index,
        name=_text(name),
        uuid=_text(uuid),
        memory_total_mib=int(memory.total) // MIB if memory is not None else None,
        pci_bus_id=_text(getattr(pci, "busId", None)),
        capability=(int(capability[0]), int(capability[1])) if capability is not None else None,
    )


def _text(value) -> str | None:
    # pynvml returns str from its string functions but bytes from struct fields such as busId.
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    return str(value)
