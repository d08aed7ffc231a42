"""SavePresetScreen: a small modal that asks for the new preset's name."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from tui_trainer.config.names import PRESET_NAME_RULE, is_preset_name


class SavePresetScreen(ModalScreen[str | None]):
    """Dismisses with the chosen name (enter) or None (escape)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    DEFAULT_CSS = """
    SavePresetScreen { align: center middle; }
    SavePresetScreen > Vertical {
        width: 60; max-width: 95%; height: auto;
        border: round $accent; padding: 0 1; background: $surface;
    }
    SavePresetScreen #error { color: $error; height: auto; }
    """

    def __init__(self, directory: Path, suggestion: str):
        super().__init__()
        self.directory = directory
        self.suggestion = suggestion

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"save the options as a preset in {self.directory}/", markup=False)
            yield Input(self.suggestion, id="name", placeholder="preset name")
            yield Static("", id="error", markup=False)
            yield Static("enter saves, escape cancels", classes="hint", markup=False)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        name = event.value.strip().removesuffix(".toml")
        error = self.query_one("#error", Static)
        if not is_preset_name(name):  # never a path: "../x", "/etc/x", "a/b" stay out of other directories
            error.update(PRESET_NAME_RULE)
            return
        if (self.directory / f"{name}.toml").exists():
            error.update(f"{name}.toml exists already: choose another name")
            return
        self.dismiss(name)

    def action_cancel(self) -> None:
        self.dismiss(None)
