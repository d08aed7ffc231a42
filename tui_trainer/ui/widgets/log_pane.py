"""LogPane: a run's events and errors, newest at the bottom."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import RichLog

from tui_trainer.session.run_state import RunState

LEVEL_STYLE = {"error": "bold red", "warning": "yellow", "note": "cyan", "info": ""}


class LogPane(RichLog):
    """Shows the log lines of a RunState; `catch_up()` appends the lines it has not shown yet."""

    DEFAULT_CSS = """
    LogPane {
        height: 1fr;
        min-height: 3;
        border: round $primary-darken-2;
        scrollbar-size-vertical: 1;
    }
    """

    def __init__(self, state: RunState, *, id: str | None = None):
        super().__init__(max_lines=1000, wrap=True, markup=False, highlight=False, id=id)
        self.state = state
        self.shown = 0

    def on_mount(self) -> None:
        self.border_title = "log"
        self.catch_up()

    def catch_up(self) -> None:
        """Write the state's new log lines."""
        for level, text in self.state.log_since(self.shown):
            line = Text()
            if level not in ("info", ""):
                line.append(f"{level}: ", LEVEL_STYLE.get(level, "bold"))
            line.append(text, "red" if level == "error" else "")
            self.write(line)
        self.shown = self.state.log_total
