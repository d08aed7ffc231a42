"""The Runner: one run in a background thread, its events on a queue (and in events.jsonl), its results on disk.

The training thread never waits on its readers: events go on an unbounded queue that the UI or
the headless printer drains at its own pace (they arrive a few times a second, not per step).
Every way a run can end (completed, stopped, diverged, failed) becomes a summary.json and a
`RunFinished` event, never an exception in the caller.
"""

from __future__ import annotations

import os
import queue
import threading
import time
import traceback
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from tui_trainer.config import RunConfig
from tui_trainer.runs.liveness import HeartbeatThread, RunLock
from tui_trainer.runs.metrics import METRICS_NAME, MetricsLog, read_curves, truncate_after
from tui_trainer.runs.protocol import EVENTS_FILE, STOP_FILE, event_line, prepare, stop_requested
from tui_trainer.runs.store import RunStore, read_summary, write_summary
from tui_trainer.training.events import Event, LogLine, RunFinished, RunStarted, RunSummary, TrainProgress
from tui_trainer.training.figures import MAX_WINDOW


class Runner:
    """Runs one job in a background thread of this process. `start()`, then `drain()` events; `stop()` to end early.

    While it trains, this process owns the run: it holds the run's lock (a second writer is refused),
    beats its heartbeat, honours its stop request (`tui-trainer stop`) and appends its events to
    events.jsonl, so that any other process can follow it (`tui-trainer attach`).
    """

    detached = False  # the training happens in this process: it ends with it

    def __init__(self, config: RunConfig, store: RunStore, *, run_dir: str | Path | None = None,
                 resume: bool | None = None, lock=None):
        self.config = config
        self.store = store
        self.resume = run_dir is not None if resume is None else resume
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.events: queue.Queue[Event] = queue.Queue()
        self.summary: RunSummary | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = lock  # a RunLock handed over by the process that launched this one
        self._heartbeat = None
        self._step = self._total = 0  # where the run stands, for the heartbeat

    @property
    def run_id(self) -> str:
        return self.run_dir.name if self.run_dir else ""

    def start(self) -> Path:
        """Make the run directory, take the run (RunBusy if another process trains it), start training."""
        if self.run_dir is None:
            self.run_dir = self.store.create(self.config)
        self._own()
        self._thread = threading.Thread(target=self._main_guarded, name=f"run-{self.run_id}", daemon=True)
        self._thread.start()
        return self.run_dir

    def _own(self) -> None:
        """Take the run's lock, clear what a previous attempt left, and start beating."""
        if self._lock is None:  # else the launching process took it and prepared the directory
            self._lock = RunLock.acquire(self.run_dir)
            prepare(self.run_dir)
        self._heartbeat = HeartbeatThread(self.run_dir, lambda: (self._step, self._total), self._check_stop).start()

    def _check_stop(self) -> None:
        if not self._stop.is_set() and stop_requested(self.run_dir):
            self._stop.set()

    def stop(self) -> None:
        """Ask the run to end after its current step, with a checkpoint written."""
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def is_running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> RunSummary | None:
        """Block until the run has ended (or the timeout passes); return its summary."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.summary

    def drain(self, limit: int = 10_000) -> list[Event]:
        """Every event waiting on the queue, without blocking."""
        out = []
        try:
            while len(out) < limit:
                out.append(self.events.get_nowait())
        except queue.Empty:
            pass
        return out

    def _publish(self, event: Event) -> None:
        """Hand an event to this process's readers (and note where the run stands for the heartbeat)."""
        if isinstance(event, TrainProgress):
            self._step = event.step
        elif isinstance(event, RunStarted):
            self._step, self._total = event.start_step, event.total_steps
            if self._heartbeat is not None:
                self._heartbeat.beat_soon()
        self.events.put(event)

    # ------------------------------------------------------------ the thread
    def _main_guarded(self) -> None:
        """Run `_main`; whatever it raises, the run still ends with a recorded state and a `RunFinished`
        (a reader waiting for it, like the headless printer, would otherwise wait forever)."""
        try:
            self._main()
        except BaseException as exc:
            if self.summary is not None:
                return
            self._cleanup()
            error = f"the runner failed: {_describe(exc)}"
            previous = read_summary(self.run_dir) if self.run_dir is not None else None
            summary = (_resume_failed(previous, self.run_id, self.config, error) if self.resume else
                       RunSummary(self.run_id, self.config.name, "failed", error=error,
                                  finished_at=datetime.now().isoformat(timespec="seconds")))
            if not self.resume and self.run_dir is not None:
                _try(lambda: write_summary(self.run_dir, summary))
            self.events.put(LogLine("error", error))
            try:
                self._end(summary)  # followers, heartbeat and lock learn of the end too
            except Exception:
                self.summary = summary
                self.events.put(RunFinished(summary))

    def _cleanup(self) -> None:
        """Release what `_main` started when it failed (a worker process subclass stops its workers)."""

    def _main(self) -> None:
        with open(self.run_dir / EVENTS_FILE, "a", encoding="utf-8") as events:
            def emit(event: Event) -> None:  # a few events a second, never one per step
                events.write(event_line(event))
                events.flush()
                self._publish(event)

            summary = execute(self.config, self.run_dir, emit, self._stop, resume=self.resume)
        self._end(summary)

    def _end(self, summary: RunSummary) -> None:
        """The run is over and recorded: tell followers, stop beating, let go of the run."""
        try:
            with open(self.run_dir / EVENTS_FILE, "a", encoding="utf-8") as events:
                events.write(event_line(RunFinished(summary)))
        except OSError:
            pass
        # A directory made read-only during the run keeps these files: the recorded end still stands.
        if self._heartbeat is not None:
            _try(self._heartbeat.stop)
        _try(lambda: (self.run_dir / STOP_FILE).unlink(missing_ok=True))  # served: the directory keeps its record
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        self.summary = summary
        self.events.put(RunFinished(summary))


