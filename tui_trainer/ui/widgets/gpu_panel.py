"""GpuPanel: one GPU in use by a run: NVML memory with a bar and a sparkline, utilisation,
temperature, power, and this process's torch allocator figures. All GPU-specific rendering is here."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import var

from tui_trainer.hardware import GpuSample
from tui_trainer.session import format as fmt
from tui_trainer.ui.widgets.device_panel import DevicePanel


def gpu_lines(sample: GpuSample | None, index: int, width: int,
              run_memory: tuple[float, float, float] | None = None) -> Text:
    """The text of a GPU panel (without its sparkline).

    `run_memory` is the run's own torch (allocated, reserved, peak) MiB on this GPU, from its progress
    events: the training runs in worker processes, whose allocator this process cannot read.
    """
    out = Text(no_wrap=True, overflow="ellipsis")
    if sample is None:
        out.append(f"GPU {index}", "bold")
        out.append("  waiting for the first sample")
        return out
    out.append(f"GPU {sample.index}", "bold")
    if sample.is_mig:  # a slice of a GPU: its own memory, the board's temperature and power
        out.append(f" MIG instance of GPU {sample.physical_index}:", "bold")
    out.append(f" {sample.name or 'unknown'}")
    if sample.lost:
        out.append("\nlost: the GPU fell off the bus (needs a reset)", "bold red")
        return out
    used, total = sample.memory_used_mib, sample.memory_total_mib
    fraction = used / total if used is not None and total else None
    label = f" {fmt.mib(used)}/{fmt.mib(total)}"
    out.append("\nmem ")
    out.append(fmt.bar(fraction, max(4, min(20, width - len(label) - 4))), _load_style(fraction))
    out.append(label)
    power = "n/a" if sample.power_w is None else f"{sample.power_w:.0f}"
    limit = "" if sample.power_limit_w is None else f"/{sample.power_limit_w:.0f}"
    temp = "n/a" if sample.temperature_c is None else f"{sample.temperature_c}°C"
    out.append(f"\nutil {fmt.percent(sample.utilization_gpu)}  {temp}  {power}{limit} W")
    t = sample.torch
    if run_memory is not None:
        allocated, reserved, peak = run_memory
        out.append(f"\ntorch alloc {fmt.mib(allocated)} rsvd {fmt.mib(reserved)} peak {fmt.mib(peak)}")
    elif t is not None:
        out.append(f"\ntorch alloc {fmt.mib(t.allocated_mib)} rsvd {fmt.mib(t.reserved_mib)} "
                   f"peak {fmt.mib(t.peak_allocated_mib)}")
    elif sample.processes:
        held = sum(p.memory_mib or 0 for p in sample.processes)
        out.append(f"\n{len(sample.processes)} process(es) hold {fmt.mib(held)}")
    else:
        out.append("\ntorch: n/a (CUDA not started here)", "dim")
    return out


def _load_style(fraction: float | None) -> str:
    if fraction is None:
        return ""
    return "red" if fraction > 0.9 else "yellow" if fraction > 0.7 else "green"


class GpuPanel(DevicePanel):
    """The panel of GPU `index`: `sample` is its newest GpuSample, `history` its memory used (MiB, oldest
    first), `run_memory` the run's own torch (allocated, reserved, peak) MiB on it."""

    sample: var[GpuSample | None] = var(None, init=False)
    run_memory: var[tuple[float, float, float] | None] = var(None, init=False)

    def __init__(self, index: int, *, id: str | None = None):
        super().__init__(id=id)
        self.index = index

    @property
    def title(self) -> str:
        return f"GPU {self.index}"

    def lines(self) -> Text:
        width = self.size.width - 4 if self.is_mounted else 30
        return gpu_lines(self.sample, self.index, width, self.run_memory)

    def bounds(self) -> tuple[float, float] | None:
        if self.sample is None or not self.sample.memory_total_mib:
            return None
        return (0.0, float(self.sample.memory_total_mib))  # memory against capacity, not against itself

    def watch_run_memory(self) -> None:
        self._draw()
