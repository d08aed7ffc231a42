"""Runs trained by other processes: torchrun's workers (ddp), and detached runs (the app, `--detach`).

We never write our own distributed layer: for ddp, torchrun (`torch.distributed.run`) starts one
worker per device and handles the rendezvous (standalone on one node, c10d across nodes); a thread
here turns the workers' files into the same events a thread-run emits, reports each rank's state,
turns a dead worker into a `failed` run naming that rank, and leaves no process behind.

A detached run is trained by a process of its own (`python -m tui_trainer.runs.worker RUN_DIR`) in a
new session, with no terminal: closing the app, the terminal or the SSH connection does not end it.
The launching process hands it the run's lock, then only follows its files.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from tui_trainer.config import RunConfig
from tui_trainer.runs.follow import RunFollower, summary_from_dict
from tui_trainer.runs.liveness import RunLock, write_heartbeat
from tui_trainer.runs.protocol import (
    EVENTS_FILE,
    WORKER_LOG,
    EventFileReader,
    event_line,
    prepare,
    rank_pids,
    read_rank_states,
    request_stop,
)
from tui_trainer.runs.runner import Runner
from tui_trainer.runs.store import RunStore, load_run_config, read_summary, write_summary
from tui_trainer.training.events import LogLine, RankState, RunFinished, RunSummary, event_from_json

FINAL_STATES = ("completed", "stopped", "failed", "diverged")
POLL_SECONDS = 0.1
WORKER_MODULE = "tui_trainer.runs.worker"


def create_runner(config: RunConfig, store: RunStore, *, run_dir: str | Path | None = None,
                  node_rank: int = 0, isolated: bool = False, resume: bool | None = None, lock=None) -> Runner:
    """The right runner for a config.

    `isolated` (the app, `--detach`): a detached process of its own trains the run, in its own session,
    and this process only follows it, so the run outlives the app and the terminal. Otherwise this
    process trains it: torchrun's workers for ddp and hybrid, else a background thread.
    """
    if isolated:
        return DetachedRunner(config, store, run_dir=run_dir, resume=resume, node_rank=node_rank)
    if config.strategy.name in ("ddp", "hybrid"):
        return DistributedRunner(config, store, run_dir=run_dir, node_rank=node_rank, resume=resume, lock=lock)
    return Runner(config, store, run_dir=run_dir, resume=resume, lock=lock)


def resume_runner(run_dir: str | Path, store: RunStore | None = None, *, isolated: bool = False) -> Runner:
    """A runner that continues a stopped (or interrupted) run in its own directory to its planned end."""
    run_dir = Path(run_dir)
    return create_runner(load_run_config(run_dir), store or RunStore(run_dir.parent), run_dir=run_dir,
                         isolated=isolated, resume=True)


class DetachedRunner(RunFollower):
    """A run trained by a detached process of its own, followed here through its files.

    `launch()` starts it and returns (`--detach`); `start()` launches and follows (the app).
    """

    def __init__(self, config: RunConfig, store: RunStore, *, run_dir: str | Path | None = None,
                 resume: bool | None = None, node_rank: int = 0):
        Runner.__init__(self, config, store, run_dir=run_dir, resume=resume)
        self._init_following(catch_up=False)  # a fresh events file: follow it from its start
        self.node_rank = node_rank

    def command(self, lock_fd: int) -> list[str]:
        """The detached process's command line."""
        return [sys.executable, "-m", WORKER_MODULE, str(self.run_dir), "--lock-fd", str(lock_fd),
                *(["--resume"] if self.resume else []),
                *([f"--node-rank={self.node_rank}"] if self.node_rank else [])]

    def launch(self) -> Path:
        """Start the run's own process and return its directory (RunBusy if another process trains it)."""
        if self.run_dir is None:
            self.run_dir = self.store.create(self.config)
        lock = RunLock.acquire(self.run_dir)
        try:
            prepare(self.run_dir)
            if not self.resume:  # listed at once, under its preset's name (which its process reads back)
                write_summary(self.run_dir, RunSummary(self.run_id, self.config.name, "running",
                                                       started_at=datetime.now().isoformat(timespec="seconds")))
            with open(self.run_dir / WORKER_LOG, "ab") as log:
                self.process = subprocess.Popen(
                    self.command(lock.fd), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    env=worker_env(), start_new_session=True, pass_fds=(lock.fd,))
            try:  # live from now on, for `stop`, `attach` and `runs`, until its own first beat replaces this one
                write_heartbeat(self.run_dir, self.process.pid)
            except Exception:  # it has already ended: the follower will say how
                pass
        finally:
            lock.close()  # the process holds it now
        return self.run_dir

    def start(self) -> Path:
        self.launch()
        return super().start()


