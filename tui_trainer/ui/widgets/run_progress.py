"""RunProgress: step and epoch with a bar and ETA, samples/s, effective batch and the precision state."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from tui_trainer.session import format as fmt
from tui_trainer.session.run_state import Standing

STATUS_STYLE = {"running": "bold green", "completed": "bold", "stopped": "bold yellow", "stopping": "yellow",
                "failed": "bold red", "diverged": "bold red", "starting": "dim"}


class RunProgress(Widget):
    """Two lines about where a run stands; assign `standing` to redraw (an equal one draws nothing)."""

    DEFAULT_CSS = """
    RunProgress {
        height: 2;
    }
    """

    standing: reactive[Standing] = reactive(Standing)

    def render(self) -> Text:
        s, p = self.standing, self.standing.progress
        width = self.size.width
        first = Text(no_wrap=True, overflow="ellipsis")
        first.append(s.status, STATUS_STYLE.get(s.status, ""))
        if s.started is None and p is None and not s.ended:
            first.append("  loading the data and building the model...", "dim")
            return Text("\n").join([first, Text(f"{s.precision}", no_wrap=True)])
        epoch = f"  epoch {p.epoch}" if p is not None else ""
        first.append(f"  step {s.step:,}/{s.total_steps:,}{epoch}  ")
        if s.ended:  # a stopped run has no ETA; a completed one is at 100%
            eta = f" {s.fraction:4.0%}"
        else:
            eta = f" {s.fraction:4.0%}  ETA {fmt.seconds(p.eta_s if p is not None else None)}"
        room = width - len(first) - len(eta)
        if room >= 5:
            first.append(fmt.bar(s.fraction, min(room, 30)), "green")
        first.append(eta)

        second = Text(no_wrap=True, overflow="ellipsis")
        if s.summary is not None:  # an ended run: its summary's figure, the whole run's (as in `runs`)
            rate, window = s.summary.samples_per_s or None, " over the run"
        else:
            rate = p.samples_per_s if p is not None else None
            window = f" (last {fmt.window(p.rate_window_s)})" if p is not None and p.rate_window_s else ""
        second.append(f"{fmt.rate(rate)} samples/s{window}")
        if s.started is not None:
            second.append(f"  eff. batch {s.started.effective_batch}")
            if s.started.world_size > 1:
                second.append(f" (world {s.started.world_size})")
        second.append(f"  {s.precision}")
        if p is not None and p.scaler_scale is not None:
            second.append(f" scale {p.scaler_scale:g}")
            second.append(f" skipped {p.skipped_steps}", "yellow" if p.skipped_steps else "")
        if s.started is not None:
            second.append(f"  {s.started.device}", "dim")
        return Text("\n").join([first, second])
