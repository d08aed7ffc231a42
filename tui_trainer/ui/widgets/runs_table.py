"""RunsTable: past and current runs with status, steps, train loss, samples/s, duration and settings; space marks."""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

from tui_trainer.runs import RunRecord
from tui_trainer.runs.store import LIVE_STATES
from tui_trainer.session import format as fmt

STATUS_STYLE = {"completed": "green", "running": "bold green", "stopped": "yellow", "failed": "bold red",
                "diverged": "bold red", "interrupted": "magenta"}
MARK = "●"
COLUMNS = (("mark", " "), ("run", "run"), ("status", "status"), ("steps", "steps"), ("loss", "train loss"),
           ("rate", "samp/s"), ("time", "time"), ("strategy", "strategy"), ("precision", "precision"),
           ("accumulate", "acc"), ("effective", "eff.batch"), ("lr", "lr"))


class RunsTable(DataTable):
    """One row per run, newest first. `space` marks runs: two to compare them, any number to delete them."""

    BINDINGS = [
        Binding("enter", "select_cursor", "Open"),
        Binding("space", "toggle_mark", "Mark"),
    ]

    DEFAULT_CSS = """
    RunsTable { height: 1fr; }
    """

    class MarksChanged(Message):
        """The marked runs changed (the screen's hint counts them)."""

    def __init__(self, *, id: str | None = None):
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.records: dict[str, RunRecord] = {}
        self.marked: list[str] = []
        self.settings: dict = {}  # run id -> RunSettings, from the runs screen's loader

    def on_mount(self) -> None:
        for key, label in COLUMNS:
            self.add_column(label, key=key)

    def set_records(self, records: list[RunRecord]) -> None:
        """Show these runs; the cursor stays on the same run where it still exists."""
        current = self.current.run_id if self.current is not None else None
        self.records = {r.run_id: r for r in records}
        self.marked = [m for m in self.marked if m in self.records]
        self.clear()
        for record in records:
            self.add_row(*self.cells(record), key=record.run_id)
        if current in self.records:
            self.move_cursor(row=self.get_row_index(current))

    def cells(self, r: RunRecord) -> list:
        """One run's row, in COLUMNS order."""
        loss = fmt.number(r.final_loss)
        live = r.status in LIVE_STATES
        # A figure never measured is "-"; a run another process trains: its figures come at its end,
        # until then its age, not "0 s".
        rate = fmt.rate(r.samples_per_s or None)
        age = fmt.seconds_since(r.started_at) if live else None
        time = fmt.seconds(r.wall_s) if r.wall_s is not None else fmt.seconds(age) if age is not None else "-"
        return [
            Text(MARK if r.run_id in self.marked else " ", "bold cyan"),
            r.run_id,
            Text(r.status, STATUS_STYLE.get(r.status, "")),
            f"{r.step}/{r.total_steps}",
            loss,
            rate,
            time,
            *settings_cells(self.settings.get(r.run_id)),
        ]

    @property
    def current(self) -> RunRecord | None:
        """The run under the cursor."""
        if not self.records or self.row_count == 0:
            return None
        try:
            key = self.coordinate_to_cell_key((self.cursor_row, 0)).row_key.value
        except Exception:
            return None
        return self.records.get(key)

    def action_toggle_mark(self) -> None:
        """Mark or unmark the run under the cursor (two marked compare; any number marked delete)."""
        record = self.current
        if record is None:
            return
        if record.run_id in self.marked:
            self.marked.remove(record.run_id)
        else:
            self.marked.append(record.run_id)
        self.update_cell(record.run_id, "mark", Text(MARK if record.run_id in self.marked else " ", "bold cyan"))
        self.post_message(self.MarksChanged())
        self.move_cursor(row=self.cursor_row + 1)  # space, space, space marks a run of rows


def settings_cells(settings) -> list[str]:
    """The settings columns of one run: `ddp x2`, `bf16-mixed`, `4`, `256`, `0.001` ("-" when unknown)."""
    if settings is None:
        return ["-"] * 5
    where = settings.strategy if settings.devices == "1" else f"{settings.strategy} x{settings.devices}"
    if "," in settings.devices:
        where = f"{settings.strategy} [{settings.devices}]"
    return [where, settings.precision, str(settings.accumulate), str(settings.effective_batch), f"{settings.lr:g}"]
