"""Whether a run is alive and who owns it: its heartbeat and its one-writer lock.

The process that trains a run (its owner) holds RUN_DIR/lock and beats RUN_DIR/heartbeat about once
a second from a thread, never from the training loop. A heartbeat on this host is judged by its
process (alive, and the same process: its start time matches); one from another host sharing the
directory by its age alone. A run whose summary says `running` but whose owner is gone is
`interrupted`: its process died without recording an end.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from tui_trainer.runs.protocol import HEARTBEAT_FILE, LOCK_FILE, write_atomic

BEAT_SECONDS = 1.0
STALE_SECONDS = 10.0  # a heartbeat from another host older than this means its owner is gone
HOST = socket.gethostname()


class RunBusy(Exception):
    """Another live process writes this run."""


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """The owner of a run and its last beat; `step`/`total_steps` are where the run stood then."""

    host: str
    pid: int
    started: float  # the process's start time (psutil's create_time): tells a reused pid apart
    beat: float
    step: int = 0
    total_steps: int = 0

    @property
    def age(self) -> float:
        return max(0.0, time.time() - self.beat)

    def describe(self) -> str:
        where = "" if self.host == HOST else f" on {self.host}"
        return f"pid {self.pid}{where}"


def process_start_time(pid: int) -> float:
    import psutil

    return psutil.Process(pid).create_time()


def write_heartbeat(run_dir: Path, pid: int | None = None, step: int = 0, total_steps: int = 0) -> None:
    """Beat once for `pid` (this process by default)."""
    pid = os.getpid() if pid is None else pid
    beat = Heartbeat(HOST, pid, process_start_time(pid), time.time(), step, total_steps)
    write_atomic(Path(run_dir) / HEARTBEAT_FILE, json.dumps(asdict(beat)))


def read_heartbeat(run_dir: Path) -> Heartbeat | None:
    try:
        data = json.loads((Path(run_dir) / HEARTBEAT_FILE).read_text(encoding="utf-8"))
        return Heartbeat(str(data["host"]), int(data["pid"]), float(data["started"]), float(data["beat"]),
                         int(data.get("step", 0)), int(data.get("total_steps", 0)))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def process_alive(pid: int, started: float | None = None) -> bool:
    """Whether `pid` runs (not a zombie), and is the process that started at `started` when given."""
    import psutil

    try:
        process = psutil.Process(pid)
        if started is not None and abs(process.create_time() - started) > 0.5:
            return False  # the pid was reused by another process
        return process.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False


def live_owner(run_dir: Path) -> Heartbeat | None:
    """The heartbeat of the run's live owner, or None when no process is training it."""
    beat = read_heartbeat(run_dir)
    if beat is None:
        return None
    if beat.host != HOST:
        return beat if beat.age < STALE_SECONDS else None
    return beat if process_alive(beat.pid, beat.started) else None


class HeartbeatThread:
    """Beats the run's heartbeat every second from a daemon thread; `tick()` runs at each beat too."""

    def __init__(self, run_dir: Path, progress=lambda: (0, 0), tick=lambda: None):
        self.run_dir = Path(run_dir)
        self.progress = progress  # () -> (step, total_steps)
        self.tick = tick
        self._done = threading.Event()
        self._soon = False
        self._thread = threading.Thread(target=self._main, name="heartbeat", daemon=True)

    def start(self) -> "HeartbeatThread":
        self._beat()
        self._thread.start()
        return self

    def _beat(self) -> None:
        try:
            write_heartbeat(self.run_dir, None, *self.progress())
        except OSError:  # a full disk must not end the run; its followers will call it stale
            pass

    def beat_soon(self) -> None:
        """Beat at the next tick (a fifth of a second), not at the next second: the run's plan is known."""
        self._soon = True

    def _main(self) -> None:
        next_beat = time.monotonic() + BEAT_SECONDS
        while not self._done.wait(0.2):
            self.tick()
            if self._soon or time.monotonic() >= next_beat:
                self._soon = False
                self._beat()
                next_beat = time.monotonic() + BEAT_SECONDS

    def stop(self) -> None:
        """Stop beating and remove the heartbeat: the run is over (its summary says how)."""
        self._done.set()
        if self._thread.is_alive():
            self._thread.join(2)
        try:
            (self.run_dir / HEARTBEAT_FILE).unlink(missing_ok=True)
        except OSError:  # a directory made read-only: the beat stops, and its age says the run is over
            pass


# ------------------------------------------------------------------ one writer
class RunLock:
    """RUN_DIR/lock, held with flock by the one process that writes the run; it names its holder.

    The kernel releases a flock when its process dies, so the lock of a dead process is simply taken.
    A held lock can be handed to a child process (`fd`, passed with `pass_fds`), which then `adopt`s it.
    """

    def __init__(self, run_dir: Path, fd: int):
        self.path = Path(run_dir) / LOCK_FILE
        self.fd = fd

    @classmethod
    def acquire(cls, run_dir: Path) -> "RunLock":
        """Take the run's lock, or raise RunBusy naming the live process that holds it."""
        path = Path(run_dir) / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise RunBusy(f"{run_dir} is being trained by {holder_text(run_dir)}; follow it with "
                          f"tui-trainer attach {Path(run_dir).name} or stop it with "
                          f"tui-trainer stop {Path(run_dir).name}") from None
        lock = cls(run_dir, fd)
        lock._write_holder()
        return lock

    @classmethod
    def adopt(cls, run_dir: Path, fd: int) -> "RunLock":
        """The lock a parent took and passed to this process: it now names this process."""
        lock = cls(run_dir, fd)
        lock._write_holder()
        return lock

    def _write_holder(self) -> None:
        text = json.dumps({"host": HOST, "pid": os.getpid(), "time": time.time()}).encode()
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, text, 0)

    def close(self) -> None:
        """Let go of this process's handle (a child that adopted the lock keeps holding it)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def release(self) -> None:
        if self.fd >= 0:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            self.close()


def holder_text(run_dir: Path) -> str:
    """Who holds (or last held) a run's lock, in words."""
    try:
        data = json.loads((Path(run_dir) / LOCK_FILE).read_text(encoding="utf-8"))
        host = "" if data.get("host") == HOST else f" on {data.get('host')}"
        return f"pid {int(data['pid'])}{host}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


# ------------------------------------------------------------------ status
def run_status(run_dir: Path, recorded: str | None) -> str:
    """A run's status as listed: `running` only while its owner lives; a dead `running` is `interrupted`."""
    if live_owner(run_dir) is not None:
        return "running"
    if recorded in (None, "running"):
        return "interrupted"
    return recorded
