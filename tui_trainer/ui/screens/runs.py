"""The runs screen: every run in the run store, live ones included; open, mark 2 to 4 and compare, resume,
delete.

Every live run's row refreshes each second, whoever trains it: from the app's own followed state, or
from the run's heartbeat. `enter` on a live run opens its live dashboard (attached if need be).
`d` deletes the marked runs (or the highlighted one) after a confirmation; a live run is never deleted
(runs.removal decides, and a run this app trains counts as live too).
"""

from __future__ import annotations

from dataclasses import replace

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from tui_trainer.runs import RunRecord, live_owner
from tui_trainer.runs.removal import remove_run, split_live
from tui_trainer.runs.store import LIVE_STATES
from tui_trainer.runs.settings import read_settings
from tui_trainer.session import format as fmt
from tui_trainer.ui.messages import RunEnded, RunsDeleted, RunsLoaded
from tui_trainer.ui.screens.compare import MAX_COMPARED, CompareScreen
from tui_trainer.ui.screens.confirm_delete import ConfirmDeleteScreen
from tui_trainer.ui.screens.run_detail import RunDetailScreen
from tui_trainer.ui.widgets.runs_table import RunsTable

LIVE_INTERVAL = 1.0  # seconds between refreshes of the live rows


class RunsScreen(Screen):
    """Runs newest first. The listing is read in a worker; live runs show their live step and loss."""

    CSS_PATH = "runs.tcss"
    AUTO_FOCUS = "#runs"

    BINDINGS = [
        Binding("c", "compare", "Compare"),
        Binding("r", "resume", "Resume"),
        Binding("d", "delete", "Delete"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self):
        super().__init__()
        self.loaded = False
        self._store_stamp: int | None = None
        self._listing = 0  # the newest listing asked for (RunsLoaded.listing)
        self.deleting = False

    def compose(self) -> ComposeResult:
        yield Static("runs", id="runs-title", markup=False)
        yield RunsTable(id="runs")
        yield Static("", id="runs-said", markup=False)
        yield Static("", id="runs-hint", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#runs-title", Static).update(f"runs in {self.app.store.root}")
        self.load()
        self.set_interval(LIVE_INTERVAL, self.refresh_live)

    def on_screen_resume(self) -> None:
        if self.loaded:
            self.load()

    def load(self) -> None:
        """List the run store again (off the UI thread: a directory of many runs takes a while)."""
        self._listing += 1
        self._store_stamp = self._store_time()  # before listing: a run made while listing lists again
        self._list(self._listing)

    @work(thread=True, group="runs-list")
    def _list(self, listing: int) -> None:
        records = self.app.store.list_runs()
        self.post_message(RunsLoaded(records, {r.run_id: read_settings(r.path) for r in records}, listing))

    def on_runs_loaded(self, message: RunsLoaded) -> None:
        if message.listing != self._listing:  # an earlier listing that finished after a newer one began
            return
        self.loaded = True
        self.query_one(RunsTable).settings = message.settings or {}
        self.query_one(RunsTable).set_records([self._with_live(r) for r in message.records])
        self.hint()

    def _with_live(self, record: RunRecord) -> RunRecord:
        """A record with the live figures of a run this app is following."""
        live = self.app.live.get(record.run_id)
        if live is None or live.state.ended:
            return record
        s = live.state
        rate = s.progress.samples_per_s if s.progress is not None else record.samples_per_s
        elapsed = s.progress.elapsed_s if s.progress is not None else record.wall_s
        return replace(record, status=s.status, step=s.step, total_steps=s.total_steps or record.total_steps,
                       final_loss=s.current_loss, final_val_loss=s.val_loss.last, samples_per_s=rate, wall_s=elapsed)

    def _store_time(self) -> int | None:
        """The run store directory's modification time: it changes when a run is made or deleted."""
        try:
            return self.app.store.root.stat().st_mtime_ns
        except OSError:
            return None

    def refresh_live(self) -> None:
        """Each live run's row, once a second: the app's own figures, else the run's heartbeat; and the
        whole list again when a run appeared in (or left) the store since (its directory's time changed)."""
        if self.loaded and self._store_time() != self._store_stamp:
            self.load()
            return
        table = self.query_one(RunsTable)
        for record in list(table.records.values()):
            if record.status not in LIVE_STATES:
                continue
            live = self.app.live.get(record.run_id)
            if live is not None and not live.state.ended:
                updated = self._with_live(record)
            else:
                beat = live_owner(record.path)
                if beat is None:  # it has ended (or died) since the listing: list again
                    self.load()
                    return
                updated = replace(record, step=max(beat.step, record.step),
                                  total_steps=beat.total_steps or record.total_steps)
            if updated != record:
                table.records[record.run_id] = updated
                for key, cell in zip(("status", "steps", "loss", "rate", "time"), table.cells(updated)[2:]):
                    table.update_cell(record.run_id, key, cell)

    def on_run_ended(self, message: RunEnded) -> None:
        self.load()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.hint()

    def on_runs_table_marks_changed(self, message: RunsTable.MarksChanged) -> None:
        self.hint()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def hint(self) -> None:
        table = self.query_one(RunsTable)
        record = table.current
        marked = len(table.marked)
        text = "no runs yet: start one from the launch screen (escape)" if record is None else (
            f"{record.run_id}: {record.status}, val loss {fmt.number(record.final_val_loss)}"
            + (f"  error: {record.error}" if record.error else "")
            + (f"  damaged: {record.note}" if record.note else ""))
        if marked:
            text += f"   [{marked} marked: {'c compares, ' if 2 <= marked <= MAX_COMPARED else ''}d deletes]"
        self.query_one("#runs-hint", Static).update(text)

    # ------------------------------------------------------------ actions
    def action_open(self) -> None:
        record = self.query_one(RunsTable).current
        if record is None:
            return
        live = self.app.live.get(record.run_id)
        if live is not None and live.active:
            self.app.open_dashboard(live)
        elif record.status in LIVE_STATES:
            self.app.attach_run(record.path)
        else:
            self.app.push_screen(RunDetailScreen(record))

    def action_compare(self) -> None:
        table = self.query_one(RunsTable)
        if not 2 <= len(table.marked) <= MAX_COMPARED:
            self.notify(f"mark 2 to {MAX_COMPARED} runs with space, then press c", severity="warning")
            return
        self.app.push_screen(CompareScreen(*(table.records[m] for m in table.marked)))

    def action_resume(self) -> None:
        record = self.query_one(RunsTable).current
        if record is None:
            return
        self.app.resume_run(record.path)

    def action_delete(self) -> None:
        """Delete the marked runs, else the highlighted one, once the user confirms."""
        table = self.query_one(RunsTable)
        records = [table.records[m] for m in table.marked] or [r for r in (table.current,) if r is not None]
        if records:
            self.request_delete(records)

    def request_delete(self, records: list[RunRecord], before=None) -> None:
        """Ask, then delete these runs in a worker; live ones are listed as kept. `before()` runs on yes."""
        if self.deleting:
            self.notify("still deleting the last runs", severity="warning")
            return
        ours = {run_id for run_id, live in self.app.live.items() if live.active}
        doomed, live = split_live(records, also_live=ours)
        if not doomed:
            self.say(deletion_summary([], [r.run_id for r in live], []))
            return

        def answered(yes: bool | None) -> None:
            if not yes:
                self.say("nothing deleted")
                return
            if before is not None:
                before()
            self.deleting = True
            self.say(f"deleting {len(doomed)} run{'s' if len(doomed) != 1 else ''}...")
            self.delete_runs(doomed, [r.run_id for r in live])

        self.app.push_screen(ConfirmDeleteScreen(doomed, live), answered)

    @work(thread=True, group="runs-delete", exit_on_error=False)
    def delete_runs(self, records: list[RunRecord], kept: list[str]) -> None:
        """Remove the run directories off the UI thread (a big one takes a moment); a run live by now is kept."""
        deleted, failed = [], []
        try:
            for record in records:
                try:
                    if remove_run(record.path):
                        deleted.append(record.run_id)
                    else:
                        kept.append(record.run_id)
                except OSError as exc:
                    failed.append(f"{record.run_id} ({exc.strerror or exc})")
        finally:
            self.post_message(RunsDeleted(deleted, kept, failed))

    def on_runs_deleted(self, message: RunsDeleted) -> None:
        self.deleting = False
        for run_id in message.deleted:  # a finished run this app followed: its dashboard has nothing left
            live = self.app.live.get(run_id)
            if live is not None and not live.active:
                del self.app.live[run_id]
        text = deletion_summary(message.deleted, message.kept, message.failed)
        self.say(text)
        self.notify(text, severity="warning" if message.kept or message.failed else "information")
        self.load()

    def say(self, text: str) -> None:
        """One line saying what the last action did, above the hint."""
        said = self.query_one("#runs-said", Static)
        said.update(text)
        said.display = bool(text)

    def action_back(self) -> None:
        self.app.pop_screen()


def deletion_summary(deleted: list[str], kept: list[str], failed: list[str]) -> str:
    """`deleted 2 runs; kept 1 live run: ID` (and what could not be deleted, with why)."""
    parts = [f"deleted {len(deleted)} run{'s' if len(deleted) != 1 else ''}"] if deleted or not kept else []
    if kept:
        parts.append(f"kept {len(kept)} live run{'s' if len(kept) != 1 else ''}: {', '.join(kept)} (stop it first)"
                     if len(kept) == 1 else
                     f"kept {len(kept)} live runs: {', '.join(kept)} (stop them first)")
    if failed:
        parts.append(f"could not delete {', '.join(failed)}")
    return "; ".join(parts)
