"""A run the app follows: its Runner and the RunState built from its events. No Textual here."""

from __future__ import annotations

from pathlib import Path

from tui_trainer.runs import Runner, RunStore, create_runner, resumable, resume_runner
from tui_trainer.session.run_state import RunState


class LiveRun:
    """One run the app follows: started, resumed or attached to; it keeps going when its dashboard is closed."""

    def __init__(self, runner: Runner, store: RunStore):
        self.runner = runner
        self.store = store
        config = runner.config
        self.config = config
        self.state = RunState(runner.run_id, config.name, config.train.precision)
        self.queue_label = ""  # "queue 2/3" when the app runs it as part of a queue

    @classmethod
    def new(cls, config, store: RunStore) -> LiveRun:
        """A fresh run of a config, trained in a detached process of its own (torchrun's workers under it
        for ddp): it outlives the app, and drawing the screen never competes with the loop for the GIL."""
        return cls(create_runner(config, store, isolated=True), store)

    @classmethod
    def attach(cls, run_dir: Path, store: RunStore) -> LiveRun:
        """A run another process trains, followed through its files (start() begins following)."""
        from tui_trainer.runs.follow import RunFollower

        return cls(RunFollower(run_dir, store), store)

    @property
    def run_id(self) -> str:
        return self.runner.run_id

    @property
    def run_dir(self) -> Path | None:
        return self.runner.run_dir

    def start(self) -> None:
        """Create the run directory (unless resuming) and start training in the background."""
        self.runner.start()
        self.state.run_id = self.runner.run_id
        self.state.note("info", f"run directory {self.runner.run_dir}")

    def pump(self) -> bool:
        """Move the runner's waiting events into the state; True when something changed. Never blocks."""
        return self.state.apply(self.runner.drain())

    @property
    def active(self) -> bool:
        """Training, or ended but with events not yet read."""
        return self.runner.is_running() or not self.runner.events.empty()

    def stop(self) -> bool:
        """Ask the run to stop after its current step (a checkpoint is written); False if not running."""
        if not self.runner.is_running() or self.runner.stop_requested:
            return False
        self.runner.stop()
        self.state.status = "stopping"
        self.state.note("info", "stop requested: finishing the current step and writing a checkpoint")
        return True

    def why_not_resumable(self) -> str | None:
        """None when `resume` may run now; else why not."""
        if self.active:
            return "the run is still going"
        if self.run_dir is None:
            return "the run has not started"
        return resumable(self.run_dir, self.state.status)

    def can_resume(self) -> tuple[bool, str]:
        """Whether `resume` may run now, and why not."""
        why = self.why_not_resumable()
        return why is None, why or ""

    def resume(self) -> None:
        """Continue from the checkpoint in the same run directory, into the same state."""
        why = self.why_not_resumable()
        if why:
            raise RuntimeError(why)
        self.runner = resume_runner(self.run_dir, self.store, isolated=True)
        self.state.begin_resume()
        self.runner.start()
