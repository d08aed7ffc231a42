"""Following a run that another process trains: its events file, its heartbeat, its stop request.

This is how the app shows a detached run it started, and how `tui-trainer attach` shows any live
run, whoever started it: the follower reads RUN_DIR/events.jsonl as it grows (a few lines a second),
asks for a stop by writing RUN_DIR/stop.request, and ends with the run's `RunFinished`, or, when
the owner's heartbeat goes without one, with the state the run's files record.
"""

from __future__ import annotations

import subprocess
import threading
import signal
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from tui_trainer.config import RunConfig
from tui_trainer.runs.liveness import RunLock, RunBusy, live_owner, read_heartbeat
from tui_trainer.runs.metrics import last_step
from tui_trainer.runs.protocol import WORKER_LOG, EventFileReader, planned_steps, read_rank_states, request_stop
from tui_trainer.runs.runner import Runner
from tui_trainer.runs.store import RunStore, load_run_config, read_summary, write_summary
from tui_trainer.training.events import RankState, RunFinished, RunSummary, event_from_json

FINAL_STATES = ("completed", "stopped", "failed", "diverged")
POLL_SECONDS = 0.1
OWNER_CHECK_SECONDS = 1.0
CATCH_UP_CHUNK = 8 << 20  # bytes of events.jsonl read at a time when attaching
_PROGRESS_LINE = b'{"type": "TrainProgress"'
_EVAL_LINE = b'{"type": "EvalResult"'


class RunFollower(Runner):
    """Follows a live run through its files; `stop()` asks it to stop. Trains nothing, writes nothing else.

    With `catch_up`, the events already in the file are folded in without their losses (read the
    curves from metrics.jsonl for those): the latest progress, the run's start, its log lines.
    """

    detached = True  # the run goes on when this process ends

    def __init__(self, run_dir: str | Path, store: RunStore | None = None, *, config: RunConfig | None = None,
                 catch_up: bool = True):
        run_dir = Path(run_dir)
        super().__init__(config or load_run_config(run_dir), store or RunStore(run_dir.parent),
                         run_dir=run_dir, resume=False)
        self._init_following(catch_up)

    def _init_following(self, catch_up: bool) -> None:
        self.catch_up = catch_up
        self._ranks: dict[int, tuple[str, str]] = {}
        self.process: subprocess.Popen | None = None  # our child, when this process launched it

    def start(self) -> Path:
        self._thread = threading.Thread(target=self._main, name=f"follow-{self.run_id}", daemon=True)
        self._thread.start()
        return self.run_dir

    def stop(self) -> None:
        """Ask the run's owner to stop after its current step (every ddp rank at the same step)."""
        self._stop.set()
        request_stop(self.run_dir)

    def wait(self, timeout: float | None = None) -> RunSummary | None:
        """Block until the run has ended (and its process, when it is our child, has exited)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        super().wait(timeout)
        if self.summary is not None and self.process is not None:
            try:
                self.process.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        return self.summary

    def _main(self) -> None:
        try:
            self._follow()
        finally:
            self._reap()

    def _reap(self) -> None:
        """Collect our child's exit once its run has ended, so that no `<defunct>` process piles up under the app.

        In a thread of its own: the run is over (and resumable) as soon as its end is read, while its
        process may take a moment more to exit (the interpreter and torch shutting down).
        """
        process = self.process
        if process is not None and process.poll() is None:
            threading.Thread(target=process.wait, name=f"reap-{self.run_id}", daemon=True).start()

    def _follow(self) -> None:
        reader = EventFileReader(self.run_dir)
        if self.catch_up and self._catch_up(reader):
            return
        checked = time.monotonic()
        while True:
            self._poll_ranks()
            if self._read(reader):
                return
            if self.process is not None:
                self.process.poll()  # reap our child as soon as it ends, so it is not taken for alive
            if time.monotonic() - checked >= OWNER_CHECK_SECONDS:
                checked = time.monotonic()
                if live_owner(self.run_dir) is None:
                    if self._read(reader):  # its last words, written just before it left
                        return
                    self._finish(self._without_owner())
                    return
            time.sleep(POLL_SECONDS)

    def _read(self, reader: EventFileReader) -> bool:
        """Pass on the new events; True once the run's end has been read."""
        for line in reader.read_lines():
            event = event_from_json(line.decode("utf-8"))
            if isinstance(event, RunFinished):
                self._finish(event.summary)
                return True
            self._publish(event)
        return False

    def _catch_up(self, reader: EventFileReader) -> bool:
        """Fold in what the run said before we came: its start, log lines, its latest progress only."""
        latest = None
        while lines := reader.read_lines(CATCH_UP_CHUNK):  # a long run's file is large: a piece at a time
            for line in lines:
                if line.startswith(_PROGRESS_LINE):
                    latest = line
                    continue
                if line.startswith(_EVAL_LINE):
                    continue  # the curves read from metrics.jsonl hold them
                event = event_from_json(line.decode("utf-8"))
                if isinstance(event, RunFinished):
                    self._finish(event.summary)
                    return True
                self._publish(event)
        if latest is not None:
            progress = event_from_json(latest.decode("utf-8"))
            self._publish(replace(progress, steps=(), losses=()))
        return False

    def _poll_ranks(self) -> None:
        """A ddp run's ranks, as their state files say (each change once)."""
        for rank, state, detail, _ in read_rank_states(self.run_dir):
            if self._ranks.get(rank) != (state, detail):
                self._ranks[rank] = (state, detail)
                self._publish(RankState(rank, state, detail))

    def _finish(self, summary: RunSummary) -> None:
        self._poll_ranks()  # the ranks' last states come before the run's end
        self.summary = summary
        self.events.put(RunFinished(summary))

    def _without_owner(self) -> RunSummary:
        """The run's end when its owner left without saying it: its summary, else `interrupted` (or `failed`)."""
        data = read_summary(self.run_dir)
        if data.status in FINAL_STATES:
            return data
        beat = read_heartbeat(self.run_dir)
        step = last_step(self.run_dir) or (beat.step if beat else 0) or data.step
        total = (beat.total_steps if beat else 0) or planned_steps(self.run_dir) or data.total_steps
        code = self.process.poll() if self.process is not None else None
        if code:  # our own child failed before recording anything: say so, in its record
            return self._record_failure(data, step, total, code)
        return RunSummary(self.run_id, self.config.name, "interrupted", step=step, total_steps=total,
                          error="the run's process ended without recording how (see "
                                f"{self.run_dir / WORKER_LOG})", started_at=data.started_at)

    def _record_failure(self, data: RunSummary, step: int, total: int, code: int) -> RunSummary:
        log = self.run_dir / WORKER_LOG
        lines = [line for line in log.read_text(encoding="utf-8", errors="replace").splitlines()
                 if line.strip()] if log.exists() else []
        if code < 0:  # a signal ended it (an OOM killer, a kill -9): say which, as for a ddp rank
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = "unknown"
            how = f"the run's process was killed by signal {-code} ({name})"
        else:
            how = f"the run's process exited with code {code}"
        summary = RunSummary(self.run_id, self.config.name, "failed", step=step, total_steps=total,
                             error=f"{how}: {(lines or ['no output'])[-1][:200]}",
                             started_at=data.started_at,
                             finished_at=datetime.now().isoformat(timespec="seconds"))
        try:
            lock = RunLock.acquire(self.run_dir)
        except RunBusy:  # someone else took the run meanwhile: theirs to record
            return summary
        try:
            write_summary(self.run_dir, summary)
        finally:
            lock.release()
        return summary
