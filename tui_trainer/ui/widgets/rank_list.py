"""RankList: the state of each worker process of a multi-process (ddp) run; hidden when there are none."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from tui_trainer.session.run_state import RunState

STATE_STYLE = {"failed": "bold red", "diverged": "bold red", "training": "green", "completed": "green",
               "stopped": "yellow"}


class RankList(Widget):
    """One line per rank: `rank 0 training  rank 1 training`; redraws when `version` changes."""

    DEFAULT_CSS = """
    RankList {
        height: auto;
        display: none;
        &.-has-ranks { display: block; }
    }
    """

    version: reactive[int] = reactive(-1)

    def __init__(self, state: RunState, *, id: str | None = None):
        super().__init__(id=id)
        self.state = state

    def watch_version(self) -> None:
        self.set_class(bool(self.state.ranks), "-has-ranks")

    def render(self) -> Text:
        out = Text(no_wrap=False)
        for rank in sorted(self.state.ranks):
            r = self.state.ranks[rank]
            out.append(f"rank {rank} ", "bold")
            out.append(r.state, STATE_STYLE.get(r.state, ""))
            if r.detail:
                out.append(f" {r.detail}", "dim")
            out.append("  ")
        return out
