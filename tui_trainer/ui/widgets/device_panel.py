"""DevicePanel: the bordered panel of one device a run uses: a few lines of figures over a sparkline."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.reactive import var
from textual.widget import Widget
from textual.widgets import Static

from tui_trainer.ui.widgets.spark_plot import SparkPlot


class DevicePanel(Widget):
    """The shared shape of CpuPanel and GpuPanel: assign `sample` and `history` to redraw.

    A subclass says what its lines read (`lines`) and what scale its sparkline has (`bounds`).
    """

    DEFAULT_CSS = """
    DevicePanel {
        height: auto;
        border: round $primary-darken-1;
        padding: 0 1;
        & > Static { height: auto; }
        & > SparkPlot { height: 1; color: $warning; }
    }
    """

    sample = var(None, init=False)
    history: var[tuple[float, ...]] = var(tuple, init=False)

    def compose(self) -> ComposeResult:
        yield Static(self.lines(), markup=False)
        yield SparkPlot()

    def on_mount(self) -> None:
        self.border_title = self.title

    @property
    def title(self) -> str:
        raise NotImplementedError

    def lines(self) -> Text:
        """The panel's text (without its sparkline), from the current sample."""
        raise NotImplementedError

    def bounds(self) -> tuple[float, float] | None:
        """The sparkline's fixed scale for the current sample (None: keep the one it has)."""
        return None

    def watch_sample(self) -> None:
        self._draw()

    def watch_history(self) -> None:
        self._draw()

    def _draw(self) -> None:
        if not self.is_mounted:
            return
        self.query_one(Static).update(self.lines())
        plot = self.query_one(SparkPlot)
        bounds = self.bounds()
        if bounds is not None:
            plot.bounds = bounds
            plot.log = False
        plot.values = self.history
