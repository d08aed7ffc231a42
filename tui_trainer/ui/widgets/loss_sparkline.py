"""LossSparkline: a titled loss plot with the current and minimum values."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets import Static

from tui_trainer.session import format as fmt
from tui_trainer.ui.widgets.spark_plot import SparkPlot


class LossSparkline(Widget):
    """A loss series as a sparkline under a one-line title: `train loss 2,337  min 1,984  log`."""

    DEFAULT_CSS = """
    LossSparkline {
        height: auto;
        & > .title { height: 1; color: $text-muted; }
        & > SparkPlot { height: 2; }
    }
    """

    def __init__(self, title: str, *, id: str | None = None, classes: str | None = None):
        super().__init__(id=id, classes=classes)
        self.title = title
        self.values: tuple[float, ...] = ()
        self.current: float | None = None
        self.minimum: float | None = None
        self.extra = ""

    def compose(self) -> ComposeResult:
        yield Static(self.title, classes="title", markup=False)
        yield SparkPlot()

    def on_mount(self) -> None:
        self._redraw()

    def show(self, values: Sequence[float], current: float | None, minimum: float | None, extra: str = "") -> None:
        """Set the series, the current and minimum values, and a note, in one redraw."""
        self.values, self.current, self.minimum, self.extra = tuple(values), current, minimum, extra
        if self.is_mounted:
            self._redraw()

    def _redraw(self) -> None:
        plot = self.query_one(SparkPlot)
        plot.values = self.values
        parts = [self.title]
        if self.current is None:
            parts.append("waiting for the first values")
        else:
            parts += [fmt.number(self.current), f"min {fmt.number(self.minimum)}"]
        if self.extra:
            parts.append(self.extra)
        if plot.log_scale:
            parts.append("(log scale)")
        self.query_one(".title", Static).update("  ".join(parts), layout=False)  # one line: no re-layout
