"""Runs trained by other processes: torchrun's workers (ddp), and detached runs (the app, `--detach`).

We never write our own distributed layer: for ddp, torchrun (`torch.distributed.run`) starts one
worker per device and handles the rendezvous (c10d on loopback for one node, on the endpoint across nodes); a thread
here turns the workers' files into the same events a thread-run emits, reports each rank's state,
turns a dead worker into a `failed` run naming that rank, and leaves no process behind.

A detached run is trained by a process of its own (`python -m tui_trainer.runs.worker RUN_DIR`) in a
new session, with no terminal: closing the app, the terminal or the SSH connection does not end it.
The launching process hands it the run's lock, then only follows its files.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from tui_trainer.config import RunConfig, ensure_runnable
from tui_trainer.config.choices import is_multi_process
from tui_trainer.runs.follow import RunFollower
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
from tui_trainer.runs.runner import Runner, _seconds
from tui_trainer.runs.store import RunStore, load_run_config, read_summary, write_summary
from tui_trainer.training.events import LogLine, RankState, RunFinished, RunStarted, RunSummary, event_from_json

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
    if is_multi_process(config.strategy.name):
        return DistributedRunner(config, store, run_dir=run_dir, node_rank=node_rank, resume=resume, lock=lock)
    return Runner(config, store, run_dir=run_dir, resume=resume, lock=lock)


def resume_runner(run_dir: str | Path, store: RunStore | None = None, *, isolated: bool = False) -> Runner:
    """A runner that continues a stopped (or interrupted) run in its own directory to its planned end.

    Raises ConfigError when this machine cannot run it (the same check as a new run: a run made on
    GPU 1 resumed where there is one GPU is refused with the reason, not failed deep in CUDA).
    """
    from tui_trainer.hardware import detect_machine

    run_dir = Path(run_dir)
    config = load_run_config(run_dir)
    ensure_runnable(config, detect_machine())
    return create_runner(config, store or RunStore(run_dir.parent), run_dir=run_dir, isolated=isolated, resume=True)


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
                    env=worker_env(os.environ), start_new_session=True, pass_fds=(lock.fd,))
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
        self._previous: RunSummary | None = None
        self._trained = False  # a RunStarted came: from then on a failure is the run's, not the resume's

    def stop(self) -> None:
        """Ask the workers to stop; the ranks agree on the step in their next all-reduce and checkpoint there."""
        super().stop()
        if self.run_dir is not None and self.run_dir.exists():
            request_stop(self.run_dir)

    def _main(self) -> None:
        run_dir = self.run_dir
        previous = self._previous = read_summary(run_dir) if self.resume else None
        started_at = (previous.started_at if previous is not None else "") or datetime.now().isoformat(
            timespec="seconds")
        write_summary(run_dir, replace(previous, status="running") if previous is not None and previous.status else
                      RunSummary(self.run_id, self.config.name, "running", started_at=started_at), pid=os.getpid())
        command = self.command()
        for note in self.launch_notes(command):
            self._note(LogLine("info", note))
        env = worker_env(os.environ)
        env["OMP_NUM_THREADS"] = str(rank_threads(self.config, env.get("OMP_NUM_THREADS")))
        if self.distributed and self.config.strategy.nodes == 1:
            env.setdefault("GLOO_SOCKET_IFNAME", "lo")  # gloo's pair sockets on loopback too: one node talks to itself
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
            self._trained = self._trained or isinstance(event, RunStarted)
            if not isinstance(event, RunFinished):
                self._publish(event)

    def _finish(self, run_dir: Path, code: int, wall: float, started_at: str) -> RunSummary:
        """Stop every leftover process, then decide how the run ended."""
        kill_leftovers(self.process, run_dir)
        written = read_summary(run_dir)
        if self.resume and not self._trained and self._previous is not None and self._previous.status:
            return self._resume_failed(run_dir, written, code)
        states = {rank: (state, detail, when) for rank, state, detail, when in read_rank_states(run_dir)}
        if code == 0 and written.status in FINAL_STATES:
            return written
        base = written if written.status not in ("", "running") else RunSummary(self.run_id, "", "")
        diverged = base.status == "diverged"
        # One worker process records its own failure (out of memory, a full disk): that is the reason.
        recorded = not self.distributed and base.status == "failed" and base.error
        error = base.error if diverged or recorded else failure_reason(run_dir, states, code)
        summary = replace(base, run_id=self.run_id, name=self.config.name,
                          status="diverged" if diverged else "failed", error=error, started_at=started_at,
                          finished_at=datetime.now().isoformat(timespec="seconds"),
                          wall_s=_seconds(base.wall_s) or wall)
        write_summary(run_dir, summary)
        self._note(LogLine("error", summary.error))
        return summary

    def _resume_failed(self, run_dir: Path, written: RunSummary, code: int) -> RunSummary:
        """A resume whose workers never started training: the run's record stays as it was, plus a note."""
        from tui_trainer.runs.runner import _resume_failed

        states = {rank: (state, detail, when) for rank, state, detail, when in read_rank_states(run_dir)}
        _, marker, error = written.error.rpartition("resume failed: ")
        if not marker or not error:  # the workers failed before they could say why
            error = failure_reason(run_dir, states, code)
        previous = self._previous
        kept = previous.error.split("resume failed: ")[0].rstrip("; ")
        note = f"resume failed: {error}"
        write_summary(run_dir, replace(previous, error=f"{kept}; {note}" if kept else note))
        self._note(LogLine("error", note))
        return _resume_failed(previous, self.run_id, self.config, error)

    def _cleanup(self) -> None:
        kill_leftovers(self.process, self.run_dir)

    def command(self) -> list[str]:
        """The launcher line for this node (also printed for users who start other nodes by hand)."""
        s = self.config.strategy
        per_node = self.config.world_size // s.nodes  # processes on this node
        # torchrun through our wrapper, whose stores listen on their host's address only (not on every
        # interface): loopback for one node, the endpoint's interface for several.
        command = [sys.executable, "-m", "tui_trainer.runs.torchrun", f"--nproc-per-node={per_node}",
                   "--max-restarts=0", "--monitor-interval=0.2"]
        if s.nodes == 1:
            command += ["--nnodes=1", "--rdzv-backend=c10d", "--rdzv-endpoint=127.0.0.1:0", "--local-addr=127.0.0.1",
                        "--rdzv-conf=is_host=true"]
        else:
            host = s.rdzv_endpoint.rpartition(":")[0]
            command += [f"--nnodes={s.nodes}", "--rdzv-backend=c10d", f"--rdzv-endpoint={s.rdzv_endpoint}",
                        f"--rdzv-id=tui-trainer-{self.config.name}", f"--node-rank={self.node_rank}",
                        f"--rdzv-conf=is_host={'true' if self.node_rank == 0 else 'false'},"
                        f"join_timeout={s.rdzv_timeout},read_timeout={s.rdzv_timeout}",
                        *([f"--local-addr={host}"] if self.node_rank == 0 else [])]
        command += ["-m", WORKER_MODULE, str(self.run_dir), "--rank"]
        if self.resume:
            command.append("--resume")
        return command

    def launch_notes(self, command: list[str]) -> list[str]:
        notes = ["launch: " + shlex.join(["python", *command[1:]])]
        s = self.config.strategy
        if s.nodes > 1 and self.node_rank == 0:
            notes += [f"on node {rank} run: {other_node_command(self.config, rank)}" for rank in range(1, s.nodes)]
        return notes


