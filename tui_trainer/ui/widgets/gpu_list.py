"""GpuList: the launch screen's short list of detected GPUs, or why the machine is CPU only."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from tui_trainer.hardware import GpuSample
from tui_trainer.session import format as fmt

CPU_ONLY = "no NVIDIA GPU detected - CPU only"


def cpu_only_line(reason: str) -> str:
    """`no NVIDIA GPU detected - CPU only (NVML library not found)` from a machine's gpu_note."""
    detail = reason.removeprefix("no NVIDIA GPU detected").lstrip(":- ").strip()
    return f"{CPU_ONLY} ({detail})" if detail else CPU_ONLY


class GpuList(Widget):
    """One line per GPU: id, name, memory bar and used/total, utilisation, temperature.

    `samples` are the newest readings (refreshed by the app about once a second); `reason` is the
    machine's note when it has no usable GPU.
    """

    DEFAULT_CSS = """
    GpuList {
        height: auto;
        max-height: 5;
        overflow-y: auto;
    }
    """

    samples: reactive[tuple[GpuSample, ...]] = reactive(tuple)
    names: reactive[tuple[tuple[int, str], ...]] = reactive(tuple)
    reason: reactive[str] = reactive("")

    def render(self) -> Text:
        if not self.samples and not self.names:
            return Text(cpu_only_line(self.reason or "no NVIDIA GPU detected"), style="bold yellow")
        if not self.samples:  # GPUs known, first reading not in yet
            return Text("\n".join(f"GPU {i}  {name}  reading..." for i, name in self.names), no_wrap=True)
        lines = []
        width = self.size.width
        for s in self.samples:
            line = Text(no_wrap=True, overflow="ellipsis")
            line.append(f"GPU {s.index} ", "bold")
            if s.lost:
                line.append(f"{s.name or ''}  lost (fell off the bus)", "red")
                lines.append(line)
                continue
            used, total = s.memory_used_mib, s.memory_total_mib
            fraction = used / total if used is not None and total else None
            tail = (f" {fmt.mib(used)}/{fmt.mib(total)}  util {fmt.percent(s.utilization_gpu)}  "
                    f"{'n/a' if s.temperature_c is None else f'{s.temperature_c}°C'}")
            name = (s.name or "unknown").removeprefix("NVIDIA ")
            name = name[: max(8, width - len(tail) - 22)]
            line.append(f"{name:<12} ")
            line.append(fmt.bar(fraction, 10), "green" if (fraction or 0) < 0.9 else "red")
            line.append(tail)
            lines.append(line)
        return Text("\n").join(lines)
