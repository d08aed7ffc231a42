"""The sweep screen: axes and values picked from lists, rows filling a table as runs complete, best rows saved.

The values each axis offers, and why this machine cannot run some of them, come from `session.sweep_axes`.
The sweep itself is `runs.sweep` (the same as `tui-trainer sweep`): planned here, run in a thread worker,
each row a real run in its own worker process.
"""

from __future__ import annotations

import math
import threading
from dataclasses import replace
from pathlib import Path

from rich.text import Text
from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Label, SelectionList, Static
from textual.widgets.selection_list import Selection

from tui_trainer.config import ConfigError, PresetEntry, load_config, save_preset
from tui_trainer.session import sweep_axes
from tui_trainer.session.run_state import LossCurve
from tui_trainer.ui.screens.save_preset import SavePresetScreen
from tui_trainer.ui.widgets.loss_sparkline import LossSparkline
from tui_trainer.ui.widgets.ordered_input import OrderedInput

STATUS_STYLE = {"completed": "green", "skipped": "yellow", "failed": "bold red", "running": "bold cyan"}
DIGITS = "0123456789"
STATUS_WIDTH = max(len(s) for s in ("planned", *STATUS_STYLE))  # the table's status column: never cut
STEPS_PROBLEM = "steps: expected a whole number >= 1"
FIELD_NAMES = {"--steps": "steps", "--effective-batch": "effective batch"}  # plan_sweep's flags, as the app names them


def steps_value(text: str) -> int | None:
    """The steps field's number (blank: the default 100); None when it is no whole number >= 1."""
    text = text.strip() or "100"
    return int(text) if text.isdigit() and int(text) >= 1 else None


def value_label(offer: sweep_axes.AxisOffer, choice) -> Text:
    """`fp16-mixed  ✗ needs a CUDA GPU` for a value this machine cannot run; the value (compile: off/on) otherwise."""
    shown = sweep_axes.SHOWN.get(choice.value, choice.value) if offer.key == "train.compile" else choice.value
    if choice.value == offer.preset:
        shown += " *"  # the preset's own value
    if not choice.reason:
        return Text(shown)
    return Text.assemble(shown, ("  ✗ " + choice.reason, "red"))


class AxisList(SelectionList[str]):
    """One axis's values: `space` picks, `enter` starts the sweep; a digit goes to the `+ type` field below
    (accumulate, batch size), where `enter` adds the value typed."""

    BINDINGS = [Binding("enter", "screen.start", "Start")]

    def __init__(self, offer: sweep_axes.AxisOffer):
        super().__init__(*(Selection(value_label(offer, c), c.value, c.value == offer.preset) for c in offer.choices),
                         id=f"axis-{offer.key.replace('.', '-')}", compact=True)
        self.offer = offer

    def on_key(self, event: events.Key) -> None:
        if self.offer.typed and event.character is not None and len(event.character) == 1 and event.character in DIGITS:
            event.stop()
            event.prevent_default()
            field = self.parent.query_one(".more", Input)
            field.cursor_position = len(field.value)
            field.insert_text_at_cursor(event.character)  # in typing order, also for keys that came before the focus
            field.focus()