def rank_threads(config: RunConfig, inherited: str | None = None, cores: int | None = None) -> int:
    """The torch threads each rank of a distributed run starts with (its OMP_NUM_THREADS).

    `train.threads` when set; else an OMP_NUM_THREADS the user exported; else this node's cores shared
    among its processes (torchrun's own default is 1 thread with several workers, which left a
    one-process CPU ddp run on one of the machine's cores: 0.47x the one-process loop on 2 cores).
    Each rank's auto choice (train.threads = 0) then starts from this count: 1 for a tiny step.
    """
    if config.train.threads:
        return config.train.threads
    if inherited and inherited.isdigit() and int(inherited) > 0:
        return int(inherited)
    per_node = max(1, config.world_size // max(1, config.strategy.nodes))
    return max(1, (cores or usable_cores()) // per_node)


def usable_cores() -> int:
    """Physical cores this process may run on (torch's own default thread count), at least 1."""
    try:
        available = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        available = os.cpu_count() or 1
    try:
        import psutil

        physical = psutil.cpu_count(logical=False) or available
    except ImportError:  # pragma: no cover
        physical = available
    return max(1, min(physical, available))


def other_node_command(config: RunConfig, rank: int) -> str:
    """The shell line that starts node `rank` of a multi-node run: the same preset, the same overrides.

    Shell-quoted, so that pasting it runs tui-trainer and nothing else, whatever the preset is called.
    """
    from tui_trainer.config.overrides import overrides_from_preset

    sets = [arg for text in overrides_from_preset(config, skip=("strategy.rdzv_endpoint",)) for arg in ("--set", text)]
    preset = f"./{config.source}" if config.source.startswith("-") else config.source  # never read as an option
    return shlex.join(["tui-trainer", "run", preset, *sets, "--headless", "--node-rank", str(rank),
                       "--rdzv-endpoint", config.strategy.rdzv_endpoint])


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
    rendezvous = _rendezvous_error(log) if not states else ""
    if rendezvous:
        return f"rendezvous failed: {rendezvous} (strategy.rdzv_endpoint, strategy.rdzv_timeout)"
    if code < 0:
        return f"the worker was killed by signal {-code} ({_signal_name(-code)})"
    if died:
        return f"rank {died[0]} exited without reporting (exit code {code}; see {WORKER_LOG})"
    tail = [line for line in log.splitlines() if line.strip()][-1:] or ["no output"]
    return f"the worker exited with code {code}: {tail[0][:200]}"


def _rendezvous_error(log: str) -> str:
    """torchrun's reason for a failed rendezvous, from its output: the root cause before the wrappers."""
    found = re.findall(r"^torch\.distributed\.[\w.]*?(DistNetworkError|DistStoreError|Rendezvous\w*Error): (.+)$",
                       log, re.MULTILINE)
    if not found:
        return ""
    causes = [text for kind, text in found if not text.startswith("The connection to the C10d store has failed")]
    return (causes or [found[-1][1]])[0].strip()[:300]


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


def die_with_parent() -> None:
    """Ask Linux to end this process when its parent dies (torchrun under its run's owner, ranks under torchrun)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: torchrun's own shutdown still stops the workers
        pass


def worker_env(environ) -> dict[str, str]:
    """The environment of a worker process: it imports exactly what this process would import.

    `python -m` (how torchrun starts workers) would put the worker's current directory first on its
    path, so a module there (`evilmod.py`) could run under ddp but not in a one-process run. Instead
    workers run with PYTHONSAFEPATH=1 (nothing added implicitly) and PYTHONPATH holding this
    process's own path entries for user code: a `package.module:callable` in a preset resolves the
    same way in every process of every strategy. The same tui_trainer is imported, also from a checkout.
    """
    env = dict(environ)
    package_root = str(Path(__file__).resolve().parents[2])
    standard = _standard_dirs()
    entries = []
    for entry in [package_root, *sys.path]:
        path = os.path.abspath(entry or os.curdir)  # "" is the current directory (python -c, the REPL)
        if path not in entries and not any(path == d or path.startswith(d + os.sep) for d in standard):
            entries.append(path)
    env["PYTHONPATH"] = os.pathsep.join(entries)
    env["PYTHONSAFEPATH"] = "1"
    return env


def _standard_dirs() -> list[str]:
    """The standard library and site-packages: a child interpreter has them on its path by itself."""
    import site
    import sysconfig

    dirs = [*site.getsitepackages(), site.getusersitepackages(), sysconfig.get_paths()["stdlib"],
            sysconfig.get_paths()["platstdlib"]]
    return sorted({str(Path(d).resolve()) for d in dirs if d})


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
