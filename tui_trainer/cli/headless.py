"""Headless runs: plain progress lines at a fixed interval, a summary at the end, clean Ctrl-C.

SIGTERM and SIGHUP (a `kill`, a closed terminal) stop a run as cleanly as Ctrl-C: it ends after its
current step with its checkpoint, metrics and summary (`stopped`) written, and can be resumed. The
exit code says which signal stopped it, as shells do: 128 + its number (130 SIGINT, 129 SIGHUP, 143 SIGTERM).
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import sys
import threading
import time
from typing import TextIO

from tui_trainer.runs import Runner
from tui_trainer.runs.protocol import CHECKPOINT_FILE
from tui_trainer.session import format as fmt
from tui_trainer.training.events import EvalResult, LogLine, RankState, RunFinished, RunStarted, TrainProgress
from tui_trainer.training.figures import train_loss_label

EXIT_CODES = {"completed": 0, "failed": 1, "diverged": 1, "stopped": 130}


SIGNAL_NAMES = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM", signal.SIGHUP: "SIGHUP"}


def follow(runner: Runner, out: TextIO = sys.stdout, every: float = 2.0) -> int:
    """Print a run's progress until it ends; return the exit code (0, 1, or 128 + the signal that stopped it).

    Ctrl-C, SIGTERM and SIGHUP are queued by their handlers and served between two reads of the run's
    events (a fifth of a second apart at most), never raised in the middle of serving another one.
    """
    printer = _Printer(runner, out, every)
    stopped_by = 0
    with _stop_signals() as pending:
        while True:
            try:
                code = printer.pump()
            except KeyboardInterrupt:  # followed from a thread whose signals are not ours to handle
                pending.put(signal.SIGINT)
                code = None
            if code is not None:  # the run has ended: its end stands, whatever signal came meanwhile
                if not stopped_by and not pending.empty():
                    stopped_by = pending.get()
                return exit_code(code, stopped_by)
            while not pending.empty():
                signum = pending.get()
                name = SIGNAL_NAMES.get(signum, "a signal")
                if stopped_by and signum != signal.SIGHUP:
                    leave_now(printer, runner, name, 128 + signum)
                if stopped_by:  # a closed terminal's hang-up often comes twice (kernel and shell): no one asked
                    continue
                stopped_by = signum
                runner.stop()
                again = "" if signum == signal.SIGHUP else f" ({name} again to leave now)"
                printer.say(f"{name}: stopping after this step and writing a checkpoint{again}")


def exit_code(run_code: int, stopped_by: int) -> int:
    """The command's exit code: the run's (0 completed, 1 failed or diverged), 128 + the signal when a
    signal stopped it; a run that failed while stopping still exits 1."""
    return 128 + stopped_by if stopped_by and run_code not in (0, 1) else run_code


def leave_now(printer: _Printer, runner: Runner, name: str, code: int) -> None:
    """A second Ctrl-C or SIGTERM: exit at once, saying what is left to resume from.

    `os._exit`: the training thread may be inside torch (or writing a checkpoint, atomically: the last
    complete one stays); a normal interpreter exit under a running thread aborts in C++.
    """
    checkpoint = runner.run_dir / CHECKPOINT_FILE if runner.run_dir is not None else None
    if checkpoint is not None and checkpoint.exists():
        printer.say(f"second {name}: leaving now (the last checkpoint is kept: resume continues from it)")
    else:
        printer.say(f"second {name}: leaving now (no checkpoint was written yet: this run cannot be resumed)")
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


@contextlib.contextmanager
def _stop_signals():
    """While a run is followed, Ctrl-C, SIGTERM and SIGHUP put their number in the queue this yields."""
    pending: queue.SimpleQueue[int] = queue.SimpleQueue()
    if threading.current_thread() is not threading.main_thread():
        yield pending
        return
    previous = {sig: signal.signal(sig, lambda signum, _frame: pending.put(signum))
                for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield pending
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class _Printer:
    """Reads a run's events and prints at most one progress line per interval."""

    def __init__(self, runner: Runner, out: TextIO, every: float):
        self.runner, self.out, self.every = runner, out, every
        self.state = _State()
        self.last_print = time.monotonic()
        self.last_line = ""
        self.code: int | None = None  # the exit code, once the run's end has been read

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
                self.code = EXIT_CODES.get(event.summary.status, 1)
                self.say(summary_text(event.summary, self.runner.run_dir))
                self.runner.wait()  # let the training thread finish before the interpreter shuts down
                return self.code
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
        window = fmt.window(p.rate_window_s)
        parts.append(f"{p.samples_per_s:,.0f} samples/s (last {window})")
        if p.scaler_scale is not None:
            parts.append(f"scale {p.scaler_scale:g} skipped {p.skipped_steps}")
        parts.append(f"ETA {fmt.seconds(p.eta_s)}")
        return "  ".join(parts)


def summary_text(summary, run_dir) -> str:
    """The closing lines of a headless run."""
    def figure(value, spec=".4g"):
        return "-" if value is None else format(value, spec)

    lines = [
        f"{summary.status}: {summary.name} at step {summary.step}/{summary.total_steps} in "
        f"{fmt.seconds(summary.wall_s)}",
        f"  {train_loss_label(summary.loss_window)} {figure(summary.final_loss)}  "
        f"val loss (last evaluation) {figure(summary.final_val_loss)}  "
        f"{summary.metric_name or 'metric'} {figure(summary.metric, '.3f')}  {summary.samples_per_s:,.0f} samples/s "
        "over the run",
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


def _silence(stream: TextIO) -> None:
    """Point a stream's descriptor at /dev/null, so that the interpreter's flush at exit cannot fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass

