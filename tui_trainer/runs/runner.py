"""The Runner: one run in a background thread, its events on a queue, its results on disk.

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
from datetime import datetime
from pathlib import Path

from tui_trainer.config import RunConfig
from tui_trainer.runs.metrics import METRICS_NAME, MetricsLog, read_curves, truncate_after
from tui_trainer.runs.store import RunStore, load_run_config, read_summary, write_summary
from tui_trainer.training.events import Event, LogLine, RunFinished, RunSummary
from tui_trainer.training.figures import MAX_WINDOW


class Runner:
    """Runs one job in a background thread. `start()`, then `drain()` events; `stop()` to end early."""

    def __init__(self, config: RunConfig, store: RunStore, *, run_dir: str | Path | None = None):
        self.config = config
        self.store = store
        self.resume = run_dir is not None
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.events: queue.Queue[Event] = queue.Queue()
        self.summary: RunSummary | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def resume_run(run_dir: str | Path, store: RunStore | None = None, *, isolated: bool = False) -> "Runner":
        """A runner that continues a stopped run in its own directory to its planned end."""
        run_dir = Path(run_dir)
        return create_runner(load_run_config(run_dir), store or RunStore(run_dir.parent), run_dir=run_dir,
                             isolated=isolated)

    @property
    def run_id(self) -> str:
        return self.run_dir.name if self.run_dir else ""

    def start(self) -> Path:
        """Make the run directory and start training in the background; return the directory."""
        if self.run_dir is None:
            self.run_dir = self.store.create(self.config)
        self._thread = threading.Thread(target=self._main, name=f"run-{self.run_id}", daemon=True)
        self._thread.start()
        return self.run_dir

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

    # ------------------------------------------------------------ the thread
    def _main(self) -> None:
        self.summary = execute(self.config, self.run_dir, self.events.put, self._stop, resume=self.resume)
        self.events.put(RunFinished(self.summary))


def execute(config: RunConfig, run_dir: Path, emit, stop: threading.Event, *, resume: bool = False,
            strategy=None) -> RunSummary:
    """Train one run (or one rank of it) and record how it ended; never raises for a failed run.

    The main process of a node writes metrics.jsonl, checkpoint.pt and summary.json; the other
    ranks of a ddp job only train. `emit` receives every event except the final `RunFinished`.
    """
    from tui_trainer.training.loop import Diverged, Trainer

    run_id = run_dir.name
    previous = read_summary(run_dir) if resume else {}
    started_at = datetime.now().isoformat(timespec="seconds")
    wall_before = float(previous.get("wall_s", 0.0))
    writes = strategy is None or strategy.is_main
    if writes:
        write_summary(run_dir, RunSummary(run_id, config.name, "running", started_at=started_at), pid=os.getpid())
    metrics_path = run_dir / METRICS_NAME
    metrics: MetricsLog | None = None

    def emit_and_record(event: Event) -> None:
        if metrics is not None:
            metrics.record(event)
        emit(event)

    trainer = Trainer(config, run_dir, emit_and_record, stop, run_id=run_id, resume=resume, strategy=strategy)
    status, error = "failed", ""
    clock = time.perf_counter()
    try:
        trainer.build()
        if writes:
            if resume:
                truncate_after(metrics_path, trainer.step)
                # The train loss after a resume averages over the same window as without one.
                trainer.previous_losses = read_curves(metrics_path).losses[-MAX_WINDOW:]
            metrics = MetricsLog(metrics_path)
        status = trainer.train()
        trainer.save_checkpoint()
    except Diverged as exc:
        status, error = "diverged", str(exc)
    except Exception as exc:  # every failure becomes a recorded run state, never a crash of the app
        status, error = "failed", _describe(exc)
        if writes:
            (run_dir / "error.log").write_text(traceback.format_exc(), encoding="utf-8")
    finally:
        if metrics is not None:
            metrics.close()
        try:
            if trainer.strategy is not None:
                trainer.strategy.teardown()
        except Exception:  # teardown must not hide how the run ended
            pass
    wall = time.perf_counter() - clock
    trained = max(trainer.step - trainer.start_step, 0)
    compile_s = trainer.compile_seconds
    train_s = trainer.train_seconds - (compile_s or 0.0)
    timed = trained - (1 if compile_s is not None else 0)  # the compiling step is not training speed
    rate = timed * trainer.samples_per_step / train_s if train_s > 0 and timed > 0 else 0.0
    summary = RunSummary(
        run_id=run_id, name=config.name, status=status, step=trainer.step,
        total_steps=trainer.total_steps, epoch=trainer.epoch, final_loss=trainer.last_loss,
        final_val_loss=trainer.last_val_loss, best_val_loss=trainer.best_val_loss,
        metric_name=trainer.metric_name, metric=trainer.last_metric, samples_per_s=rate,
        wall_s=wall_before + wall, peak_memory_mib=_peak(trainer), skipped_steps=trainer.skipped_steps,
        error=error, started_at=previous.get("started_at", started_at),
        finished_at=datetime.now().isoformat(timespec="seconds"), device=trainer.device_name,
        effective_batch=trainer.effective_batch, notes=trainer.notes, loss_window=min(trainer.loss_window, trainer.step // config.logging.every),
        compile_s=compile_s, train_s=train_s if trainer.train_seconds else None)
    if writes:
        write_summary(run_dir, summary)
    if error:
        emit(LogLine("error", error))
    return summary


def _describe(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if type(exc).__name__ == "OutOfMemoryError":
        return f"out of GPU memory ({text[:120]}): lower data.batch_size and raise train.accumulate"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _peak(trainer) -> float | None:
    try:
        return trainer.strategy.peak_memory_mib() if trainer.strategy is not None else None
    except Exception:
        return None


def create_runner(config: RunConfig, store: RunStore, *, run_dir: str | Path | None = None,
                  node_rank: int = 0, isolated: bool = False) -> Runner:
    """The right runner for a config: torchrun workers for ddp and hybrid; else a background thread,
    or (`isolated`, as the app asks) one worker process, so that no UI work shares the training's GIL."""
    if config.strategy.name in ("ddp", "hybrid"):
        from tui_trainer.runs.launcher import DistributedRunner

        return DistributedRunner(config, store, run_dir=run_dir, node_rank=node_rank)
    if isolated:
        from tui_trainer.runs.launcher import ProcessRunner

        return ProcessRunner(config, store, run_dir=run_dir)
    return Runner(config, store, run_dir=run_dir)
