"""The run detail screen: one run's figures and its full loss curves from metrics.jsonl."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static

from tui_trainer.runs import RunRecord, read_curves, read_summary
from tui_trainer.runs.metrics import METRICS_NAME
from tui_trainer.ui.messages import CurvesLoaded
from tui_trainer.ui.widgets.curve_view import CurveView
from tui_trainer.ui.widgets.run_figures import RunFigures


class RunDetailScreen(Screen):
    """Figures on top, the curves below; the metrics file is read in a worker."""

    CSS_PATH = "run_detail.tcss"

    BINDINGS = [
        Binding("r", "resume", "Resume"),
        Binding("escape", "back", "Back"),
        Binding("question_mark", "app.help", "Help", key_display="?"),
        Binding("q", "app.request_quit", "Quit"),
    ]

    def __init__(self, record: RunRecord):
        super().__init__()
        self.record = record
        self.curves = None
        self.loss_window = 0

    def compose(self) -> ComposeResult:
        yield Static(f"run {self.record.run_id}", id="detail-title", markup=False)
        yield RunFigures(id="figures")
        yield CurveView(id="curves")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(RunFigures).show({"status": self.record.status, "step": self.record.step,
                                         "total_steps": self.record.total_steps}, self.record.run_id)
        self.load()

    @work(thread=True, exclusive=True)
    def load(self) -> None:
        summary = read_summary(self.record.path)
        self.loss_window = summary.get("loss_window") or 0
        self.app.call_from_thread(self.query_one(RunFigures).show, summary, self.record.run_id)
        self.post_message(CurvesLoaded(self.record.run_id, read_curves(self.record.path / METRICS_NAME)))

    def on_curves_loaded(self, message: CurvesLoaded) -> None:
        self.curves = message.curves
        self.query_one(CurveView).show(message.curves, loss_window=self.loss_window)

    def action_resume(self) -> None:
        self.app.resume_run(self.record.path)

    def action_back(self) -> None:
        self.app.pop_screen()
