"""ConfirmDeleteScreen: deleting runs lists them (id, status, steps) and the live ones kept, then asks."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from tui_trainer.runs import RunRecord

SHOWN = 12  # runs listed by name; the rest are counted


class ConfirmDeleteScreen(ModalScreen[bool]):
    """`y` or enter deletes the listed runs; `n` or escape deletes nothing. Live runs are listed as kept."""

    BINDINGS = [
        Binding("y,enter", "confirm", "Delete"),
        Binding("n,escape", "cancel", "Cancel"),
    ]

    DEFAULT_CSS = """
    ConfirmDeleteScreen { align: center middle; }
    ConfirmDeleteScreen > Vertical {
        width: 72; max-width: 95%; height: auto; max-height: 90%;
        border: thick $error; padding: 0 1; background: $surface;
    }
    ConfirmDeleteScreen #delete-question { text-style: bold; }
    ConfirmDeleteScreen #delete-kept { color: $warning; }
    """

    def __init__(self, doomed: list[RunRecord], live: list[RunRecord]):
        super().__init__()
        self.doomed = doomed
        self.live = live

    def compose(self) -> ComposeResult:
        n = len(self.doomed)
        gone = "their directories are" if n != 1 else "its directory is"
        with Vertical():
            yield Static(f"delete {n} run{'s' if n != 1 else ''}? {gone} removed for good", id="delete-question",
                         markup=False)
            yield Static(listing(self.doomed), id="delete-runs", markup=False)
            if self.live:
                yield Static(f"kept, still training (stop {'it' if len(self.live) == 1 else 'them'} first):\n"
                             + listing(self.live), id="delete-kept", markup=False)
            yield Static("y/enter  delete    n/escape  cancel", id="delete-keys", markup=False)

    def action_confirm(self) -> None:
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)


def listing(records: list[RunRecord]) -> str:
    """One line a run: `  ID  status  step/total`; past SHOWN runs, a count of the rest."""
    lines = [f"  {r.run_id}  {r.status}  {r.step}/{r.total_steps}" for r in records[:SHOWN]]
    if len(records) > SHOWN:
        lines.append(f"  ... and {len(records) - SHOWN} more")
    return "\n".join(lines)