class DistributedRunner(Runner):
    """A Runner whose training happens in torchrun's worker processes (ddp, hybrid), followed from a thread.

    This process owns the run (lock, heartbeat, stop request); rank 0 writes the run's files and events.
    """

    distributed = True

    def __init__(self, config: RunConfig, store: RunStore, *, run_dir: str | Path | None = None,
                 node_rank: int = 0, resume: bool | None = None, lock=None):
        super().__init__(config, store, run_dir=run_dir, resume=resume, lock=lock)
        self.node_rank = node_rank
        self.process: subprocess.Popen | None = None

    def stop(self) -> None:
        """Ask the workers to stop; the ranks agree on the step in their next all-reduce and checkpoint there."""
        super().stop()
        if self.run_dir is not None and self.run_dir.exists():
            request_stop(self.run_dir)

    def _main(self) -> None:
        run_dir = self.run_dir
        previous = read_summary(run_dir) if self.resume else {}
        started_at = previous.get("started_at") or datetime.now().isoformat(timespec="seconds")
        write_summary(run_dir, RunSummary(self.run_id, self.config.name, "running", started_at=started_at),
                      pid=os.getpid())
        command = self.command()
        for note in self.launch_notes(command):
            self._note(LogLine("info", note))
        env = worker_env()
        if self.config.train.threads:
            env["OMP_NUM_THREADS"] = str(self.config.train.threads)
        else:
            env.setdefault("OMP_NUM_THREADS", "1")  # torchrun's default with several workers, said explicitly
        clock = time.perf_counter()
        with open(run_dir / WORKER_LOG, "ab") as log:
            # Its own session: a Ctrl-C in the terminal reaches us (we stop the ranks cleanly), not the workers;
            # it dies with us, as a run whose owner is gone can be neither followed nor finished.
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                            stdin=subprocess.DEVNULL, start_new_session=True,
                                            preexec_fn=die_with_parent)
            code = self._follow(run_dir)
        self._end(self._finish(run_dir, code, time.perf_counter() - clock, started_at))

    def _note(self, event) -> None:
        """An event of this process's own (not the workers'): to the readers and to events.jsonl."""
        try:
            with open(self.run_dir / EVENTS_FILE, "a", encoding="utf-8") as events:
                events.write(event_line(event))
        except OSError:
            pass
        self._publish(event)

    def _follow(self, run_dir: Path) -> int:
        """Turn rank 0's event file and the rank states into events until torchrun exits."""
        reader = EventFileReader(run_dir)
        rank_states: dict[int, tuple[str, str]] = {}
        stop_sent = False
        while True:
            code = self.process.poll()
            self._read_events(reader)
            for rank, state, detail, _ in read_rank_states(run_dir):
                if rank_states.get(rank) != (state, detail):
                    rank_states[rank] = (state, detail)
                    self._publish(RankState(rank, state, detail))
            if self._stop.is_set() and not stop_sent:
                request_stop(run_dir)
                stop_sent = True
            if code is not None:
                self._read_events(reader)
                return code
            time.sleep(POLL_SECONDS)

    def _read_events(self, reader: EventFileReader) -> None:
        for line in reader.read_lines():
            event = event_from_json(line.decode("utf-8"))
            if not isinstance(event, RunFinished):
                self._publish(event)

    def _finish(self, run_dir: Path, code: int, wall: float, started_at: str) -> RunSummary:
        """Stop every leftover process, then decide how the run ended."""
        kill_leftovers(self.process, run_dir)
        written = read_summary(run_dir)
        states = {rank: (state, detail, when) for rank, state, detail, when in read_rank_states(run_dir)}
        if code == 0 and written.get("status") in FINAL_STATES:
            return summary_from_dict(written)
        base = written if written.get("status") not in (None, "running") else {}
        diverged = base.get("status") == "diverged"
        error = base["error"] if diverged else failure_reason(run_dir, states, code)
        summary = summary_from_dict({
            **base, "run_id": self.run_id, "name": self.config.name, "status": "diverged" if diverged else "failed",
            "error": error, "started_at": started_at, "finished_at": datetime.now().isoformat(timespec="seconds"),
            "wall_s": base.get("wall_s") or wall})
        write_summary(run_dir, summary)
        self._note(LogLine("error", summary.error))
        return summary

    def command(self) -> list[str]:
        """The launcher line for this node (also printed for users who start other nodes by hand)."""
        s = self.config.strategy
        per_node = (len(s.devices) if isinstance(s.devices, tuple) else s.devices) // (
            s.stages if s.name == "hybrid" else 1)
        command = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={per_node}",
                   "--max-restarts=0", "--monitor-interval=0.2"]
        if s.nodes == 1:
            command.append("--standalone")
        else:
            command += [f"--nnodes={s.nodes}", "--rdzv-backend=c10d", f"--rdzv-endpoint={s.rdzv_endpoint}",
                        f"--rdzv-id=tui-trainer-{self.config.name}", f"--node-rank={self.node_rank}",
                        f"--rdzv-conf=is_host={'true' if self.node_rank == 0 else 'false'}"]
        command += ["-m", WORKER_MODULE, str(self.run_dir)]
        if self.resume:
            command.append("--resume")
        return command

    def launch_notes(self, command: list[str]) -> list[str]:
        notes = ["launch: " + " ".join(["python", *command[1:]])]
        s = self.config.strategy
        if s.nodes > 1 and self.node_rank == 0:
            notes += [f"on node {rank} run: tui-trainer run {self.config.source} --headless --node-rank {rank} "
                      f"--rdzv-endpoint {s.rdzv_endpoint}" for rank in range(1, s.nodes)]
        return notes


