"""SavePresetScreen: a small modal that asks for the new preset's name and description."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from tui_trainer.config.names import PRESET_NAME_RULE, is_preset_name
from tui_trainer.ui.widgets.ordered_input import OrderedInput


class SavePresetScreen(ModalScreen[tuple[str, str] | None]):
    """Dismisses with (name, description) (enter in either field) or None (escape); tab moves between them."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    DEFAULT_CSS = """
    SavePresetScreen { align: center middle; }
    SavePresetScreen > Vertical {
        width: 60; max-width: 95%; height: auto;
        border: round $accent; padding: 0 1; background: $surface;
    }
    SavePresetScreen #error { color: $error; height: auto; }
    """

    def __init__(self, directory: Path, suggestion: str, description: str = ""):
        super().__init__()
        self.directory = directory
        self.suggestion = suggestion
        self.description = description

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"save the options as a preset in {self.directory}/", markup=False)
            yield OrderedInput(self.suggestion, id="name", placeholder="preset name")
            yield OrderedInput(self.description, id="description", placeholder="one line shown in the preset list")
            yield Static("", id="error", markup=False)
            yield Static("tab: name / description; enter saves, escape cancels", classes="hint", markup=False)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        name = self.query_one("#name", Input).value.strip().removesuffix(".toml")
        error = self.query_one("#error", Static)
        if not is_preset_name(name):  # never a path: "../x", "/etc/x", "a/b" stay out of other directories
            error.update(PRESET_NAME_RULE)
            return
        if (self.directory / f"{name}.toml").exists():
            error.update(f"{name}.toml exists already: choose another name")
            return
        self.dismiss((name, self.query_one("#description", Input).value.strip()))

    def action_cancel(self) -> None:
        self.dismiss(None)
