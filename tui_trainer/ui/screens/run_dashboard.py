"""The run dashboard: loss sparklines, progress, precision state, a panel per device, and the log."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import HorizontalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from tui_trainer.config import gpu_ids
from tui_trainer.session.live_run import LiveRun
from tui_trainer.session.monitor import MachineReading
from tui_trainer.ui.messages import MachineSampled, RunEnded, RunUpdated
from tui_trainer.ui.widgets.cpu_panel import CpuPanel
from tui_trainer.ui.widgets.gpu_panel import GpuPanel
from tui_trainer.ui.widgets.log_pane import LogPane
from tui_trainer.ui.widgets.loss_sparkline import LossSparkline
from tui_trainer.ui.widgets.rank_list import RankList
from tui_trainer.ui.widgets.run_progress import RunProgress


class RunDashboard(Screen):
    """One run, live. Hands the widgets frozen views of the run's state when the app has folded new events
    in (at most 10 times a second); a widget whose view did not change draws nothing."""

    CSS_PATH = "run_dashboard.tcss"

    BINDINGS = [
        Binding("x", "stop", "Stop"),
        Binding("r", "resume", "Resume"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, live: LiveRun):
        super().__init__()
        self.live = live

    @property
    def run_id(self) -> str:
        return self.live.run_id

    def compose(self) -> ComposeResult:
        yield Static("", id="run-title", markup=False)
        yield RunProgress(id="progress")
        yield LossSparkline("train loss", id="train-loss")
        yield LossSparkline("val loss", id="val-loss")
        yield RankList(id="ranks")
        with HorizontalScroll(id="devices"):
            ids = gpu_ids(self.live.config, self.app.machine)
            if ids:
                for index in ids:
                    yield GpuPanel(index, id=f"gpu-{index}")
            else:
                yield CpuPanel(id="cpu")
        yield LogPane(id="log")
        yield Footer()

    def on_mount(self) -> None:
        self.draw()
        self.draw_devices(self.app.machine_reading)

    def on_screen_resume(self) -> None:
        self.draw()
        self.draw_devices(self.app.machine_reading)

    # ------------------------------------------------------------ updates
    def on_run_updated(self, message: RunUpdated) -> None:
        if message.run_id == self.run_id:
            self.draw()

    def on_run_ended(self, message: RunEnded) -> None:
        if message.run_id == self.run_id:
            self.draw()
            self.refresh_bindings()

    def on_machine_sampled(self, message: MachineSampled) -> None:
        self.draw_devices(message.reading)

    def draw(self) -> None:
        """Give the widgets the run's state as it is now."""
        state = self.live.state
        title = f"run {state.run_id or '(starting)'}  preset {state.name}"
        if self.live.queue_label:
            title = f"{self.live.queue_label}  {title}"
        if self.live.run_dir is not None:
            title += f"  {self.live.run_dir}"
        self.query_one("#run-title", Static).update(title, layout=False)
        self.query_one(RunProgress).standing = state.standing
        self.query_one(RankList).ranks = tuple(state.ranks[rank] for rank in sorted(state.ranks))
        self.query_one("#train-loss", LossSparkline).curve = state.train_curve
        self.query_one("#val-loss", LossSparkline).curve = state.val_curve
        self.query_one(LogPane).tail = state.log_tail

    def draw_devices(self, reading: MachineReading) -> None:
        progress = self.live.state.progress
        run_memory = {index: tuple(rest) for index, *rest in progress.device_memory} if progress is not None else {}
        for panel in self.query(GpuPanel):
            panel.sample = reading.gpu(panel.index)
            panel.history = reading.memory_history(panel.index)
            panel.run_memory = run_memory.get(panel.index)
        for panel in self.query(CpuPanel):
            panel.sample = reading.process
            panel.history = reading.cpu

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
