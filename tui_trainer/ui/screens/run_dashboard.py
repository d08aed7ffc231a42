"""The run dashboard: loss sparklines, progress, precision state, a panel per device, and the log."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import HorizontalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from tui_trainer.config import gpu_ids
from tui_trainer.training.figures import train_loss_label
from tui_trainer.ui import format as fmt
from tui_trainer.ui.live_run import LiveRun
from tui_trainer.ui.messages import MachineSampled, RunEnded, RunUpdated
from tui_trainer.ui.widgets.cpu_panel import CpuPanel
from tui_trainer.ui.widgets.gpu_panel import GpuPanel
from tui_trainer.ui.widgets.log_pane import LogPane
from tui_trainer.ui.widgets.loss_sparkline import LossSparkline
from tui_trainer.ui.widgets.rank_list import RankList
from tui_trainer.ui.widgets.run_progress import RunProgress


class RunDashboard(Screen):
    """One run, live. Draws only when the app has folded new events in (at most 10 times a second)."""

    CSS_PATH = "run_dashboard.tcss"

    BINDINGS = [
        Binding("x", "stop", "Stop"),
        Binding("r", "resume", "Resume"),
        Binding("escape", "back", "Back"),
        Binding("question_mark", "app.help", "Help", key_display="?"),
        Binding("q", "app.request_quit", "Quit"),
    ]

    def __init__(self, live: LiveRun):
        super().__init__()
        self.live = live
        self.drawn_version = -1

    @property
    def run_id(self) -> str:
        return self.live.run_id

    def compose(self) -> ComposeResult:
        state = self.live.state
        yield Static("", id="run-title", markup=False)
        yield RunProgress(state, id="progress")
        yield LossSparkline("train loss", id="train-loss")
        yield LossSparkline("val loss", id="val-loss")
        yield RankList(state, id="ranks")
        with HorizontalScroll(id="devices"):
            ids = gpu_ids(self.live.config, self.app.machine)
            if ids:
                for index in ids:
                    yield GpuPanel(index, id=f"gpu-{index}")
            else:
                yield CpuPanel(id="cpu")
        yield LogPane(state, id="log")
        yield Footer()

    def on_mount(self) -> None:
        self.draw()
        self.draw_devices()

    def on_screen_resume(self) -> None:
        self.draw()
        self.draw_devices()

    # ------------------------------------------------------------ updates
    def on_run_updated(self, message: RunUpdated) -> None:
        if message.run_id == self.run_id:
            self.draw()

    def on_run_ended(self, message: RunEnded) -> None:
        if message.run_id == self.run_id:
            self.draw()
            self.refresh_bindings()

    def on_machine_sampled(self, message: MachineSampled) -> None:
        self.draw_devices()

    def draw(self) -> None:
        """Render the run's state, if it changed since the last draw."""
        state = self.live.state
        if state.version == self.drawn_version:
            return
        self.drawn_version = state.version
        title = f"run {state.run_id or '(starting)'}  preset {state.name}"
        if self.live.queue_label:
            title = f"{self.live.queue_label}  {title}"
        if self.live.run_dir is not None:
            title += f"  {self.live.run_dir}"
        self.query_one("#run-title", Static).update(title, layout=False)
        self.query_one(RunProgress).version = state.version
        self.query_one(RankList).version = state.version
        train_plot = self.query_one("#train-loss", LossSparkline)
        train_plot.title = train_loss_label(state.started.loss_window if state.started else 0)
        train_plot.show(
            state.train_loss.snapshot(), state.current_loss, state.best_loss,
            f"{state.train_loss.count:,} steps" if state.train_loss.count else "")
        extra = ""
        if state.eval is not None:
            extra = f"{state.eval.metric_name} {fmt.number(state.eval.metric, 3)} at step {state.eval.step:,}"
        self.query_one("#val-loss", LossSparkline).show(
            state.val_loss.snapshot(), state.val_loss.last, state.val_loss.min, extra)
        self.query_one(LogPane).catch_up()

    def draw_devices(self) -> None:
        view = self.app.machine_view
        progress = self.live.state.progress
        run_memory = {index: rest for index, *rest in progress.device_memory} if progress is not None else {}
        for panel in self.query(GpuPanel):
            panel.show(view.gpu(panel.index), list(view.gpu_memory.get(panel.index, ())),
                       run_memory.get(panel.index))
        for panel in self.query(CpuPanel):
            panel.show(view.process, list(view.cpu))

    # ------------------------------------------------------------ actions
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Show `x` only while the run can be stopped and `r` only when it can be resumed."""
        if action == "stop":
            return self.live.runner.is_running() and not self.live.runner.stop_requested
        if action == "resume":
            return self.live.can_resume()[0]
        return True

    def action_stop(self) -> None:
        if self.live.stop():
            self.draw()
            self.refresh_bindings()

    def action_resume(self) -> None:
        ok, why = self.live.can_resume()
        if not ok:
            self.notify(f"cannot resume: {why}", severity="warning")
            return
        try:
            self.live.resume()
        except Exception as exc:  # a run that cannot be resumed is a message, not a crash
            self.notify(f"cannot resume: {exc}", severity="error")
            return
        self.draw()
        self.refresh_bindings()

    def action_back(self) -> None:
        self.app.pop_screen()
