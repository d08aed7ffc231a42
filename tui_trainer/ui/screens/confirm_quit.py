"""ConfirmQuitScreen: "stop the run and quit? y/n" while a run is active."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static


class ConfirmQuitScreen(ModalScreen[bool]):
    """`y` stops every active run cleanly (checkpoint, metrics, summary) and quits; `n`/escape stays."""

    BINDINGS = [
        Binding("y", "confirm", "Stop and quit"),
        Binding("n,escape", "cancel", "Stay"),
    ]

    DEFAULT_CSS = """
    ConfirmQuitScreen { align: center middle; }
    ConfirmQuitScreen > Vertical {
        width: 56; max-width: 95%; height: auto;
        border: thick $warning; padding: 0 1; background: $surface;
    }
    ConfirmQuitScreen #question { text-style: bold; }
    """

    def __init__(self, active: int):
        super().__init__()
        self.active = active
        self.confirmed = False

    def compose(self) -> ComposeResult:
        runs = "the run" if self.active == 1 else f"the {self.active} runs"
        with Vertical():
            yield Static(f"stop {runs} and quit? y/n", id="question", markup=False)
            yield Static("each run stops after its current step and writes its checkpoint", id="detail",
                         markup=False)

    def action_confirm(self) -> None:
        if self.confirmed:
            return
        self.confirmed = True
        self.query_one("#question", Static).update("stopping: writing checkpoints and metrics...")
        self.app.stop_runs_and_exit()

    def action_cancel(self) -> None:
        if not self.confirmed:
            self.dismiss(False)
