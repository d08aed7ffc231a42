"""ConfirmQuitScreen: quitting with runs training asks whether to leave them training or stop them.

A sweep started from the sweep screen is counted too, but it is always stopped: its loop (which starts
each row and records its figures in sweep.json) lives in the app's process and cannot outlive it.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static


class ConfirmQuitScreen(ModalScreen[bool]):
    """`l` leaves the runs training and quits; `s` stops them cleanly (checkpoint) and quits; escape stays.

    With `stop_only` (`tui-trainer --stop-on-exit`, or only sweeps training) the question is the old one:
    `y` stops and quits. `sweeps` holds each running sweep's (row training now, rows).
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

    def __init__(self, active: int, *, stop_only: bool = False, sweeps: tuple[tuple[int, int], ...] = ()):
        super().__init__()
        self.active = active
        self.stop_only = stop_only
        self.sweeps = tuple(sweeps)
        self.confirmed = False

    def compose(self) -> ComposeResult:
        runs = "the run" if self.active == 1 else f"the {self.active} runs"
        n = len(self.sweeps)
        rows = ", ".join(f"{row}/{total}" for row, total in self.sweeps)
        sweeps = "" if not n else f"the sweep (row {rows})" if n == 1 else f"the {n} sweeps (rows {rows})"
        target = " and ".join(part for part in (runs if self.active else "", sweeps) if part)
        left = rows_left(self.sweeps)
        sweep_note = (f"{'the sweep stops' if n == 1 else 'the sweeps stop'} (a sweep lives in this app): the "
                      f"current row after its step" + (f", {left} not started" if left else " (the last row)")
                      if n else "")
        with Vertical():
            if self.stop_only:
                yield Static(f"stop {target} and quit? y/n", id="question", markup=False)
                yield Static("\n".join(line for line in (
                    "each run stops after its current step and writes its checkpoint" if self.active else "",
                    sweep_note) if line), id="detail", markup=False)
            else:
                training = "1 run is" if self.active == 1 else f"{self.active} runs are"
                if n:
                    training = f"{training.rsplit(' ', 1)[0]} and {sweep_count(self.sweeps)} are"
                yield Static(f"{training} training. quit and...", id="question", markup=False)
                again = "it" if self.active == 1 else "them"
                yield Static(f"l  leave {runs} training (tui-trainer attach shows {again} again)"
                             + (f"; {sweep_note}" if n else "") + "\n"
                             f"s  stop {target}: checkpoint written, resumable\n"
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


def sweep_count(sweeps: tuple[tuple[int, int], ...]) -> str:
    """`1 sweep (row 3/8)`, `2 sweeps (rows 3/8, 1/4)`."""
    rows = ", ".join(f"{row}/{total}" for row, total in sweeps)
    return f"1 sweep (row {rows})" if len(sweeps) == 1 else f"{len(sweeps)} sweeps (rows {rows})"


def rows_left(sweeps: tuple[tuple[int, int], ...]) -> str:
    """The rows a stopped sweep will not start: `rows 4-8`, `row 8`, or "" (the current row is the last)."""
    left = [(row + 1, total) for row, total in sweeps if row < total]
    if not left:
        return ""
    if len(left) == 1:
        first, last = left[0]
        return f"row {last}" if first == last else f"rows {first}-{last}"
    return "the remaining rows"