def failure_reason(run_dir: Path, states: dict[int, tuple[str, str, float]], code: int) -> str:
    """Name the rank that brought the run down, and why: a rank that died first, else the first to fail."""
    log = (run_dir / WORKER_LOG).read_text(encoding="utf-8", errors="replace") if (
        run_dir / WORKER_LOG).exists() else ""
    exits = {int(r): int(c) for r, c in re.findall(r"rank\s*:\s*(\d+).*?\n\s*exitcode\s*:\s*(-?\d+)", log)}
    died = sorted(r for r, (state, _, _) in states.items() if state not in FINAL_STATES)
    # SIGTERM is how torchrun (and we) stop the survivors once one rank has gone, so a rank killed by
    # another signal, then a rank that recorded its own failure, names the culprit before a SIGTERM does.
    signalled = sorted((exits[r] == -signal.SIGTERM, r) for r in died if exits.get(r, 0) < 0)
    killed = [r for terminated, r in signalled if not terminated]
    if killed:
        return f"rank {killed[0]} was killed by signal {-exits[killed[0]]} ({_signal_name(-exits[killed[0]])})"
    failed = sorted((when, r, detail) for r, (state, detail, when) in states.items() if state == "failed" and detail)
    if failed:
        _, rank, detail = failed[0]
        return f"rank {rank} failed: {detail[:300]}"
    if signalled:
        return f"rank {signalled[0][1]} was killed by signal {signal.SIGTERM.value} (SIGTERM)"
    if died:
        return f"rank {died[0]} exited without reporting (exit code {code}; see {WORKER_LOG})"
    tail = [line for line in log.splitlines() if line.strip()][-1:] or ["no output"]
    return f"the worker exited with code {code}: {tail[0][:200]}"


def kill_leftovers(process: subprocess.Popen | None, run_dir: Path) -> None:
    """End torchrun's session and any worker still alive (SIGTERM, then SIGKILL after 5 s)."""
    import psutil

    def existing(pids):
        out = []
        for pid in pids:
            try:
                out.append(psutil.Process(pid))
            except psutil.Error:
                continue
        return out

    workers = existing(rank_pids(run_dir))
    if process is not None and process.poll() is None:
        workers += existing([process.pid])
        try:
            workers += psutil.Process(process.pid).children(recursive=True)
        except psutil.Error:
            pass
        _signal_group(process.pid, signal.SIGTERM)
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            _signal_group(process.pid, signal.SIGKILL)
            process.wait()
    own = os.getpid()
    workers = [w for w in workers if w.pid != own]
    _, alive = psutil.wait_procs(workers, timeout=5)
    for worker in alive:
        try:
            worker.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=5)


def worker_env() -> dict[str, str]:
    """The environment of a run's processes: they import the same tui_trainer as this one."""
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])
    if package_root not in _site_dirs():  # a checkout, not an installed copy already on their path
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    return env


def die_with_parent() -> None:
    """Ask Linux to end this process when its parent dies (torchrun under its run's owner, ranks under torchrun)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: torchrun's own shutdown still stops the workers
        pass


def _site_dirs() -> set[str]:
    import site

    dirs = [*site.getsitepackages(), site.getusersitepackages()]
    return {str(Path(d).resolve()) for d in dirs}


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return "unknown"
