"""The compare screen: two runs side by side, figures and curves at the same scale."""

from __future__ import annotations

import math

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Static

from tui_trainer.runs import Curves, RunRecord, read_curves, read_summary
from tui_trainer.runs.metrics import METRICS_NAME
from tui_trainer.runs.settings import config_differences
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
        Binding("question_mark", "app.help", "Help", key_display="?"),
        Binding("q", "app.request_quit", "Quit"),
    ]

    def __init__(self, a: RunRecord, b: RunRecord):
        super().__init__()
        self.records = (a, b)
        self.curves: tuple[Curves, Curves] | None = None
        self.loss_windows = [0, 0]
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
        differences = config_differences([r.path for r in self.records])
        self.app.call_from_thread(self.show_differences, differences)
        loaded = []
        for i, (side, record) in enumerate(zip("ab", self.records)):
            summary = read_summary(record.path)
            self.loss_windows[i] = summary.get("loss_window") or 0
            self.app.call_from_thread(self.query_one(f"#figures-{side}", RunFigures).show, summary, record.run_id)
            loaded.append(read_curves(record.path / METRICS_NAME))
        self.app.call_from_thread(self.show_curves, tuple(loaded))

    def show_differences(self, differences: list) -> None:
        """The config keys whose values differ, `key a | b` each."""
        self.differences = differences
        text = "; ".join(f"{key} {' | '.join(_value(v) for v in values)}" for key, values in differences)
        self.query_one("#compare-differs", Static).update(f"differs: {text}" if differences
                                                          else "same config (only the run differs)")

    def show_curves(self, curves: tuple[Curves, Curves]) -> None:
        self.curves = curves
        train = shared_bounds(*(smoothed(c.losses) for c in curves))
        val = shared_bounds(*(smoothed(c.val_losses) for c in curves))
        for side, c, window in zip("ab", curves, self.loss_windows):
            self.query_one(f"#curves-{side}", CurveView).show(c, train, val, window)

    def action_back(self) -> None:
        self.app.pop_screen()


def _value(value: object) -> str:
    """A config value as TOML writes it; "-" where a run's config lacks the key."""
    from tui_trainer.config.errors import format_value

    return "-" if value is None else value if isinstance(value, str) else format_value(value)
