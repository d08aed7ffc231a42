"""The compare screen: two runs side by side, figures and curves at the same scale."""

from __future__ import annotations

import math

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Static

from tui_trainer.runs import Curves, RunRecord, load_summary, read_curves
from tui_trainer.runs.metrics import METRICS_NAME
from tui_trainer.runs.settings import config_differences
from tui_trainer.ui.messages import ConfigsCompared, RunLoaded
from tui_trainer.ui.widgets.curve_view import CurveView, smoothed
from tui_trainer.ui.widgets.run_figures import RunFigures


def shared_bounds(*series) -> tuple[float, float] | None:
    """One (low, high) over several series, so plots side by side share a scale."""
    values = [v for s in series for v in s if math.isfinite(v)]
    return (min(values), max(values)) if values else None


class CompareScreen(Screen):
    """Run A on the left, run B on the right."""

    CSS_PATH = "compare.tcss"

    BINDINGS = [
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, a: RunRecord, b: RunRecord):
        super().__init__()
        self.records = (a, b)
        self.loaded: dict[str, Curves] = {}
        self.curves: tuple[Curves, Curves] | None = None
        self.loss_windows: dict[str, int] = {}
        self.differences: list | None = None

    def compose(self) -> ComposeResult:
        yield Static("compare (same scale on both sides)", id="compare-title", markup=False)
        yield Static("differs: reading the configs...", id="compare-differs", markup=False)
        with Horizontal(id="sides"):
            for side in "ab":
                with Vertical(classes="side", id=f"side-{side}"):
                    yield RunFigures(id=f"figures-{side}")
                    yield CurveView(id=f"curves-{side}")
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exclusive=True)
    def load(self) -> None:
        self.post_message(ConfigsCompared(config_differences([r.path for r in self.records])))
        for record in self.records:
            read = load_summary(record.path)
            self.post_message(RunLoaded(record.run_id, read.summary, read_curves(record.path / METRICS_NAME),
                                        read.damage))

    def on_run_loaded(self, message: RunLoaded) -> None:
        """Each run's figures as it comes; the curves once both are in (they share one scale)."""
        side = "ab"[len(self.loaded)]  # the worker reads a, then b (a run may be compared with itself)
        self.query_one(f"#figures-{side}", RunFigures).figures = (message.summary, message.run_id, message.damage)
        self.loaded[side] = message.curves
        self.loss_windows[side] = message.summary.loss_window
        if len(self.loaded) < 2:
            return
        curves = self.curves = (self.loaded["a"], self.loaded["b"])
        bounds = (shared_bounds(*(smoothed(c.losses) for c in curves)),
                  shared_bounds(*(smoothed(c.val_losses) for c in curves)))
        for side, c in zip("ab", curves):
            view = self.query_one(f"#curves-{side}", CurveView)
            view.bounds = bounds
            view.loss_window = self.loss_windows[side]
            view.curves = c

    def on_configs_compared(self, message: ConfigsCompared) -> None:
        """The config keys whose values differ, `key a | b` each."""
        differences = self.differences = message.differences
        text = "; ".join(f"{key} {' | '.join(_value(v) for v in values)}" for key, values in differences)
        self.query_one("#compare-differs", Static).update(f"differs: {text}" if differences
                                                          else "same config (only the run differs)")

    def action_back(self) -> None:
        self.app.pop_screen()


def _value(value: object) -> str:
    """A config value as TOML writes it; "-" where a run's config lacks the key."""
    from tui_trainer.config.errors import format_value

    return "-" if value is None else value if isinstance(value, str) else format_value(value)
