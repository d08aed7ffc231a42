"""The run detail screen: one run's figures and its full loss curves from metrics.jsonl."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static

from tui_trainer.runs import RunRecord, load_summary, read_curves
from tui_trainer.runs.metrics import METRICS_NAME
from tui_trainer.training.events import RunSummary
from tui_trainer.ui.messages import RunLoaded
from tui_trainer.ui.widgets.curve_view import CurveView
from tui_trainer.ui.widgets.run_figures import RunFigures


class RunDetailScreen(Screen):
    """Figures on top, the curves below; the metrics file is read in a worker."""

    CSS_PATH = "run_detail.tcss"

    BINDINGS = [
        Binding("r", "resume", "Resume"),
        Binding("d", "delete", "Delete"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, record: RunRecord):
        super().__init__()
        self.record = record
        self.curves = None
        self.loss_window = 0  # the run's train loss window (summary.json), for the curve's title

    def compose(self) -> ComposeResult:
        yield Static(f"run {self.record.run_id}", id="detail-title", markup=False)
        yield RunFigures(id="figures")
        yield CurveView(id="curves")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(RunFigures).figures = (
            RunSummary(self.record.run_id, self.record.name, self.record.status, step=self.record.step,
                       total_steps=self.record.total_steps, error=self.record.error),
            self.record.run_id, self.record.note)
        self.load()

    @work(thread=True, exclusive=True)
    def load(self) -> None:
        path = self.record.path
        read = load_summary(path)
        self.post_message(RunLoaded(self.record.run_id, read.summary, read_curves(path / METRICS_NAME),
                                    read.damage or self.record.note))

    def on_run_loaded(self, message: RunLoaded) -> None:
        self.query_one(RunFigures).figures = (message.summary, message.run_id, message.damage)
        self.curves = message.curves
        self.loss_window = message.summary.loss_window
        view = self.query_one(CurveView)
        view.loss_window = self.loss_window
        view.curves = message.curves

    def action_resume(self) -> None:
        self.app.resume_run(self.record.path)

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_delete(self) -> None:
        """Delete this run (the runs screen's confirmation) and go back to the list."""
        stack = self.app.screen_stack
        below = stack[-2] if len(stack) > 1 and stack[-1] is self else None
        if hasattr(below, "request_delete"):  # the runs screen this detail was opened from
            below.request_delete([self.record], before=self.dismiss)
