"""NumberInput: a one-line field for a number (or a list of GPU ids) that leaves letters to the screen."""

from __future__ import annotations

from textual import events

from tui_trainer.ui.widgets.ordered_input import OrderedInput

DIGITS = "0123456789"
ID_LIST = DIGITS + ",[] "


class NumberInput(OrderedInput):
    """An Input that takes digits only (and `[0, 1]` lists of GPU ids where `ids` is set).

    A plain Input claims every printable key, which would swallow the screen's one-letter keys
    (`q` quit, `r` runs, `?` help) while an option field has the focus; this one claims only what it
    can take.
    """

    def __init__(self, *, id: str, placeholder: str = "", ids: bool = False):
        super().__init__(id=id, placeholder=placeholder, compact=True, select_on_focus=False,
                         restrict=r"[0-9,\[\] ]*" if ids else r"[0-9]*")
        self.allowed = ID_LIST if ids else DIGITS

    def load(self, value: str) -> None:
        """Show a value not typed here (a preset's), the cursor at its end: typing appends to it."""
        self.value = value
        self.cursor_position = len(value)  # Input keeps the old cursor: "5" edited at 1, then "100", read "1|00"

    def _on_focus(self, event: events.Focus) -> None:
        self.cursor_position = len(self.value)  # typing appends, wherever an earlier edit left the cursor

    def check_consume_key(self, key: str, character: str | None) -> bool:
        """Claim only the characters this field can hold."""
        return character is not None and character in self.allowed

    async def _on_key(self, event: events.Key) -> None:
        if event.is_printable and event.character not in self.allowed:
            event.prevent_default()  # not ours: Input does not insert it, and the key goes on to the bindings