class SweepScreen(Screen):
    """Pick values with `space` (`tab`: next axis), `enter` starts; `f`/`s` save the fastest/highlighted row."""

    BINDINGS = [
        Binding("f", "save_fastest", "Save fastest"),
        Binding("s", "save_highlighted", "Save row"),
        Binding("escape", "back", "Back"),
    ]

    DEFAULT_CSS = """
    SweepScreen { layout: vertical; }
    SweepScreen #sweep-title { height: 1; padding: 0 1; background: $primary-darken-2; text-style: bold; }
    SweepScreen #sweep-axes { height: 6; }
    SweepScreen .axis { width: 1fr; height: 100%; padding: 0 1 0 0; }
    SweepScreen .axis.-named { width: 2fr; }
    SweepScreen .axis > Label { height: 1; color: $text-muted; }
    SweepScreen .axis > AxisList { height: 1fr; }
    SweepScreen .axis > Input { height: 1; }
    SweepScreen .axis > Input.-invalid { color: $error; }
    SweepScreen #sweep-hint { height: 2; padding: 0 1; color: $text-muted; }
    SweepScreen #sweep-hint.-error { color: $error; }
    SweepScreen .settings { height: 1; }
    SweepScreen .settings > Label { width: auto; padding: 0 1; }
    SweepScreen .settings > Input { width: 10; }
    SweepScreen .settings > Input.-invalid { color: $error; }
    SweepScreen #sweep-count { height: 1; padding: 0 1; text-style: bold; }
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
        self.offers: dict[str, sweep_axes.AxisOffer] = {}

    def compose(self) -> ComposeResult:
        yield Static(f"sweep {self.entry.name}: space picks (* the preset's), tab next axis, enter starts",
                     id="sweep-title", markup=False)
        config = self.entry.config
        offers = sweep_axes.offer_axes(config, self.app.machine) if config is not None else ()
        self.offers = {o.key: o for o in offers}
        with Horizontal(id="sweep-axes"):
            for offer in offers:
                named = offer.key in ("train.precision", "strategy.name")  # long names: wider columns
                with Vertical(classes="axis -named" if named else "axis"):
                    yield Label(offer.label)
                    yield AxisList(offer)
                    if offer.typed:
                        yield OrderedInput(id=f"more-{offer.key.replace('.', '-')}", classes="more",
                                           placeholder="+ type", type="integer", compact=True,
                                           select_on_focus=False)
        yield Static("", id="sweep-hint", markup=False)
        with Horizontal(classes="settings"):
            yield Label("steps")
            yield OrderedInput("100", id="steps", type="integer", compact=True)
            yield Label("effective batch")
            yield OrderedInput("", id="effective", type="integer", placeholder="blank: off", compact=True)
        yield Static("", id="sweep-count", markup=False)
        yield DataTable(id="sweep-rows", cursor_type="row", zebra_stripes=True)
        yield LossSparkline("train loss of the current row", id="sweep-loss")
        yield Static("", id="sweep-status", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.count()

    # ---------------------------------------------------------------- pick
    def picked(self) -> dict[str, tuple[str, ...]]:
        """Each axis's picked values, in the order shown."""
        out = {}
        for axis in self.query(AxisList):
            chosen = set(axis.selected)
            out[axis.offer.key] = tuple(c.value for c in axis.offer.choices if c.value in chosen)
        return out

    def count(self) -> sweep_axes.SweepPick:
        """Show how many runs the picked values make."""
        pick = sweep_axes.pick(tuple(self.offers.values()), self.picked())
        field = self.query_one("#steps", Input)
        steps = field.value.strip()
        shown = str(int(steps)) if steps.isdigit() else steps  # 007 reads 7, 000 reads 0
        summary = Text(pick.summary(shown))
        field.set_class(steps_value(steps) is None, "-invalid")
        if steps_value(steps) is None:  # first: the line is one row, and a long count is cut at its end
            summary = Text.assemble((f"✗ {STEPS_PROBLEM}", "bold red"), "; ", summary)
        self.query_one("#sweep-count", Static).update(summary)
        return pick

    def hint(self, text: str, error: bool = False) -> None:
        hint = self.query_one("#sweep-hint", Static)
        hint.update(text)
        hint.set_class(error, "-error")

    def on_selection_list_selected_changed(self, event: SelectionList.SelectedChanged) -> None:
        event.stop()
        self.count()

    def on_selection_list_selection_highlighted(self, event: SelectionList.SelectionHighlighted) -> None:
        event.stop()
        axis = event.selection_list
        if isinstance(axis, AxisList) and axis.has_focus:
            self.explain(axis)

    def on_descendant_focus(self, event) -> None:
        if isinstance(event.widget, AxisList):
            self.explain(event.widget)
        elif event.widget.has_class("more"):  # a `+ type` field: its own axis, not the one left
            axis = event.widget.parent.query_one(AxisList)
            self.hint(f"{axis.offer.label}: type a whole number, enter adds it to the list above, picked")
        elif event.widget.id == "steps":
            self.hint("steps: the optimizer steps each run takes (a whole number >= 1); enter starts the sweep")
        elif event.widget.id == "effective":
            self.hint("effective batch: blank: off; a number sets each row's accumulation to it / (batch size x "
                      "processes): sweep batch size then, not accumulate")

    def explain(self, axis: AxisList) -> None:
        """Say why this machine cannot run the highlighted value (it may still be picked: its rows are skipped)."""
        if axis.highlighted is None:
            return
        value = axis.get_option_at_index(axis.highlighted).value
        reason = next((c.reason for c in axis.offer.choices if c.value == value), "")
        if reason:
            self.hint(f"✗ {axis.offer.label} {value}: {reason}; may be picked: its runs are listed skipped")
        else:
            self.hint(f"{axis.offer.label}: space picks or drops the highlighted value"
                      + ("; type a number to add another (enter adds it)" if axis.offer.typed else ""))

    def add_typed(self, field: Input) -> None:
        """Add the value typed under an axis's list, picked; one line says why when it is no positive whole number."""
        axis = field.parent.query_one(AxisList)
        try:
            choice = sweep_axes.typed_value(axis.offer, field.value, self.entry.config, self.app.machine)
        except ValueError as exc:
            field.add_class("-invalid")
            self.hint(f"✗ {exc}", error=True)
            return
        field.remove_class("-invalid")
        field.value = ""
        offer = axis.offer.with_choice(choice)
        if offer is not axis.offer:
            axis.offer = self.offers[offer.key] = offer
            position = [c.value for c in offer.choices].index(choice.value)
            picked = set(axis.selected)
            axis.clear_options()
            axis.add_options([Selection(value_label(offer, c), c.value, c.value in picked) for c in offer.choices])
            axis.highlighted = position
        axis.select(choice.value)
        self.hint(f"{axis.offer.label} {choice.value} added" + (f": ✗ {choice.reason}" if choice.reason else ""),
                  error=bool(choice.reason))
        self.count()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "steps":
            self.count()

    # --------------------------------------------------------------- start
    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.has_class("more"):
            self.add_typed(event.input)
        else:
            self.action_start()

    def action_start(self) -> None:
        if self.plan is not None or self.entry.config is None:
            return
        from tui_trainer.runs.sweep import parse_grid, plan_sweep

        grid = list(self.count().grid)
        steps = steps_value(self.query_one("#steps", Input).value)
        if steps is None:
            self.status(f"✗ {STEPS_PROBLEM}")
            return
        effective = self.query_one("#effective", Input).value.strip()
        try:
            plan = plan_sweep(self.entry.path, parse_grid(grid), self.app.machine, steps=steps,
                              effective_batch=int(effective or 0))
        except ConfigError as exc:
            problem = exc.problems[0]
            named = FIELD_NAMES.get(str(problem.source)) if not problem.key else None
            self.status(f"✗ {named}: {problem.allowed}" if named else f"✗ {problem}")
            return
        except ValueError as exc:
            self.status(f"✗ {exc}")
            return
        self.plan = plan
        self.rows = list(plan.rows)
        self.app.sweeps.append(self)  # the quit dialog counts it until its worker has ended
        for widget in self.query("#sweep-axes AxisList, #sweep-axes Input, .settings Input"):
            widget.disabled = True  # the plan is made: changes would mean nothing
        self.query_one("#sweep-hint").display = False  # its two lines go to the table
        table = self.query_one(DataTable)
        keys = list(dict.fromkeys(k for r in plan.rows for k, _ in r.values))
        for key in keys:
            section, _, name = key.rpartition(".")
            table.add_column(section if name == "name" else name, key=key)  # strategy.name reads "strategy"
        for key, label in (("status", "status"), ("rate", "samples/s"), ("ms", "ms/step"), ("rel", "vs first"),
                           ("mem", "peak MiB"), ("loss", "train loss"), ("best", "best")):
            table.add_column(label, key=key, width=STATUS_WIDTH if key == "status" else None)
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

        app = self.app

        def show(method, *args) -> None:
            """Draw on this screen while it is shown; the sweep and its record go on without it (closed with
            `escape` while its row stops, or the app quitting)."""
            if not self.is_attached:
                return
            try:
                app.call_from_thread(method, *args)
            except Exception:  # the screen went (or the app ended) between the check and the call
                pass

        def on_row(i: int, row) -> None:
            if row.status != "running":
                self.rows[i] = row  # recorded here, not by the drawing: the record must not wait for the screen
                write_sweep(self.directory, self.plan, self.rows, finished=False)
            show(self.show_row, i, row)

        try:
            rows = run_sweep(self.plan, app.store, stop=self.stop, on_row=on_row,
                             on_event=lambda i, event: show(self.show_event, i, event))
            write_sweep(self.directory, self.plan, rows, finished=True)
            show(self.show_finished, rows)
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
