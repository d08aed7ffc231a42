"""OptionsPane: the selected preset's options, edited by keyboard and validated at every change.

Strategy and precision are lists whose choices this machine cannot run are marked with the reason;
accumulation, batch size, max steps, epochs and the device count are numbers; on a GPU machine the
GPU ids are picked with space. Every change re-validates at once (the same checks as `--set`) and
shows the problems inline; `evaluated` holds the verdict.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.reactive import var
from textual.widgets import Input, Label, Select, SelectionList, Static

from tui_trainer.config import Machine, PresetEntry
from tui_trainer.config.choices import lists_ids
from tui_trainer.config.schema import device_count
from tui_trainer.session import options
from tui_trainer.ui.widgets.number_input import NumberInput

NUMBERS = {  # option -> (label, placeholder)
    "accumulate": ("accumulate", "micro-batches per step"),
    "batch_size": ("batch size", "per device"),
    "max_steps": ("max steps", "0: run the epochs"),
    "epochs": ("epochs", ""),
}
LABELS = {"strategy": "strategy", "accelerator": "accelerator", "precision": "precision", "devices": "devices",
          "compile": "compile", "tensorboard": "tensorboard"}


def choice_label(choice: options.Choice) -> Text:
    """`fp16-mixed  ✗ needs a CUDA GPU` for a choice this machine cannot run; the bare value otherwise."""
    if not choice.reason:
        return Text(choice.value)
    return Text.assemble(choice.value, ("  ✗ " + choice.reason, "red"))


class OptionsPane(VerticalScroll, can_focus=False):
    """The options of one preset: assign `entry` to show a preset; `evaluated` is the current verdict."""

    DEFAULT_CSS = """
    OptionsPane {
        height: 1fr;
        & > .row { height: auto; }
        & > .row > Label { width: 12; padding: 0 1 0 0; }
        & > .row > Select, & > .row > Input { width: 1fr; }
        & > .row.-invalid > Label { color: $error; text-style: bold; }
        & > #gpu-ids { height: auto; max-height: 6; }
        & > #effective { margin-top: 1; }
        & > #problems { color: $error; }
    }
    """

    entry: var[PresetEntry | None] = var(None, init=False, always_update=True)
    """Assigning it (the same preset again too) loads the preset's values, dropping the edits."""
    evaluated: var[options.Evaluated | None] = var(None, init=False)

    def __init__(self, machine: Machine, *, id: str | None = None):
        super().__init__(id=id)
        self.machine = machine
        self.values: dict[str, str] = {}
        self._labels: dict[str, tuple] = {}

    def compose(self) -> ComposeResult:
        yield Static("", id="preset-title", markup=False)
        for key in ("strategy", "accelerator", "precision"):
            with Horizontal(classes="row", id=f"row-{key}"):
                yield Label(LABELS[key])
                yield Select([(v, v) for v in options.CHOICES[key]], id=key, allow_blank=False,
                             type_to_search=False, compact=True)
        for key in ("accumulate", "devices", "batch_size", "max_steps", "epochs"):
            with Horizontal(classes="row", id=f"row-{key}"):
                if key == "devices":
                    yield Label("devices")
                    hint = "count, or GPU ids (space below)" if self.machine.has_gpu else "count (ddp: processes)"
                    yield NumberInput(id=key, placeholder=hint, ids=True)
                else:
                    label, hint = NUMBERS[key]
                    yield Label(label)
                    yield NumberInput(id=key, placeholder=hint)
        for key in ("compile", "tensorboard"):  # on/off: torch.compile, curves to RUN_DIR/tensorboard
            with Horizontal(classes="row", id=f"row-{key}"):
                yield Label(LABELS[key])
                yield Select([(v, v) for v in options.CHOICES[key]], id=key, allow_blank=False,
                             type_to_search=False, compact=True)
        if self.machine.has_gpu:
            yield SelectionList[int](*[(f"GPU {g.index} {g.name}", g.index) for g in self.machine.gpus],
                                     id="gpu-ids", compact=True)
        yield Static("", id="effective", markup=False)
        yield Static("", id="problems", markup=False)

    # ------------------------------------------------------------------ load
    def watch_entry(self, entry: PresetEntry | None) -> None:
        """Show a preset's options (or why it cannot be read) and validate them."""
        title = self.query_one("#preset-title", Static)
        editable = entry is not None and entry.config is not None
        for widget in self.query("Select, Input, SelectionList"):
            widget.disabled = not editable
        for row in self.query(".row, SelectionList"):  # a preset that cannot be read has no options to show
            row.display = editable
        if entry is None:
            title.update("no presets: add TOML files to the presets directory")
            self.evaluated = None
            return
        title.update(Text.assemble(("options of ", "dim"), (entry.name, "bold")))
        if entry.config is None:
            self.values = {}
            self.evaluated = options.Evaluated(None, tuple(e.split(": ", 1)[-1] for e in entry.errors), frozenset())
            return
        self.values = options.values_of(entry.config)
        with self.prevent(Select.Changed, Input.Changed, SelectionList.SelectedChanged):
            for key in ("accumulate", "devices", "batch_size", "max_steps", "epochs"):
                self.query_one(f"#{key}", NumberInput).load(self.values[key])
            if self.machine.has_gpu:
                ids = self.query_one("#gpu-ids", SelectionList)
                ids.deselect_all()
                devices = entry.config.strategy.devices
                present = {g.index for g in self.machine.gpus}
                for i in devices if lists_ids(devices) else ():
                    if i in present:  # an id this machine lacks stays in the field, where validation names it
                        ids.select(i)
        self._labels = {}
        self.revalidate()

    @property
    def edited(self) -> bool:
        """Whether the user changed an option of the shown preset (its file's values are not what is shown)."""
        entry = self.entry
        return entry is not None and entry.config is not None and self.values != options.values_of(entry.config)

    # --------------------------------------------------------------- changes
    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        if self.entry is None or self.entry.config is None or event.value is Select.NULL:
            return
        self.values[event.select.id] = str(event.value)
        self.revalidate()

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        if self.entry is None or self.entry.config is None:
            return
        self.values[event.input.id] = event.value
        self.revalidate()

    def on_selection_list_selected_changed(self, event: SelectionList.SelectedChanged) -> None:
        event.stop()
        if self.entry is None or self.entry.config is None:
            return
        ids = sorted(event.selection_list.selected)
        devices = self.query_one("#devices", NumberInput)
        with self.prevent(Input.Changed):
            devices.load(options.ids_text(ids) if ids else str(device_count(self.entry.config.strategy.devices)))
        self.values["devices"] = devices.value
        self.revalidate()

    def revalidate(self) -> None:
        """Validate the current values; mark the choices and show the verdict."""
        entry = self.entry
        if entry is None or entry.config is None:
            return
        base = entry.config
        with self.prevent(Select.Changed):
            for key in options.CHOICES:
                choices = options.mark_choices(base, self.values, key, self.machine)
                labels = tuple((c.value, c.reason) for c in choices)
                select = self.query_one(f"#{key}", Select)
                if self._labels.get(key) != labels:
                    self._labels[key] = labels
                    select.set_options([(choice_label(c), c.value) for c in choices])
                    # set_options picks the first choice; step off and back so the shown label is redrawn
                    others = [c.value for c in choices if c.value != self.values[key]]
                    if others:
                        select.value = others[0]
                select.value = self.values[key]
        self.evaluated = options.evaluate(base, self.values, self.machine)

    def watch_evaluated(self, evaluated: options.Evaluated | None) -> None:
        for row in self.query(".row"):
            row.set_class(evaluated is not None and row.id.removeprefix("row-") in evaluated.keys, "-invalid")
        effective = self.query_one("#effective", Static)
        problems = self.query_one("#problems", Static)
        if evaluated is None:
            effective.update("")
            problems.update("")
        else:
            config = evaluated.config
            if config is not None:
                batch, accumulate = config.data.batch_size, config.train.accumulate
                copies = config.effective_batch // max(1, batch * accumulate)  # ddp processes x dp replicas
                effective.update(Text.assemble("effective batch ", (str(config.effective_batch), "bold"),
                                               (f" = {batch} x {accumulate} x {copies}", ""),
                                               ("\n(batch x accumulate x world size)", "dim")))
            else:
                effective.update(Text("effective batch: - (fix the problems below)", style="dim"))
            if evaluated.problems:
                problems.update(Text("\n".join(f"✗ {p}" for p in evaluated.problems)))
            else:
                problems.update(Text("✓ runnable here: enter starts it", style="green"))
