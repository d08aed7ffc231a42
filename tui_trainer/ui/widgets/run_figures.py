"""RunFigures: the headline figures of one run (status, losses, metric, samples/s, duration, device)."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from tui_trainer.training.figures import train_loss_label
from tui_trainer.ui import format as fmt


def figures_text(summary: dict, run_id: str) -> Text:
    """A few lines from a run's summary.json (missing fields read "-")."""
    out = Text(no_wrap=False)
    out.append(run_id, "bold")
    status = summary.get("status", "unknown")
    out.append(f"\n{status}", "bold red" if status in ("failed", "diverged") else "bold")
    out.append(f" at step {summary.get('step', 0)}/{summary.get('total_steps', 0)}"
               f" in {fmt.seconds(summary.get('wall_s'))}")
    out.append(f"\n{train_loss_label(summary.get('loss_window'))} {fmt.number(summary.get('final_loss'))}"
               f"\nval loss (last evaluation) {fmt.number(summary.get('final_val_loss'))}"
               f"  best val {fmt.number(summary.get('best_val_loss'))}")
    metric = summary.get("metric_name") or "metric"
    out.append(f"\n{metric} {fmt.number(summary.get('metric'), 3)}"
               f"  {fmt.rate(summary.get('samples_per_s'))} samples/s"
               f"  eff. batch {summary.get('effective_batch') or '-'}")
    peak = summary.get("peak_memory_mib")
    out.append(f"\ndevice {summary.get('device') or '-'}  peak mem {fmt.mib(peak) if peak else '-'}"
               f"  skipped {summary.get('skipped_steps', 0)}")
    if summary.get("error"):
        out.append(f"\nerror: {summary['error']}", "red")
    return out


class RunFigures(Static):
    """The figures of one run; `show(summary, run_id)` redraws."""

    DEFAULT_CSS = """
    RunFigures { height: auto; }
    """

    def show(self, summary: dict, run_id: str) -> None:
        self.update(figures_text(summary, run_id))
