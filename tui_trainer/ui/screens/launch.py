"""The launch screen: detected GPUs, the presets, and the options of the highlighted one."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Input, OptionList, Static

from tui_trainer.config import Machine, discover_presets, save_preset
from tui_trainer.config.names import inside
from tui_trainer.ui.messages import MachineSampled, PresetsLoaded
from tui_trainer.ui.screens.save_preset import SavePresetScreen
from tui_trainer.ui.widgets.gpu_list import GpuList
from tui_trainer.ui.widgets.options_pane import OptionsPane
from tui_trainer.ui.widgets.preset_list import PresetList


class LaunchScreen(Screen):
    """GPUs at the top; presets on the left (enter starts); options of the highlighted preset on the right."""

    CSS_PATH = "launch.tcss"
    AUTO_FOCUS = "#presets"

    BINDINGS = [
        Binding("enter", "start", "Start"),
        Binding("ctrl+s", "save_preset", "Save preset"),
        Binding("w", "sweep", "Sweep"),
        # The option fields take digits only (NumberInput), so these letters work everywhere here.
        Binding("r", "app.show_runs", "Runs"),
        Binding("escape", "focus_presets", "Presets", show=False),
    ]

    def __init__(self, presets_dir: Path, machine: Machine):
        super().__init__()
        self.presets_dir = Path(presets_dir)
        self.machine = machine

    def compose(self) -> ComposeResult:
        yield GpuList(id="gpus")
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield Static(f"presets  {self.presets_dir}", classes="pane-title", markup=False)
                yield PresetList(id="presets")
            yield OptionsPane(self.machine, id="options")
        yield Footer()

    def on_mount(self) -> None:
        gpus = self.query_one(GpuList)
        gpus.reason = self.machine.gpu_note
        gpus.names = tuple((g.index, g.name) for g in self.machine.gpus)
        gpus.samples = self.app.machine_reading.gpus
        self.reload_presets()

    # ------------------------------------------------------------ presets
    def reload_presets(self, highlight: str | None = None) -> None:
        """Read the presets directory (a few small TOML files: fast enough for the UI thread)."""
        self.post_message(PresetsLoaded(discover_presets(self.presets_dir, self.machine), highlight))

    def on_presets_loaded(self, message: PresetsLoaded) -> None:
        presets = self.query_one(PresetList)
        presets.set_entries(message.entries, message.highlight)
        presets.border_subtitle = f"{len(message.entries)} presets"
        self.query_one(OptionsPane).entry = presets.current

    @on(OptionList.OptionHighlighted, "#presets")
    def preset_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        pane = self.query_one(OptionsPane)
        entry = self.query_one(PresetList).current
        if entry is not pane.entry:
            pane.entry = entry

    @on(OptionList.OptionSelected, "#presets")
    def preset_selected(self) -> None:
        self.action_start()

    @on(Input.Submitted)
    def input_submitted(self) -> None:
        self.action_start()

    # ------------------------------------------------------------ machine
    def on_machine_sampled(self, message: MachineSampled) -> None:
        self.query_one(GpuList).samples = message.reading.gpus

    # ------------------------------------------------------------ actions
    def action_focus_presets(self) -> None:
        self.query_one(PresetList).focus()

    def action_start(self) -> None:
        """Start the marked presets as a queue (asked: stop at a failure or not), else the highlighted preset."""
        marked = self.query_one(PresetList).marked_entries
        if marked:
            refused = [e for e in marked if not e.valid or e.config is None]
            if refused:
                self.notify(f"cannot queue {refused[0].name}: {refused[0].errors[0] if refused[0].errors else ''}",
                            severity="error", timeout=6)
                return
            from tui_trainer.ui.screens.confirm_queue import STOP_ON_FAILURE, ConfirmQueueScreen

            def chosen(answer: str | None) -> None:
                if answer:
                    self.query_one(PresetList).clear_marks()  # started: back here, enter is a new choice
                    self.app.start_queue([e.config for e in marked], stop_on_failure=answer == STOP_ON_FAILURE)

            self.app.push_screen(ConfirmQueueScreen([e.name for e in marked]), chosen)
            return
        evaluated = self.query_one(OptionsPane).evaluated
        if evaluated is None:
            self.notify("no preset to start", severity="warning")
            return
        if not evaluated.runnable:
            first = evaluated.problems[0] if evaluated.problems else "the preset cannot be read"
            self.notify(f"cannot start: {first}", severity="error", timeout=6)
            return
        self.app.start_run(evaluated.config)

    def action_sweep(self) -> None:
        """Open the sweep screen for the highlighted preset."""
        from tui_trainer.ui.screens.sweep import SweepScreen

        entry = self.query_one(PresetList).current
        if entry is None or entry.config is None:
            self.notify("no preset to sweep", severity="warning")
            return
        self.app.push_screen(SweepScreen(entry, Path(self.app.store.root).parent / "sweeps", self.presets_dir))

    def action_save_preset(self) -> None:
        """Ask for a name and save the edited options as a new preset file."""
        evaluated = self.query_one(OptionsPane).evaluated
        if evaluated is None or evaluated.config is None:
            self.notify("nothing to save: the options do not form a valid preset", severity="error")
            return
        config = evaluated.config
        suggestion = _free_name(self.presets_dir, f"{config.name}-edited")

        def save(answer: tuple[str, str] | None) -> None:
            if not answer:
                return
            name, description = answer
            path = self.presets_dir / f"{name}.toml"
            try:
                path = inside(self.presets_dir, name, ".toml")
                save_preset(replace(config, name=name, description=description), path)
            except (OSError, ValueError) as exc:
                self.notify(f"could not save {path}: {exc}", severity="error")
                return
            self.notify(f"saved {path}")
            self.reload_presets(highlight=name)

        base = self.query_one(OptionsPane).entry
        description = _described(config, base.config if base is not None else None)
        self.app.push_screen(SavePresetScreen(self.presets_dir, suggestion, description), save)


def _free_name(directory: Path, base: str) -> str:
    if not (directory / f"{base}.toml").exists():
        return base
    n = 2
    while (directory / f"{base}-{n}.toml").exists():
        n += 1
    return f"{base}-{n}"


def _described(config, base) -> str:
    """A suggested description: the original one, with the options that were changed from it."""
    from tui_trainer.config import to_dict

    if base is None:
        return config.description
    new, old = to_dict(config), to_dict(base)
    changed = [f"{section}.{key}={value}" for section, values in new.items() if isinstance(values, dict)
               for key, value in values.items() if old.get(section, {}).get(key) != value]
    if not changed:
        return config.description
    return f"{config.description} (edited: {', '.join(changed)})" if config.description else \
        f"edited: {', '.join(changed)}"
