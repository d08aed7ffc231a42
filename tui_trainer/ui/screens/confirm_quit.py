"""ConfirmQuitScreen: quitting with runs training asks whether to leave them training or stop them."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static


class ConfirmQuitScreen(ModalScreen[bool]):
    """`l` leaves the runs training and quits; `s` stops them cleanly (checkpoint) and quits; escape stays.

    With `stop_only` (`tui-trainer --stop-on-exit`) the question is the old one: `y` stops and quits.
    """

    BINDINGS = [
        Binding("l", "leave", "Leave training, quit"),
        Binding("s", "stop", "Stop them, quit"),
        Binding("y", "confirm", "Stop and quit", show=False),
        Binding("n,escape,c", "cancel", "Stay"),
    ]

    DEFAULT_CSS = """
    ConfirmQuitScreen { align: center middle; }
    ConfirmQuitScreen > Vertical {
        width: 64; max-width: 95%; height: auto;
        border: thick $warning; padding: 0 1; background: $surface;
    }
    ConfirmQuitScreen #question { text-style: bold; }
    """

    def __init__(self, active: int, *, stop_only: bool = False):
        super().__init__()
        self.active = active
        self.stop_only = stop_only
        self.confirmed = False

    def compose(self) -> ComposeResult:
        runs = "the run" if self.active == 1 else f"the {self.active} runs"
        with Vertical():
            if self.stop_only:
                yield Static(f"stop {runs} and quit? y/n", id="question", markup=False)
                yield Static("each run stops after its current step and writes its checkpoint", id="detail",
                             markup=False)
            else:
                training = "1 run is" if self.active == 1 else f"{self.active} runs are"
                yield Static(f"{training} training. quit and...", id="question", markup=False)
                yield Static(f"l  leave {runs} training (tui-trainer attach shows them again)\n"
                             f"s  stop {runs}: checkpoint written, resumable\n"
                             "escape  stay", id="detail", markup=False)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "confirm":
            return self.stop_only
        if action in ("leave", "stop"):
            return not self.stop_only
        return True

    def action_leave(self) -> None:
        if self.confirmed:
            return
        self.confirmed = True
        self.app.leave_runs_and_exit()

    def action_stop(self) -> None:
        if self.confirmed:
            return
        self.confirmed = True
        self.query_one("#question", Static).update("stopping: writing checkpoints and metrics...")
        self.app.stop_runs_and_exit()

    def action_confirm(self) -> None:
        self.action_stop()

    def action_cancel(self) -> None:
        if not self.confirmed:
            self.dismiss(False)
