"""The sweep screen: axes typed as comma lists, rows filling a table as runs complete, best rows saved as presets.

The sweep itself is `runs.sweep` (the same as `tui-trainer sweep`): planned here, run in a thread worker,
each row a real run in its own worker process.
"""

from __future__ import annotations

import math
import threading
from dataclasses import replace
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Label, Static

from tui_trainer.config import ConfigError, PresetEntry, load_config, save_preset
from tui_trainer.session.run_state import LossCurve
from tui_trainer.ui.screens.save_preset import SavePresetScreen
from tui_trainer.ui.widgets.loss_sparkline import LossSparkline

# The axes offered (key -> label); an empty field leaves the key as the preset has it.
AXES = (("train.precision", "precision"), ("train.accumulate", "accumulate"), ("data.batch_size", "batch size"),
        ("strategy.name", "strategy"))
STATUS_STYLE = {"completed": "green", "skipped": "yellow", "failed": "bold red", "running": "bold cyan"}


class SweepScreen(Screen):
    """Type each axis's values (`fp32,bf16-mixed`), enter starts; `f` saves the fastest row, `s` the highlighted."""

    BINDINGS = [
        Binding("f", "save_fastest", "Save fastest"),
        Binding("s", "save_highlighted", "Save row"),
        Binding("escape", "back", "Back"),
    ]

    DEFAULT_CSS = """
    SweepScreen { layout: vertical; }
    SweepScreen #sweep-title { height: 1; padding: 0 1; background: $primary-darken-2; text-style: bold; }
    SweepScreen .axis { height: 1; }
    SweepScreen .axis > Label { width: 16; padding: 0 1; }
    SweepScreen .axis > Input { width: 1fr; }
    SweepScreen #sweep-rows { height: 1fr; }
    SweepScreen #sweep-status { height: auto; max-height: 3; padding: 0 1; color: $text-muted; }
    """

    def __init__(self, entry: PresetEntry, sweeps_dir: Path, presets_dir: Path):
        super().__init__()
        self.entry = entry
        self.sweeps_dir = Path(sweeps_dir)
        self.presets_dir = Path(presets_dir)
        self.plan = None
        self.rows: list = []
        self.finished = False
        self.directory: Path | None = None
        self.stop = threading.Event()
        self.ended = threading.Event()  # set when the sweep's worker is done (the app's quit waits on it)
        self.losses: list[float] = []

    def compose(self) -> ComposeResult:
        yield Static(f"sweep {self.entry.name}: values separated by commas; enter starts", id="sweep-title",
                     markup=False)
        config = self.entry.config
        defaults = {"train.precision": "fp32,bf16-mixed", "train.accumulate": "1,2",
                    "data.batch_size": str(config.data.batch_size) if config else "", "strategy.name": ""}
        for key, label in AXES:
            with Horizontal(classes="axis"):
                yield Label(label)
                yield Input(defaults[key], id=f"axis-{key.replace('.', '-')}", compact=True)
        with Horizontal(classes="axis"):
            yield Label("steps")
            yield Input("100", id="steps", type="integer", compact=True)
        with Horizontal(classes="axis"):
            yield Label("effective batch")
            yield Input("", id="effective", type="integer", placeholder="blank: off", compact=True)
        yield DataTable(id="sweep-rows", cursor_type="row", zebra_stripes=True)
        yield LossSparkline("train loss of the current row", id="sweep-loss")
        yield Static("", id="sweep-status", markup=False)
        yield Footer()

    # --------------------------------------------------------------- start
    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self.plan is not None:
            return
        from tui_trainer.runs.sweep import parse_grid, plan_sweep

        grid = []
        for key, _ in AXES:
            text = self.query_one(f"#axis-{key.replace('.', '-')}", Input).value.strip()
            if text:
                grid.append(f"{key}={text}")
        steps = self.query_one("#steps", Input).value.strip()
        effective = self.query_one("#effective", Input).value.strip()
        try:
            plan = plan_sweep(self.entry.path, parse_grid(grid), self.app.machine, steps=int(steps or 100),
                              effective_batch=int(effective or 0))
        except ConfigError as exc:
            self.status(f"✗ {exc.problems[0]}")
            return
        except ValueError as exc:
            self.status(f"✗ {exc}")
            return
        self.plan = plan
        self.rows = list(plan.rows)
        table = self.query_one(DataTable)
        keys = list(dict.fromkeys(k for r in plan.rows for k, _ in r.values))
        for key in keys:
            table.add_column(key.split(".")[-1], key=key)
        for key, label in (("status", "status"), ("rate", "samples/s"), ("ms", "ms/step"), ("rel", "vs first"),
                           ("mem", "peak MiB"), ("loss", "train loss"), ("best", "best")):
            table.add_column(label, key=key)
        for i, row in enumerate(self.rows):
            table.add_row(*self.cells(row), key=str(i))
        table.focus()
        from tui_trainer.runs.sweep import sweep_dir

        self.directory = sweep_dir(self.sweeps_dir, plan.preset)
        self.status(f"{len(self.rows)} combinations, {plan.steps} steps each; results in {self.directory}")
        self.run_plan()

    @work(thread=True, exclusive=True, group="sweep", exit_on_error=False)
    def run_plan(self) -> None:
        from tui_trainer.runs.sweep import run_sweep, write_sweep

        def on_row(i: int, row) -> None:
            self.app.call_from_thread(self.show_row, i, row)
            if row.status != "running":
                write_sweep(self.directory, self.plan, self.rows, finished=False)

        try:
            rows = run_sweep(self.plan, self.app.store, stop=self.stop, on_row=on_row,
                             on_event=lambda i, event: self.app.call_from_thread(self.show_event, i, event))
            write_sweep(self.directory, self.plan, rows, finished=True)
            self.app.call_from_thread(self.show_finished, rows)
        finally:
            self.ended.set()

    # ---------------------------------------------------------------- draw
    def cells(self, row) -> list:
        from rich.text import Text

        values = dict(row.values)
        keys = list(dict.fromkeys(k for r in self.rows for k, _ in r.values))
        best = " ".join(n for n, on in (("fastest", row.fastest), ("lowest mem", row.lowest_memory)) if on)
        return [*(str(values.get(k, "")) for k in keys), Text(row.status, STATUS_STYLE.get(row.status, "")),
                f"{row.samples_per_s:,.0f}" if row.samples_per_s else "-",
                f"{row.step_ms:.3g}" if row.step_ms else "-",
                f"{row.relative_speed:.2f}x" if row.relative_speed else "-",
                f"{row.peak_memory_mib:,.0f}" if row.peak_memory_mib is not None else "-",
                "-" if row.final_loss is None else f"{row.final_loss:.4g}", best]

    def show_row(self, i: int, row) -> None:
        if not self.is_attached:  # left while the sweep was stopping
            return
        if row.status == "running":
            self.losses = []
        else:
            self.rows[i] = row
        table = self.query_one(DataTable)
        for column, cell in zip(table.columns, self.cells(row)):
            table.update_cell(str(i), column, cell)
        if row.reason:
            self.status(f"{row.label()}: {row.status}: {row.reason}")

    def show_event(self, i: int, event) -> None:
        from tui_trainer.training.events import TrainProgress

        if not self.is_attached:
            return
        if isinstance(event, TrainProgress) and event.losses:
            self.losses.extend(event.losses)
            finite = [v for v in self.losses if math.isfinite(v)]
            self.query_one(LossSparkline).curve = LossCurve(tuple(self.losses[-400:]), event.train_loss,
                                                            min(finite) if finite else None, f"row {i + 1}")

    def show_finished(self, rows) -> None:
        self.rows = list(rows)
        self.finished = True
        if not self.is_attached:
            return
        for i, row in enumerate(self.rows):
            self.show_row(i, row)
        done = sum(1 for r in self.rows if r.status == "completed")
        self.status(f"done: {done} of {len(self.rows)} completed; f saves the fastest as a preset, s the highlighted; "
                    f"sweep directory: {self.directory}")

    def status(self, text: str) -> None:
        self.query_one("#sweep-status", Static).update(text)

    # ------------------------------------------------------------- actions
    def action_save_fastest(self) -> None:
        fastest = next((r for r in self.rows if r.fastest), None)
        if fastest is None:
            self.notify("no fastest row yet", severity="warning")
            return
        self.save(fastest)

    def action_save_highlighted(self) -> None:
        table = self.query_one(DataTable)
        if not self.rows or table.cursor_row is None or table.cursor_row >= len(self.rows):
            return
        self.save(self.rows[table.cursor_row])

    def save(self, row) -> None:
        """Ask a name and a description, and save the preset with this row's values."""
        from tui_trainer.config.errors import format_value

        try:
            config = load_config(self.entry.path, [f"{k}={format_value(v)}" for k, v in row.values])
        except ConfigError as exc:
            self.notify(f"cannot save: {exc.problems[0]}", severity="error")
            return
        figures = f"{row.samples_per_s:,.0f} samples/s in a sweep" if row.samples_per_s else "from a sweep"
        description = f"{self.entry.name} with {row.label()} ({figures})"

        def saved(answer) -> None:
            if not answer:
                return
            name, text = answer
            path = save_preset(replace(config, name=name, description=text), self.presets_dir / f"{name}.toml")
            self.notify(f"saved {path}")

        suggestion = f"{self.entry.name}-swept"
        n = 2
        while (self.presets_dir / f"{suggestion}.toml").exists():
            suggestion, n = f"{self.entry.name}-swept-{n}", n + 1
        self.app.push_screen(SavePresetScreen(self.presets_dir, suggestion, description), saved)

    # ------------------------------------------------- the app's quit dialog
    @property
    def running(self) -> bool:
        """Whether this sweep has started and its worker has not ended (its current row trains)."""
        return self.plan is not None and not self.ended.is_set()

    @property
    def position(self) -> tuple[int, int]:
        """(the row training now, 1-based; the number of rows): the first row not yet done."""
        current = next((i for i, r in enumerate(self.rows) if r.status == "planned"), len(self.rows) - 1)
        return current + 1, len(self.rows)

    def stop_sweep(self) -> None:
        """Stop the current row's run after its step and start no other row (`ended` is set once done)."""
        self.stop.set()

    def action_back(self) -> None:
        if self.plan is not None and not self.finished:
            self.stop.set()  # the current run stops after its step; the rest are skipped
            self.notify("sweep stopped")
        self.app.pop_screen()
