"""The launch screen: detected GPUs, the presets, and the options of the highlighted one.

The presets directory is watched (about once a second, and again before anything starts): a file added,
removed or edited on disk shows at once, and a run always starts from the file as it is then.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Input, OptionList, Static

from tui_trainer.config import Machine, save_preset
from tui_trainer.config.names import inside
from tui_trainer.session.preset_watch import PresetWatch
from tui_trainer.ui.messages import MachineSampled, PresetsLoaded
from tui_trainer.ui.screens.save_preset import SavePresetScreen
from tui_trainer.ui.widgets.gpu_list import GpuList
from tui_trainer.ui.widgets.options_pane import OptionsPane
from tui_trainer.ui.widgets.preset_list import PresetList

PRESETS_INTERVAL = 1.0  # seconds between looks at the presets directory


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
        self.watch = PresetWatch(self.presets_dir, machine)

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
        self.set_interval(PRESETS_INTERVAL, self.poll_presets)

    # ------------------------------------------------------------ presets
    def reload_presets(self, highlight: str | None = None) -> None:
        """Read the presets directory (a few small TOML files: fast enough for the UI thread)."""
        self.watch.poll()
        self.post_message(PresetsLoaded(self.watch.entries, highlight))

    def on_presets_loaded(self, message: PresetsLoaded) -> None:
        presets = self.query_one(PresetList)
        presets.set_entries(message.entries, message.highlight)
        presets.border_subtitle = f"{len(message.entries)} presets"
        self.query_one(OptionsPane).entry = presets.current

    def poll_presets(self) -> bool:
        """Show the presets directory as it is now (once a second, and before anything starts): files added,
        removed or edited. The highlighted preset and the marks stay where their files do; the options pane
        reloads only when the highlighted preset's file changed. Return whether that dropped edits made in
        the pane (the user is told)."""
        if not self.watch.poll():
            return False
        presets = self.query_one(PresetList)
        pane = self.query_one(OptionsPane)
        shown, edited = pane.entry, pane.edited
        presets.set_entries(self.watch.entries, shown.name if shown is not None else None)
        presets.border_subtitle = f"{len(self.watch.entries)} presets"
        current = presets.current
        if current is shown:  # the highlighted preset's file did not change: the pane (and its edits) stay
            return False
        pane.entry = current
        dropped = edited and current is not None and current.name == shown.name
        if dropped:
            self.notify(f"{current.path.name} changed on disk: its options were reloaded from the file "
                        "(your edits in the pane were dropped)", severity="warning", timeout=8)
        return dropped

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
        """Start the marked presets as a queue (asked: stop at a failure or not), else the highlighted preset.

        Whatever starts is read from its file as it is now (plus the pane's edits): never an older copy.
        """
        dropped = self.poll_presets()
        marked = self.query_one(PresetList).marked_entries
        if marked:
            if self.queue_refused(marked):
                return
            from tui_trainer.ui.screens.confirm_queue import STOP_ON_FAILURE, ConfirmQueueScreen

            def chosen(answer: str | None) -> None:
                if not answer:
                    return
                self.poll_presets()  # a file edited while the question was open: queue it as it is now
                now = {e.name: e for e in self.query_one(PresetList).entries}
                gone = [e.name for e in marked if e.name not in now]
                if gone:
                    self.notify(f"cannot queue {gone[0]}: its file is gone", severity="error", timeout=6)
                    return
                entries = [now[e.name] for e in marked]
                if self.queue_refused(entries):
                    return
                self.query_one(PresetList).clear_marks()  # started: back here, enter is a new choice
                self.app.start_queue([e.config for e in entries], stop_on_failure=answer == STOP_ON_FAILURE)

            self.app.push_screen(ConfirmQueueScreen([e.name for e in marked]), chosen)
            return
        if dropped:
            return  # the file changed under the pane's edits: the user sees the reloaded options first
        evaluated = self.query_one(OptionsPane).evaluated
        if evaluated is None:
            self.notify("no preset to start", severity="warning")
            return
        if not evaluated.runnable:
            first = evaluated.problems[0] if evaluated.problems else "the preset cannot be read"
            self.notify(f"cannot start: {first}", severity="error", timeout=6)
            return
        self.app.start_run(evaluated.config)

    def queue_refused(self, entries) -> bool:
        """Refuse a queue holding a preset that cannot run here, naming the first one and its error line."""
        refused = [e for e in entries if not e.valid or e.config is None]
        if refused:
            self.notify(f"cannot queue {refused[0].name}: {refused[0].errors[0] if refused[0].errors else ''}",
                        severity="error", timeout=6)
        return bool(refused)

    def action_sweep(self) -> None:
        """Open the sweep screen for the highlighted preset."""
        from tui_trainer.ui.screens.sweep import SweepScreen

        self.poll_presets()  # the sweep starts from the file as it is now
        entry = self.query_one(PresetList).current
        if entry is None:
            self.notify("no preset to sweep", severity="warning")
            return
        if entry.config is None:
            self.notify(f"cannot sweep {entry.name}: {entry.errors[0] if entry.errors else ''}",
                        severity="error", timeout=6)
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
