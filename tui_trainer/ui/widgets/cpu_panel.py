"""CpuPanel: what a CPU run costs this process: resident memory and CPU use, with a CPU sparkline."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets import Static

from tui_trainer.session import format as fmt
from tui_trainer.session.monitor import ProcessSample
from tui_trainer.ui.widgets.spark_plot import SparkPlot


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


class CpuPanel(Widget):
    """The device panel of a CPU run; `show(sample, cpu_history)` redraws it."""

    DEFAULT_CSS = """
    CpuPanel {
        height: auto;
        border: round $primary-darken-1;
        padding: 0 1;
        & > Static { height: auto; }
        & > SparkPlot { height: 1; color: $warning; }
    }
    """

    def compose(self) -> ComposeResult:
        yield Static(cpu_lines(None), markup=False)
        yield SparkPlot()

    def on_mount(self) -> None:
        self.border_title = "CPU"

    def show(self, sample: ProcessSample | None, cpu_history: Sequence[float]) -> None:
        """Draw the newest process sample and this process's CPU % history (oldest first)."""
        self.query_one(Static).update(cpu_lines(sample))
        plot = self.query_one(SparkPlot)
        if sample is not None:
            plot.bounds = (0.0, 100.0 * sample.cores)
            plot.log = False
        plot.values = tuple(cpu_history)
