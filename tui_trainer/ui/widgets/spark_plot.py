"""SparkPlot: a series drawn as bars of block characters, one or more rows high."""

from __future__ import annotations

import math
from collections.abc import Sequence

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from tui_trainer.runs.metrics import downsample

BARS = "▁▂▃▄▅▆▇█"


def use_log_scale(values: Sequence[float]) -> bool:
    """Log scale pays when every value is positive and they span more than a factor of 10 (a loss curve)."""
    return bool(values) and min(values) > 0 and max(values) / min(values) > 10


def columns_of(values: Sequence[float], width: int) -> list[float]:
    """The finite values averaged into at most `width` columns: what a plot of that width draws."""
    return downsample([v for v in values if math.isfinite(v)], max(width, 1))


def plot_rows(values: Sequence[float], width: int, height: int, bounds: tuple[float, float] | None = None,
              log: bool | None = False) -> list[str]:
    """The plot as `height` strings of at most `width` cells (top row first).

    Fewer values than columns are drawn one per column from the left (the plot grows as a run
    does); more are averaged into `width` columns. `bounds` fixes the scale (to compare runs).
    `log=None` picks a log scale when the columns drawn span more than a factor of 10.
    """
    if width <= 0 or height <= 0:
        return []
    columns = columns_of(values, width)
    if log is None:
        log = use_log_scale(columns) and (bounds is None or bounds[0] > 0)
    if log:
        columns = [math.log10(v) for v in columns if v > 0]
        if bounds is not None:
            bounds = (math.log10(max(bounds[0], 1e-300)), math.log10(max(bounds[1], 1e-300)))
    if not columns:
        return [""] * height
    lo, hi = bounds if bounds is not None else (min(columns), max(columns))
    span = hi - lo
    levels = height * len(BARS)
    heights = [(0 if span <= 0 else round((v - lo) / span * (levels - 1))) for v in columns]
    rows = []
    for row in reversed(range(height)):
        base = row * len(BARS)
        cells = []
        for h in heights:
            h = min(max(h, 0), levels - 1)
            if h >= base + len(BARS):
                cells.append(BARS[-1])
            elif h >= base:
                cells.append(BARS[h - base])
            else:
                cells.append(" ")
        rows.append("".join(cells))
    return rows


class SparkPlot(Widget):
    """A bar plot of a series; reassign `values` (or `bounds`, `log`) to redraw.

    Why not Textual's `Sparkline`: it scales every plot to its own min and max and has no log scale.
    Comparing two runs needs fixed `bounds` (the same scale side by side, GPU memory against the
    card's capacity), and a loss curve that falls by orders of magnitude reads only on a log scale.
    The drawing itself is the pure function `plot_rows`, tested without an app.
    """

    DEFAULT_CSS = """
    SparkPlot {
        height: 1;
        color: $accent;
    }
    """

    values: reactive[tuple[float, ...]] = reactive(tuple)
    bounds: reactive[tuple[float, float] | None] = reactive(None)
    log: reactive[bool | None] = reactive(None)
    """True or False forces the scale; None picks log when the columns drawn span a factor of 10."""

    @property
    def log_scale(self) -> bool:
        """Whether the plot is drawn on a log scale at its current width."""
        if self.log is not None:
            return self.log
        columns = columns_of(self.values, self.size.width or 80)
        return use_log_scale(columns) and (self.bounds is None or self.bounds[0] > 0)

    def render(self) -> Text:
        rows = plot_rows(self.values, self.size.width, self.size.height, self.bounds, self.log)
        return Text("\n".join(rows), no_wrap=True, overflow="crop")
