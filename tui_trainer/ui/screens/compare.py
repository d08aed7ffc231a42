"""The compare screen: 2 to 4 runs' curves overlaid on one plot each (train loss, validation loss) on a
step or wall-time axis, the config keys that differ, and each run's figures side by side."""

from __future__ import annotations

import math

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.reactive import var
from textual.screen import Screen
from textual.widgets import Footer, Static

from tui_trainer.runs import Curves, RunRecord, downsample, load_summary, read_curves
from tui_trainer.runs.metrics import METRICS_NAME, times_at
from tui_trainer.runs.settings import config_differences
from tui_trainer.ui.messages import ConfigsCompared, RunLoaded
from tui_trainer.ui.widgets.curve_view import SMOOTH_POINTS
from tui_trainer.ui.widgets.overlay_plot import OverlayData, OverlayPlot, OverlaySeries, series_letter
from tui_trainer.ui.widgets.run_figures import RunFigures

MAX_COMPARED = 4
MAX_VAL_POINTS = 20_000  # evaluations drawn one point each (the y labels are their real max and min) up to this
STEP, WALL_TIME = "step", "wall time"


def curve_points(steps, values, points: int = SMOOTH_POINTS) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """A curve as drawn: its finite (step, value) pairs averaged into at most `points` (single steps are
    too noisy), each drawn point at the mean step of the values it averages."""
    if not all(map(math.isfinite, values)):  # rare (fp16 skipped steps): only then the pairs are filtered
        kept = [i for i, v in enumerate(values) if math.isfinite(v)]
        steps, values = [steps[i] for i in kept], [values[i] for i in kept]
    return tuple(map(float, downsample(steps, points))), tuple(downsample(values, points))


def on_axis(points: tuple[tuple[float, ...], tuple[float, ...]], curves: Curves, axis: str):
    """A drawn curve on the chosen x axis: at its steps, or at the run's wall time at those steps (None
    when the run recorded no times)."""
    if axis == STEP:
        return points
    xs = times_at(curves, points[0])
    return None if xs is None else (tuple(xs), points[1])


class CompareScreen(Screen):
    """Run A, B (up to D): curves on shared plots, what differs, figures side by side."""

    CSS_PATH = "compare.tcss"

    BINDINGS = [
        Binding("t", "toggle_axis", "Step/wall time"),
        Binding("escape", "back", "Back"),
    ]

    x_axis: var[str] = var(STEP, init=False)

    def __init__(self, *records: RunRecord):
        super().__init__()
        self.records = records
        self.loaded: list[RunLoaded] = []
        self.curves: tuple[Curves, ...] | None = None  # every run's curves, once all are read
        self.differences: list | None = None
        self.points: list[tuple] = []  # per run, its (train, val) curves as drawn on the step axis

    def compose(self) -> ComposeResult:
        yield Static(f"compare {len(self.records)} runs: curves on one plot, one scale  (t: step/wall time)",
                     id="compare-title", markup=False)
        yield Static("differs: reading the configs...", id="compare-differs", markup=False)
        yield OverlayPlot(id="train-overlay")
        yield OverlayPlot(id="val-overlay")
        with Horizontal(id="sides"):
            for index in range(len(self.records)):
                yield RunFigures(classes="side", id=f"figures-{'abcdef'[index]}")
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
        """Each run's figures as it comes; the plots once all are in (they share one scale)."""
        index = len(self.loaded)  # the worker reads the runs in order (a run may be compared with itself)
        self.query_one(f"#figures-{'abcdef'[index]}", RunFigures).figures = (message.summary, message.run_id,
                                                                             message.damage)
        self.loaded.append(message)
        if len(self.loaded) == len(self.records):
            self.curves = tuple(m.curves for m in self.loaded)
            self.points = [(curve_points(c.steps, c.losses), curve_points(c.val_steps, c.val_losses, MAX_VAL_POINTS))
                           for c in self.curves]
            self.draw()

    def on_configs_compared(self, message: ConfigsCompared) -> None:
        """The config keys whose values differ, `key a | b` each."""
        differences = self.differences = message.differences
        text = "; ".join(f"{key} {' | '.join(_value(v) for v in values)}" for key, values in differences)
        self.query_one("#compare-differs", Static).update(f"differs: {text}" if differences
                                                          else "same config (only the run differs)")
        self.draw()

    def watch_x_axis(self) -> None:
        self.draw()

    def action_toggle_axis(self) -> None:
        self.x_axis = WALL_TIME if self.x_axis == STEP else STEP

    def labels(self) -> list[str]:
        """Each run's legend: its letter, its id and its values of the keys that differ (`lr=0.01`)."""
        out = []
        for index, record in enumerate(self.records):
            values = " ".join(f"{key.rsplit('.', 1)[-1]}={_value(v[index])}" for key, v in self.differences or ()
                              if index < len(v))
            out.append(f"{series_letter(index)} {record.run_id} {values}".rstrip())
        return out

    def draw(self) -> None:
        """Both overlay plots from the loaded curves, on the chosen x axis."""
        if self.curves is None:
            return
        axis, labels = self.x_axis, self.labels()
        train, val, missing = [], [], []
        for index, (curves, (t, v)) in enumerate(zip(self.curves, self.points)):
            t, v = on_axis(t, curves, axis), on_axis(v, curves, axis)
            if t is None:
                missing.append(series_letter(index))
            train.append(OverlaySeries(labels[index], *t) if t is not None else None)
            val.append(OverlaySeries(labels[index], *v) if v is not None else None)
        notes = tuple(f"no wall times recorded for run {letter} (written before tui-trainer recorded them): "
                      "left out; t shows it on steps" for letter in missing)
        self.query_one("#train-overlay", OverlayPlot).data = OverlayData(
            "train loss (smoothed)", tuple(train), axis, legend=True, notes=notes)
        self.query_one("#val-overlay", OverlayPlot).data = OverlayData(
            "val loss (each evaluation)", tuple(val), axis, legend=False)

    def action_back(self) -> None:
        self.app.pop_screen()


def _value(value: object) -> str:
    """A config value as TOML writes it; "-" where a run's config lacks the key."""
    from tui_trainer.config.errors import format_value

    return "-" if value is None else value if isinstance(value, str) else format_value(value)
