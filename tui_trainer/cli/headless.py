"""Headless runs: plain progress lines at a fixed interval, a summary at the end, clean Ctrl-C."""

from __future__ import annotations

import os
import queue
import sys
import time
from typing import TextIO

from tui_trainer.runs import Runner
from tui_trainer.training.events import EvalResult, LogLine, RankState, RunFinished, RunStarted, TrainProgress
from tui_trainer.training.figures import train_loss_label

EXIT_CODES = {"completed": 0, "failed": 1, "diverged": 1, "stopped": 130}


def follow(runner: Runner, out: TextIO = sys.stdout, every: float = 2.0) -> int:
    """Print a run's progress until it ends; return the exit code (0, 1, or 130 after Ctrl-C)."""
    printer = _Printer(runner, out, every)
    interrupted = False
    while True:
        try:
            code = printer.pump()
            if code is not None:
                return 130 if interrupted and code != 0 else code
        except KeyboardInterrupt:
            if interrupted:
                printer.say("second Ctrl-C: leaving now (the last checkpoint is kept)")
                return 130
            interrupted = True
            runner.stop()
            printer.say("Ctrl-C: stopping after this step and writing a checkpoint (Ctrl-C again to leave now)")


class _Printer:
    """Reads a run's events and prints at most one progress line per interval."""

    def __init__(self, runner: Runner, out: TextIO, every: float):
        self.runner, self.out, self.every = runner, out, every
        self.state = _State()
        self.last_print = time.monotonic()
        self.last_line = ""

    def say(self, text: str) -> None:
        """Print a line; if the reader is gone (`| tee` killed by the same Ctrl-C), train on silently."""
        if self.out is None:
            return
        try:
            print(text, file=self.out, flush=True)
        except (BrokenPipeError, OSError, ValueError):
            gone, self.out = self.out, None
            _silence(gone)

    def pump(self) -> int | None:
        """Handle the next event (waiting at most 0.2 s); return the exit code once the run has ended."""
        try:
            event = self.runner.events.get(timeout=0.2)
        except queue.Empty:
            event = None
        state = self.state
        if event is not None:
            state.update(event)
            if isinstance(event, RunStarted):
                self.last_print = time.monotonic()  # the first line comes one interval into training
                self.say(f"run {event.run_id}: {event.total_steps - event.start_step} steps on {event.device}, "
                         f"effective batch {event.effective_batch}, {event.parameters:,} parameters")
                for note in event.notes:
                    self.say(f"note: {note}")
            elif isinstance(event, LogLine):
                self.say(f"{event.level}: {event.text}")
            elif isinstance(event, RankState):
                self.say(f"rank {event.rank}: {event.state} {event.detail}".rstrip())
            elif isinstance(event, RunFinished):
                if state.progress is not None and state.line() != self.last_line:
                    self.say(state.line())
                self.say(summary_text(event.summary, self.runner.run_dir))
                self.runner.wait()  # let the training thread finish before the interpreter shuts down
                return EXIT_CODES.get(event.summary.status, 1)
        now = time.monotonic()
        if state.progress is not None and now - self.last_print >= self.every:
            line = state.line()
            if line != self.last_line:  # a slow step rate does not repeat the same line
                self.last_line = line
                self.say(line)
            self.last_print = now
        return None


class _State:
    """The latest figures of a run, for one progress line."""

    def __init__(self):
        self.started: RunStarted | None = None
        self.progress: TrainProgress | None = None
        self.eval: EvalResult | None = None

    def update(self, event: object) -> None:
        if isinstance(event, RunStarted):
            self.started = event
        elif isinstance(event, TrainProgress):
            self.progress = event
        elif isinstance(event, EvalResult):
            self.eval = event

    def line(self) -> str:
        p = self.progress
        total = self.started.total_steps if self.started else 0
        # The run's train loss figure (figures.py), the same number summary.json and the app show.
        loss = "-" if p.train_loss is None else f"{p.train_loss:.4g}"
        parts = [f"step {p.step}/{total}", f"epoch {p.epoch}", f"train loss {loss}"]
        if self.eval is not None:
            parts.append(f"val loss {self.eval.val_loss:.4g}")
            parts.append(f"{self.eval.metric_name} {self.eval.metric:.3f}")
        parts.append(f"{p.samples_per_s:,.0f} samples/s")
        if p.scaler_scale is not None:
            parts.append(f"scale {p.scaler_scale:g} skipped {p.skipped_steps}")
        parts.append(f"ETA {format_seconds(p.eta_s)}")
        return "  ".join(parts)


def summary_text(summary, run_dir) -> str:
    """The closing lines of a headless run."""
    def fmt(value, spec=".4g"):
        return "-" if value is None else format(value, spec)

    lines = [
        f"{summary.status}: {summary.name} at step {summary.step}/{summary.total_steps} in "
        f"{format_seconds(summary.wall_s)}",
        f"  {train_loss_label(summary.loss_window)} {fmt(summary.final_loss)}  "
        f"val loss (last evaluation) {fmt(summary.final_val_loss)}  "
        f"{summary.metric_name or 'metric'} {fmt(summary.metric, '.3f')}  {summary.samples_per_s:,.0f} samples/s",
        f"  run directory: {run_dir}",
    ]
    if summary.compile_s is not None:
        lines.insert(2, f"  torch.compile: {summary.compile_s:.1f}s compiling (the first step), "
                        f"{summary.train_s or 0:.1f}s training (samples/s counts the training only)")
    if summary.skipped_steps:
        lines.insert(2, f"  fp16 steps skipped by the GradScaler: {summary.skipped_steps}")
    if summary.error:
        lines.insert(1, f"  error: {summary.error}")
    return "\n".join(lines)


def format_seconds(seconds: float | None) -> str:
    """1h02m, 3m05s, 12s: short and readable; "?" when unknown."""
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "?"
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def _silence(stream: TextIO) -> None:
    """Point a stream's descriptor at /dev/null, so that the interpreter's flush at exit cannot fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass

