"""SavePresetScreen: a small modal that asks for the new preset's name."""

from __future__ import annotations

import re
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


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
        if not NAME.match(name):
            error.update("a name of letters, digits, '.', '_' or '-', e.g. cpu-quick-bf16")
            return
        if (self.directory / f"{name}.toml").exists():
            error.update(f"{name}.toml exists already: choose another name")
            return
        self.dismiss(name)

    def action_cancel(self) -> None:
        self.dismiss(None)
