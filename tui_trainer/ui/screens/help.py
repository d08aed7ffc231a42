"""HelpScreen: every screen's keys on one page."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

HELP = """\
tui-trainer keys (the footer shows those of the current screen)

Everywhere
  ?             this help
  q, ctrl+q     quit; with runs training it asks: l leaves them training
                (tui-trainer attach finds them again), s stops them; a
                sweep training is always stopped (it lives in the app)
  tab           next field (shift+tab: previous)

Launch
  up/down, j/k  pick a preset
  enter         start it with the options shown
  space         mark presets; enter then asks: enter runs the marked ones
                as a queue, f runs them and stops at the first failure
  tab           to the options: enter/space opens a choice, digits edit a
                number, space picks a GPU id (on GPU machines)
  ctrl+s        save the options as a new preset file
  w             sweep the highlighted preset
  r             runs          escape   back to the presets

Sweep
  tab           next axis (precision, strategy, accumulate, batch size,
                compile), then the steps and effective batch fields
  up/down       move along a list      space   pick or drop a value
                (* marks the preset's own value, picked at first)
  digits enter  on accumulate or batch size (the list or its + type field
                under it): add that value, picked
  enter         start (one run per combination of the picked values)
  f, s          save the fastest / the highlighted row as a preset
  escape        stop the sweep and go back

Run dashboard
  x             stop (after the current step; a checkpoint is written)
  r             resume a stopped run from its checkpoint
  escape        back; the run keeps going in the background

Runs
  enter         open: full loss curve (a live run: its live dashboard,
                whoever started it; x there stops it)
  space         mark runs                    c   compare 2 to 4 marked
  d             delete the marked runs (or the highlighted one) after a
                confirmation; a live run is kept (also d in a run's detail)
  r             resume a stopped run         escape   back

Compare
  t             x axis: step / wall time (from each run's first step)
  escape        back

A cross marks a choice this machine cannot run, with the reason.
Effective batch = batch x accumulate x world (ddp processes, dp replicas).
"""


class HelpScreen(ModalScreen[None]):
    """Closes with escape, ? or q."""

    BINDINGS = [Binding("escape,question_mark,q", "close", "Close")]

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 80; max-width: 100%; height: auto; max-height: 100%;
        border: round $accent; padding: 0 1; background: $surface;
    }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll() as pane:
            pane.border_subtitle = "escape, ? or q closes"
            yield Static(HELP, markup=False)

    def action_close(self) -> None:
        self.dismiss(None)
