"""CpuPanel: what a CPU run costs this process: resident memory and CPU use, with a CPU sparkline."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import var

from tui_trainer.session import format as fmt
from tui_trainer.session.monitor import ProcessSample
from tui_trainer.ui.widgets.device_panel import DevicePanel


def cpu_lines(sample: ProcessSample | None) -> Text:
    """The text of the CPU panel (without its sparkline)."""
    out = Text(no_wrap=True, overflow="ellipsis")
    out.append("CPU", "bold")
    if sample is None:
        out.append("  waiting for the first sample")
        return out
    who = "this process" if not sample.children else f"this process + {sample.children} children"
    out.append(f" {sample.cores} cores  {who}: RSS {fmt.mib(sample.rss_mib)}  CPU {sample.cpu_percent:.0f}%")
    out.append(f"\nmachine: CPU {sample.system_cpu_percent:.0f}%  RAM {sample.ram_percent:.0f}% "
               f"of {fmt.mib(sample.ram_total_mib)}", "dim")
    return out


class CpuPanel(DevicePanel):
    """The device panel of a CPU run: `sample` is the newest ProcessSample, `history` its CPU % (oldest first)."""

    sample: var[ProcessSample | None] = var(None, init=False)
    title = "CPU"

    def lines(self) -> Text:
        return cpu_lines(self.sample)

    def bounds(self) -> tuple[float, float] | None:
        return None if self.sample is None else (0.0, 100.0 * self.sample.cores)
