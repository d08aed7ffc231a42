"""ConfirmQueueScreen: starting marked presets as a queue asks whether a failed run stops it."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

START, STOP_ON_FAILURE = "start", "stop-on-failure"


class ConfirmQueueScreen(ModalScreen[str | None]):
    """`enter` starts the queue (a failed run does not stop it), `f` starts it and stops at the first failure
    (as `tui-trainer run A B --headless --stop-on-failure`), `escape` starts nothing."""

    BINDINGS = [
        Binding("enter", "start", "Start"),
        Binding("f", "stop_on_failure", "Start, stop on failure"),
        Binding("n,escape", "cancel", "Cancel"),
    ]

    DEFAULT_CSS = """
    ConfirmQueueScreen { align: center middle; }
    ConfirmQueueScreen > Vertical {
        width: 72; max-width: 95%; height: auto; max-height: 90%;
        border: thick $accent; padding: 0 1; background: $surface;
    }
    ConfirmQueueScreen #queue-question { text-style: bold; }
    """

    def __init__(self, names: list[str]):
        super().__init__()
        self.names = names

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"start {len(self.names)} presets as a queue, one after another:", id="queue-question",
                         markup=False)
            yield Static("\n".join(f"  {i}. {name}" for i, name in enumerate(self.names, 1)), id="queue-presets",
                         markup=False)
            yield Static("enter   start (a failed run does not stop the queue)\n"
                         "f       start, stop on failure (a failed or diverged run ends it)\n"
                         "escape  cancel", id="queue-keys", markup=False)

    def action_start(self) -> None:
        self.dismiss(START)

    def action_stop_on_failure(self) -> None:
        self.dismiss(STOP_ON_FAILURE)

    def action_cancel(self) -> None:
        self.dismiss(None)