def execute(config: RunConfig, run_dir: Path, emit, stop: threading.Event, *, resume: bool = False,
            strategy=None) -> RunSummary:
    """Train one run (or one rank of it) and record how it ended; never raises for a failed run.

    The main process of a node writes metrics.jsonl, checkpoint.pt and summary.json; the other
    ranks of a ddp job only train. `emit` receives every event except the final `RunFinished`.
    Whatever ends the training (an exception, `SystemExit` or `KeyboardInterrupt` from user code,
    a full disk) becomes a recorded state; the record is written where the disk allows. A resume
    that fails before its first step leaves the run's record as it was, with the error as a note.
    """
    run_id = run_dir.name
    previous = read_summary(run_dir) if resume else None
    started_at = datetime.now().isoformat(timespec="seconds")
    wall_before = _seconds(previous.wall_s) if previous is not None else 0.0
    writes = strategy is None or strategy.is_main
    metrics_path = run_dir / METRICS_NAME
    metrics: MetricsLog | None = None
    trainer = None
    training = False  # past building and loading: from here a failure is the run's, not the resume's
    status, error = "failed", ""
    clock = time.perf_counter()

    def emit_and_record(event: Event) -> None:
        if metrics is not None:
            metrics.record(event)
        emit(event)

    try:
        from tui_trainer.training.loop import Trainer

        if writes:
            running = (replace(previous, status="running") if resume and previous is not None and previous.status
                       else RunSummary(run_id, config.name, "running", started_at=started_at))
            write_summary(run_dir, running, pid=os.getpid())
        trainer = Trainer(config, run_dir, emit_and_record, stop, run_id=run_id, resume=resume, strategy=strategy)
        trainer.build()
        if writes:
            time_offset = 0.0
            if resume:
                truncate_after(metrics_path, trainer.step)
                kept = read_curves(metrics_path)
                # The train loss after a resume averages over the same window as without one.
                trainer.previous_losses = kept.losses[-MAX_WINDOW:]
                # Wall time continues from the time recorded at the resumed step (an older run's metrics
                # have none: then from the previous attempts' wall_s).
                time_offset = max(kept.times) if kept.times else wall_before if trainer.step else 0.0
            metrics = MetricsLog(metrics_path, time_offset)
            trainer.before_checkpoint = metrics.sync
        training = True
        status = trainer.train()
        trainer.save_checkpoint()
    except BaseException as exc:  # every ending becomes a recorded run state, never a crash or a hang
        status, error = _ending(exc, config)
        if writes and status == "failed":
            _try(lambda: (run_dir / "error.log").write_text(traceback.format_exc(), encoding="utf-8"))
    finally:
        if metrics is not None:
            try:
                metrics.close()
            except OSError as exc:  # the last lines could not be written
                if not error:
                    status, error = "failed", _describe(exc)
        try:
            if trainer is not None and trainer.strategy is not None:
                trainer.strategy.teardown()
        except BaseException:  # teardown must not hide how the run ended
            pass
    if resume and not training:
        summary = _resume_failed(previous, run_id, config, error)
        if writes:
            note = f"resume failed: {error}"
            kept = previous.error.split("resume failed: ")[0].rstrip("; ") if previous is not None else ""
            _record(run_dir, replace(previous, error=f"{kept}; {note}" if kept else note)
                    if previous is not None and previous.status else summary, emit)
        _release_memory()
        _try(lambda: emit(LogLine("error", summary.error)))
        return summary
    wall = time.perf_counter() - clock
    seconds = trainer.seconds_training() if trainer is not None else 0.0
    trained = max(trainer.step - trainer.start_step, 0) if trainer is not None else 0
    compile_now = trainer.compile_seconds if trainer is not None else None
    timed = trained - (1 if compile_now is not None else 0)  # the compiling step is not training speed
    # The figures are the whole run's, over every attempt (a resume adds to them): seconds of training
    # (each attempt's first step to its final validation, its compiling step aside) and the samples
    # trained in them; a resume compiles again, so compile_s adds up too.
    train_now = max(seconds - (compile_now or 0.0), 0.0)
    samples_now = timed * trainer.samples_per_step if timed > 0 and train_now > 0 else 0.0
    train_before = _seconds(previous.train_s) if previous is not None else 0.0
    samples_before = _seconds(previous.samples_per_s) * train_before if previous is not None else 0.0
    compile_before = previous.compile_s if previous is not None and previous.compile_s is not None else None
    train_s = train_before + train_now
    rate = (samples_before + samples_now) / train_s if train_s > 0 else 0.0
    compile_s = (None if compile_now is None and compile_before is None
                 else _seconds(compile_before) + (compile_now or 0.0))
    t = trainer
    summary = RunSummary(
        run_id=run_id, name=config.name, status=status, step=t.step if t else 0,
        total_steps=t.total_steps if t else 0, epoch=t.epoch if t else 0, final_loss=t and t.last_loss,
        final_val_loss=t and t.last_val_loss, best_val_loss=t and t.best_val_loss,
        metric_name=t.metric_name if t else "", metric=t and t.last_metric, samples_per_s=rate,
        wall_s=wall_before + wall, peak_memory_mib=_peak(t), skipped_steps=t.skipped_steps if t else 0,
        error=error, started_at=(previous.started_at if previous is not None else "") or started_at,
        finished_at=datetime.now().isoformat(timespec="seconds"), device=t.device_name if t else "",
        effective_batch=t.effective_batch if t else config.effective_batch, notes=t.notes if t else (),
        loss_window=min(t.loss_window, t.step // config.logging.every) if t else 0,
        compile_s=compile_s, train_s=train_s if seconds or train_before else None)
    if writes:
        _record(run_dir, summary, emit)
    del trainer, t
    _release_memory()
    if error:
        _try(lambda: emit(LogLine("error", error)))
    return summary


def _record(run_dir: Path, summary, emit) -> None:
    """Write summary.json; when even that fails (a full disk, a read-only directory), say so in the log."""
    try:
        write_summary(run_dir, summary)
    except OSError as exc:
        _try(lambda: emit(LogLine("error", f"the run's end state could not be recorded: {_describe(exc)}")))


def _resume_failed(previous: RunSummary | None, run_id: str, config: RunConfig, error: str) -> RunSummary:
    """This attempt's result when a resume fails before its first step: the run stays where it was."""
    before = previous if previous is not None else RunSummary(run_id, config.name, "")
    return RunSummary(run_id, config.name, "failed", step=before.step, total_steps=before.total_steps,
                      epoch=before.epoch, wall_s=_seconds(before.wall_s), error=f"resume failed: {error}",
                      started_at=before.started_at, finished_at=datetime.now().isoformat(timespec="seconds"))


def _ending(exc: BaseException, config: RunConfig) -> tuple[str, str]:
    """How an exception ends a run: (status, one-line error)."""
    if type(exc).__name__ == "Diverged":
        return "diverged", str(exc)
    if isinstance(exc, (SystemExit, KeyboardInterrupt)):
        code = f" {exc.code}" if isinstance(exc, SystemExit) and exc.code not in (None, 0) else ""
        return "failed", f"{type(exc).__name__}{code} raised during training"
    if _is_out_of_memory(exc):
        return "failed", _out_of_memory(exc, config)
    return "failed", _describe(exc)


def _is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def _out_of_memory(exc: BaseException, config: RunConfig) -> str:
    """Out of memory, with the settings that decide the memory and the change that keeps the effective batch."""
    where = "GPU" if type(exc).__name__ == "OutOfMemoryError" else "host"
    detail = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
    batch, accumulate = config.data.batch_size, config.train.accumulate
    advice = (f"try data.batch_size = {batch // 2} and train.accumulate = {accumulate * 2} (same effective batch "
              f"{config.effective_batch})" if batch > 1 else "use a smaller model or a smaller precision")
    return (f"out of {where} memory at micro-batch {batch} ({config.train.precision}, accumulate {accumulate}): "
            f"{advice} [{detail}]")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename:
        reason = exc.strerror or str(exc)
        return f"{type(exc).__name__}: {reason}: {exc.filename}"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _seconds(value: object) -> float:
    """A duration read from a summary written by anyone: a finite non-negative number, else 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0.0
    return float(value) if 0 <= value < float("inf") else 0.0


def _try(action) -> None:
    """Do something that only reports (a log line, error.log): its own failure must not hide the run's."""
    try:
        action()
    except Exception:
        pass


def _release_memory() -> None:
    """Hand cached GPU memory back (after an out-of-memory error too), so the next run can start.

    Only where CUDA is in use: a full `gc.collect()` costs about 0.1 s with torch loaded (2 cores),
    which on the CPU frees nothing that reference counting has not already freed, and on a short run
    was most of the runner's measured overhead.
    """
    import gc
    import sys

    torch = sys.modules.get("torch")
    if torch is None:
        return
    try:
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            gc.collect()  # tensors held by reference cycles (an exception's frames) go before the cache is emptied
            torch.cuda.empty_cache()
    except Exception:
        pass


def _peak(trainer) -> float | None:
    try:
        return trainer.strategy.peak_memory_mib() if trainer is not None and trainer.strategy is not None else None
    except Exception:
        return None
