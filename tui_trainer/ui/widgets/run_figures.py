"""RunFigures: the headline figures of one run (status, losses, metric, samples/s, duration, device)."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from tui_trainer.session import format as fmt
from tui_trainer.training.events import RunSummary
from tui_trainer.training.figures import train_loss_label


def figures_text(summary: RunSummary, run_id: str, note: str = "") -> Text:
    """A few lines from a run's summary (missing figures read "-"); `note` says what in its files is damaged."""
    out = Text(no_wrap=False)
    out.append(run_id, "bold")
    status = summary.status or "unknown"
    out.append(f"\n{status}", "bold red" if status in ("failed", "diverged") else "bold")
    out.append(f" at step {summary.step}/{summary.total_steps} in {fmt.seconds(summary.wall_s)}")
    out.append(f"\n{train_loss_label(summary.loss_window)} {fmt.number(summary.final_loss)}"
               f"\nval loss (last evaluation) {fmt.number(summary.final_val_loss)}"
               f"  best val {fmt.number(summary.best_val_loss)}")
    metric = summary.metric_name or "metric"
    out.append(f"\n{metric} {fmt.number(summary.metric, 3)}"
               f"  {fmt.rate(summary.samples_per_s)} samples/s"
               f"  eff. batch {summary.effective_batch or '-'}")
    peak = summary.peak_memory_mib
    out.append(f"\ndevice {summary.device or '-'}  peak mem {fmt.mib(peak) if peak else '-'}"
               f"  skipped {summary.skipped_steps}")
    if summary.error:
        out.append(f"\nerror: {summary.error}", "red")
    if note:
        out.append(f"\ndamaged: {note}", "yellow")
    return out


class RunFigures(Widget):
    """The figures of one run; assign `figures` (summary, run id, damage note) to redraw."""

    DEFAULT_CSS = """
    RunFigures { height: auto; }
    """

    figures: reactive[tuple[RunSummary, str, str]] = reactive(lambda: (RunSummary("", "", ""), "", ""))

    def render(self) -> Text:
        return figures_text(*self.figures)
