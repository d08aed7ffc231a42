"""PresetList: the presets with their descriptions; one that cannot run here shows why, not hidden."""

from __future__ import annotations

import re

from rich.text import Text
from textual.binding import Binding
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from tui_trainer.config import PresetEntry


MARK = "● "


def preset_prompt(entry: PresetEntry, marked: bool = False) -> Text:
    """How one preset reads in the list: name, description, and its first problem if it cannot run."""
    out = Text()
    if marked:
        out.append(MARK, "bold cyan")
    if entry.valid:
        out.append(entry.name, "bold")
    else:
        out.append("✗ ", "bold red")
        out.append(entry.name, "bold red")
    if entry.description:
        out.append(f"\n{entry.description}", "dim")
    if not entry.valid:
        more = f" (+{len(entry.errors) - 1} more)" if len(entry.errors) > 1 else ""
        out.append(f"\n{short_problem(entry.errors[0])}{more}", "red")
    return out


def short_problem(problem: str, limit: int = 90) -> str:
    """A problem line without its file name, cut at the first `;` (the options pane shows it whole)."""
    parts = problem.split(": ")
    if len(parts) > 1 and parts[0].endswith(".toml"):
        parts = parts[1:]
    text = re.sub(r"\s*\([^()]*\)", "", ": ".join(parts).split(";")[0])  # the GPU line says why already
    return text if len(text) <= limit else text[: limit - 3] + "..."


class PresetList(OptionList):
    """Presets by name; up/down or j/k move, enter starts the highlighted one; space marks presets for a queue."""

    BINDINGS = [
        Binding("enter", "select", "Start"),
        Binding("space", "toggle_mark", "Mark (queue)"),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]

    DEFAULT_CSS = """
    PresetList {
        height: 1fr;
        scrollbar-size-vertical: 1;
    }
    """

    def __init__(self, *, id: str | None = None):
        super().__init__(id=id)
        self.entries: list[PresetEntry] = []
        self.marked: list[str] = []  # preset names, in the order they were marked: the queue's order

    def set_entries(self, entries: list[PresetEntry], highlight: str | None = None) -> None:
        """Show these presets; highlight the one named `highlight`, else the first that can run."""
        self.entries = list(entries)
        self.marked = [m for m in self.marked if any(e.name == m for e in self.entries)]
        self.clear_options()
        items: list[Option | None] = []
        for entry in self.entries:
            items += [Option(preset_prompt(entry, entry.name in self.marked), id=entry.name), None]  # None: a separator
        self.add_options(items[:-1])
        if not self.entries:
            return
        names = [e.name for e in self.entries]
        if highlight in names:
            self.highlighted = names.index(highlight)
        else:
            self.highlighted = next((i for i, e in enumerate(self.entries) if e.valid), 0)

    @property
    def current(self) -> PresetEntry | None:
        """The highlighted preset."""
        if self.highlighted is None or not self.entries:
            return None
        return self.entries[self.highlighted]

    def action_toggle_mark(self) -> None:
        """Mark or unmark the highlighted preset; enter then starts the marked ones as a queue."""
        entry = self.current
        if entry is None:
            return
        if entry.name in self.marked:
            self.marked.remove(entry.name)
        else:
            self.marked.append(entry.name)
        self.replace_option_prompt(entry.name, preset_prompt(entry, entry.name in self.marked))

    def clear_marks(self) -> None:
        """Unmark every preset (once their queue has started)."""
        marked, self.marked = self.marked, []
        for name in marked:
            entry = next((e for e in self.entries if e.name == name), None)
            if entry is not None:
                self.replace_option_prompt(name, preset_prompt(entry, False))

    @property
    def marked_entries(self) -> list[PresetEntry]:
        """The marked presets, in the order they were marked."""
        by_name = {e.name: e for e in self.entries}
        return [by_name[m] for m in self.marked if m in by_name]
