"""CurveView: a run's full train and validation loss curves, with their ranges."""

from __future__ import annotations

import math

from textual.app import ComposeResult
from textual.reactive import var
from textual.widget import Widget
from textual.widgets import Static

from tui_trainer.runs import Curves, downsample
from tui_trainer.session import format as fmt
from tui_trainer.training.figures import train_loss, train_loss_label
from tui_trainer.ui.widgets.spark_plot import SparkPlot, use_log_scale

SMOOTH_POINTS = 300


class CurveView(Widget):
    """Train loss (tall) and validation loss plots of one run's metrics.jsonl.

    Assign `curves`, and `bounds` ((train low, high), (val low, high)) to fix the scales, so two views
    side by side compare at the same scale (None: each plot at its own). `loss_window` is the run's train
    loss window (summary.json): the title's train loss is then the same figure as the run's summary;
    without it (an older run) the title gives the last step's loss.
    """

    DEFAULT_CSS = """
    CurveView {
        height: 1fr;
        & > .title { height: 1; color: $text-muted; }
        & > #train-plot { height: 2fr; min-height: 2; }
        & > #val-plot { height: 1fr; min-height: 1; color: $success; }
    }
    """

    curves: var[Curves | None] = var(None, init=False)
    bounds: var[tuple[tuple[float, float] | None, tuple[float, float] | None]] = var((None, None), init=False)
    loss_window: var[int] = var(0, init=False)

    def compose(self) -> ComposeResult:
        yield Static("train loss: reading metrics...", classes="title", id="train-title", markup=False)
        yield SparkPlot(id="train-plot")
        yield Static("val loss", classes="title", id="val-title", markup=False)
        yield SparkPlot(id="val-plot")

    def watch_curves(self) -> None:
        self._draw()

    def watch_bounds(self) -> None:
        self._draw()

    def watch_loss_window(self) -> None:
        self._draw()

    def _draw(self) -> None:
        """Draw the curves (at the given scales, else each at its own)."""
        if self.curves is None or not self.is_mounted:
            return
        train_bounds, val_bounds = self.bounds
        curves = self.curves
        for name, values, bounds in (("train", curves.losses, train_bounds), ("val", curves.val_losses, val_bounds)):
            finite = [v for v in values if math.isfinite(v)]
            points = downsample(finite, SMOOTH_POINTS)
            plot = self.query_one(f"#{name}-plot", SparkPlot)
            low_high = bounds or ((min(points), max(points)) if points else None)
            plot.log = use_log_scale(low_high) if low_high else False
            plot.bounds = low_high
            plot.values = tuple(points)
            title = self.query_one(f"#{name}-title", Static)
            if not points:
                title.update(f"{name} loss: no values recorded")
                continue
            scale = "  log" if plot.log_scale else ""
            # The figures are the recorded values; only the drawing averages them.
            if name == "val":
                head = f"val loss (last evaluation) {fmt.number(finite[-1])}"
            elif self.loss_window:
                head = f"{train_loss_label(self.loss_window)} {fmt.number(train_loss(finite, self.loss_window))}"
            else:
                head = f"train loss (last step) {fmt.number(finite[-1])}"
            title.update(f"{head}  min {fmt.number(min(finite))}  max {fmt.number(max(finite))}{scale}")


def smoothed(values, points: int = SMOOTH_POINTS) -> list[float]:
    """A curve as drawn: finite values averaged into at most `points` (single steps are too noisy)."""
    return downsample([v for v in values if math.isfinite(v)], points)
