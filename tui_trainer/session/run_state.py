"""What the UI knows about one run, built from its events: plain Python, no Textual, no torch.

The training thread produces events a few times a second; the app drains them at 10 Hz into a
`RunState`. Widgets never hold the RunState: they are given its frozen views (`Standing`, `LossCurve`,
`LogTail`) as reactive data and redraw when a view differs from the one they hold. Everything here is
bounded, so a run of millions of steps holds as much memory as a run of a thousand.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from tui_trainer.session import format as fmt
from tui_trainer.training.figures import train_loss_label
from tui_trainer.training.events import (
    CheckpointSaved,
    EvalResult,
    LogLine,
    RankState,
    RunFinished,
    RunStarted,
    RunSummary,
    TrainProgress,
)

SERIES_POINTS = 2000
LOG_LINES = 500


class Series:
    """A whole run's values in at most `capacity` points.

    When full, neighbouring points merge into their mean and each point then stands for twice as
    many values, so the series always spans the whole run (not only its last N steps) at a fixed size.
    Non-finite values are counted but not drawn.
    """

    def __init__(self, capacity: int = SERIES_POINTS):
        self.capacity = max(2, capacity - capacity % 2)
        self.points: list[float] = []
        self.stride = 1
        self.count = 0
        self.last: float | None = None
        self.min: float | None = None
        self._sum = 0.0
        self._n = 0

    def append(self, value: float) -> None:
        """Add one value."""
        self.count += 1
        if not math.isfinite(value):
            return
        self.last = value
        self.min = value if self.min is None else min(self.min, value)
        self._sum += value
        self._n += 1
        if self._n < self.stride:
            return
        self.points.append(self._sum / self._n)
        self._sum, self._n = 0.0, 0
        if len(self.points) >= self.capacity:
            pts = self.points
            self.points = [(pts[i] + pts[i + 1]) / 2 for i in range(0, len(pts) - 1, 2)]
            self.stride *= 2

    def extend(self, values) -> None:
        """Add values in order."""
        for value in values:
            self.append(value)

    def snapshot(self) -> list[float]:
        """The points to draw, including the partly filled last one."""
        if self._n:
            return [*self.points, self._sum / self._n]
        return list(self.points)


@dataclass(frozen=True, slots=True)
class Standing:
    """Where a run stands: its status and latest events, and the figures derived from them."""

    status: str = "starting"
    precision: str = ""
    started: RunStarted | None = None
    progress: TrainProgress | None = None
    summary: RunSummary | None = None

    @property
    def ended(self) -> bool:
        return self.summary is not None

    @property
    def step(self) -> int:
        if self.progress is not None:
            return self.progress.step
        if self.started is not None:
            return self.started.start_step
        return 0

    @property
    def total_steps(self) -> int:
        if self.started is not None:
            return self.started.total_steps
        return self.summary.total_steps if self.summary else 0

    @property
    def fraction(self) -> float:
        """Share of the planned steps done (0..1)."""
        total = self.total_steps
        return min(1.0, self.step / total) if total else 0.0


@dataclass(frozen=True, slots=True)
class LossCurve:
    """A loss series as a plot draws it, with the figures its title gives (None: no values yet)."""

    values: tuple[float, ...] = ()
    current: float | None = None
    minimum: float | None = None
    note: str = ""
    label: str = ""  # the figure's name in the title (e.g. `train loss (mean of last 12 steps)`); "": the plot's own


@dataclass(frozen=True, slots=True)
class LogTail:
    """The log lines kept (at most LOG_LINES) and how many were ever written."""

    total: int = 0
    lines: tuple[tuple[str, str], ...] = ()

    def since(self, seen_total: int) -> tuple[tuple[str, str], ...]:
        """The lines added after `seen_total` lines had been shown (bounded by what is kept)."""
        new = self.total - seen_total
        if new <= 0:
            return ()
        return self.lines[-min(new, len(self.lines)):]


class RunState:
    """The latest figures, the loss series, rank states and log lines of one run."""

    def __init__(self, run_id: str, name: str, precision: str = "", *, series_points: int = SERIES_POINTS):
        self.run_id = run_id
        self.name = name
        self.precision = precision
        self.status = "starting"
        self.started: RunStarted | None = None
        self.progress: TrainProgress | None = None
        self.eval: EvalResult | None = None
        self.checkpoint: CheckpointSaved | None = None
        self.summary: RunSummary | None = None
        self.train_loss = Series(series_points)
        self.best_loss: float | None = None  # the lowest train loss figure: one step's loss is too noisy
        self.val_loss = Series(series_points)
        self.ranks: dict[int, RankState] = {}
        self.log: deque[tuple[str, str]] = deque(maxlen=LOG_LINES)
        self.log_total = 0

    # ---------------------------------------------------------------- input
    def apply(self, events) -> bool:
        """Fold events into the state; True when anything changed."""
        changed = False
        for event in events:
            self._apply(event)
            changed = True
        return changed

    def note(self, level: str, text: str) -> None:
        """Add a line to the run's log (the UI's own notes: stop requested, resumed, ...)."""
        self.log.append((level, text))
        self.log_total += 1

    def begin_resume(self) -> None:
        """The run continues from its checkpoint: it is starting again, and has not ended."""
        self.status = "starting"
        self.summary = None
        self.note("info", "resuming from the last checkpoint")

    def prefill(self, losses, val_losses) -> None:
        """Seed the series with a run's earlier curve (a resumed run), before its new events."""
        self.train_loss.extend(losses)
        self.val_loss.extend(val_losses)

    def _apply(self, event) -> None:
        if isinstance(event, TrainProgress):
            self.progress = event
            self.train_loss.extend(event.losses)
            mean = event.train_loss if event.train_loss is not None else _finite_mean(event.losses)
            if mean is not None and (self.best_loss is None or mean < self.best_loss):
                self.best_loss = mean
            self.status = "running" if self.status in ("starting", "running") else self.status
        elif isinstance(event, EvalResult):
            self.eval = event
            self.val_loss.append(event.val_loss)
        elif isinstance(event, RunStarted):
            self.started = event
            if self.status == "starting":
                self.status = "running"
            self.note("info", f"started on {event.device}: {event.total_steps - event.start_step:,} steps, "
                              f"effective batch {event.effective_batch}, {event.parameters:,} parameters")
            for note in event.notes:
                self.note("note", note)
        elif isinstance(event, CheckpointSaved):
            self.checkpoint = event
            self.note("info", f"checkpoint at step {event.step}")
        elif isinstance(event, LogLine):
            self.note(event.level, event.text)
        elif isinstance(event, RankState):
            self.ranks[event.rank] = event
        elif isinstance(event, RunFinished):
            self.summary = event.summary
            self.status = event.summary.status
            text = f"{event.summary.status} at step {event.summary.step}/{event.summary.total_steps}"
            self.note("error" if event.summary.status in ("failed", "diverged") else "info", text)

    # --------------------------------------------------------------- output
    @property
    def standing(self) -> Standing:
        return Standing(self.status, self.precision, self.started, self.progress, self.summary)

    @property
    def ended(self) -> bool:
        return self.summary is not None

    @property
    def step(self) -> int:
        return self.standing.step

    @property
    def total_steps(self) -> int:
        return self.standing.total_steps

    @property
    def fraction(self) -> float:
        """Share of the planned steps done (0..1)."""
        return self.standing.fraction

    @property
    def current_loss(self) -> float | None:
        """The run's train loss figure (training/figures.py), as the trainer last reported it."""
        p = self.progress
        if p is not None and p.train_loss is not None:
            return p.train_loss
        if p is None or not p.losses:
            return self.train_loss.last
        mean = _finite_mean(p.losses)
        return mean if mean is not None else p.losses[-1]

    @property
    def train_curve(self) -> LossCurve:
        """The train loss as the dashboard plots it: the run's train loss figure, its best, the step count."""
        count = self.train_loss.count
        return LossCurve(tuple(self.train_loss.snapshot()), self.current_loss, self.best_loss,
                         f"{count:,} step{'s' if count != 1 else ''}" if count else "",
                         train_loss_label(self.started.loss_window if self.started is not None else 0))

    @property
    def val_curve(self) -> LossCurve:
        """The validation loss as the dashboard plots it, with the latest metric."""
        note = ""
        if self.eval is not None:
            note = f"{self.eval.metric_name} {fmt.number(self.eval.metric, 3)} at step {self.eval.step:,}"
        return LossCurve(tuple(self.val_loss.snapshot()), self.val_loss.last, self.val_loss.min, note)

    @property
    def log_tail(self) -> LogTail:
        return LogTail(self.log_total, tuple(self.log))

    def log_since(self, seen_total: int) -> list[tuple[str, str]]:
        """Log lines added after `seen_total` lines had been shown (bounded by what is kept)."""
        return list(self.log_tail.since(seen_total))


def _finite_mean(values) -> float | None:
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else None
