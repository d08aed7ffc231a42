"""GPUs through NVML: a static inventory, live samples, and a sampler thread. No torch, Textual or rich.

GPUs are numbered the way torch numbers them (after CUDA_VISIBLE_DEVICES): `index` everywhere, with
`physical_index` (nvidia-smi's number) alongside. No NVML (no driver, no GPU) is a normal state:
the inventory is empty and `reason` says why.
"""

from tui_trainer.hardware.inventory import GpuInfo, Inventory, read_inventory, resolve_visible
from tui_trainer.hardware.machine import detect_machine
from tui_trainer.hardware.nvml import NO_GPU, GpuLost, Nvml, NvmlBackend, default_nvml, describe_error
from tui_trainer.hardware.sampler import GpuSampler
from tui_trainer.hardware.samples import GpuProcess, GpuSample, read_samples
from tui_trainer.hardware.torch_memory import TorchMemory, cuda_ready, read_torch_memory

__all__ = [
    "GpuInfo", "Inventory", "read_inventory", "resolve_visible", "detect_machine", "NO_GPU", "GpuLost", "Nvml",
    "NvmlBackend", "default_nvml", "describe_error", "GpuSampler", "GpuProcess", "GpuSample", "read_samples",
    "TorchMemory", "cuda_ready", "read_torch_memory",
]
