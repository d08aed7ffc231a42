"""LogPane: a run's events and errors, newest at the bottom."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import var
from textual.widgets import RichLog

from tui_trainer.session.run_state import LogTail

LEVEL_STYLE = {"error": "bold red", "warning": "yellow", "note": "cyan", "info": ""}


class LogPane(RichLog):
    """A run's log; assign `tail` (a frozen LogTail) and the lines it adds are written."""

    DEFAULT_CSS = """
    LogPane {
        height: 1fr;
        min-height: 3;
        border: round $primary-darken-2;
        scrollbar-size-vertical: 1;
    }
    """

    tail: var[LogTail] = var(LogTail)

    def __init__(self, *, id: str | None = None):
        super().__init__(max_lines=1000, wrap=True, markup=False, highlight=False, id=id)

    def on_mount(self) -> None:
        self.border_title = "log"

    def on_resize(self) -> None:
        """Keep the newest line in view when the terminal is resized (the lines wrap again)."""
        self.call_after_refresh(self.scroll_end, animate=False)

    def watch_tail(self, old: LogTail, new: LogTail) -> None:
        """Write the lines added since the tail shown before (RichLog keeps what it has written)."""
        for level, text in new.since(old.total):
            line = Text()
            if level not in ("info", ""):
                line.append(f"{level}: ", LEVEL_STYLE.get(level, "bold"))
            line.append(text, "red" if level == "error" else "")
            self.write(line)
