"""LossSparkline: a titled loss plot with the current and minimum values."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.reactive import var
from textual.widget import Widget
from textual.widgets import Static

from tui_trainer.session import format as fmt
from tui_trainer.session.run_state import LossCurve
from tui_trainer.ui.widgets.spark_plot import SparkPlot


class LossSparkline(Widget):
    """A loss series as a sparkline under a one-line title: `train loss 2,337  min 1,984  log`.

    Assign `curve` (a frozen LossCurve) to redraw; an equal curve draws nothing.
    """

    DEFAULT_CSS = """
    LossSparkline {
        height: auto;
        & > .title { height: 1; color: $text-muted; }
        & > SparkPlot { height: 2; }
    }
    """

    curve: var[LossCurve] = var(LossCurve, init=False)

    def __init__(self, title: str, *, id: str | None = None, classes: str | None = None):
        super().__init__(id=id, classes=classes)
        self.title = title

    def compose(self) -> ComposeResult:
        yield Static(self.title, classes="title", markup=False)
        yield SparkPlot()

    def on_mount(self) -> None:
        self._draw()

    def watch_curve(self) -> None:
        if self.is_mounted:
            self._draw()

    def _draw(self) -> None:
        curve = self.curve
        plot = self.query_one(SparkPlot)
        plot.values = curve.values
        parts = [curve.label or self.title]
        if curve.current is None:
            parts.append("waiting for the first values")
        else:
            parts += [fmt.number(curve.current), f"min {fmt.number(curve.minimum)}"]
        if curve.note:
            parts.append(curve.note)
        if plot.log_scale:
            parts.append("(log scale)")
        self.query_one(".title", Static).update("  ".join(parts), layout=False)  # one line: no re-layout
