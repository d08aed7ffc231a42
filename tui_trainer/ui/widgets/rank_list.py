"""RankList: the state of each worker process of a multi-process (ddp) run; hidden when there are none."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from tui_trainer.training.events import RankState

STATE_STYLE = {"failed": "bold red", "diverged": "bold red", "training": "green", "completed": "green",
               "stopped": "yellow"}


class RankList(Widget):
    """One line per rank: `rank 0 training  rank 1 training`; assign `ranks` (in rank order) to redraw."""

    DEFAULT_CSS = """
    RankList {
        height: auto;
        display: none;
        &.-has-ranks { display: block; }
    }
    """

    ranks: reactive[tuple[RankState, ...]] = reactive(tuple, toggle_class="-has-ranks")

    def render(self) -> Text:
        out = Text(no_wrap=False)
        for r in self.ranks:
            out.append(f"rank {r.rank} ", "bold")
            out.append(r.state, STATE_STYLE.get(r.state, ""))
            if r.detail:
                out.append(f" {r.detail}", "dim")
            out.append("  ")
        return out
