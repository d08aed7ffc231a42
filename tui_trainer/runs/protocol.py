"""A run directory's file protocol: how the processes of a run and its followers talk through files.

    RUN_DIR/events.jsonl   the run's events, one JSON line each (a few a second), ending with RunFinished
    RUN_DIR/stop.request   present: stop after the current step, checkpoint, record `stopped`
    RUN_DIR/ranks/rank-K.json  each ddp rank's state (rank, state, detail, pid, time)
    RUN_DIR/heartbeat      the owning process (host, pid, its start time) and its last beat
    RUN_DIR/lock           held (flock) by the one process that writes the run; names it
    RUN_DIR/worker.log     the output of a detached run's process (and torchrun's)

Any process may follow a run through these files and ask it to stop; only the lock holder writes
its record (metrics, checkpoint, summary). No torch and no Textual here.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

EVENTS_FILE = "events.jsonl"
STOP_FILE = "stop.request"
RANKS_DIR = "ranks"
HEARTBEAT_FILE = "heartbeat"
LOCK_FILE = "lock"
WORKER_LOG = "worker.log"
CHECKPOINT_FILE = "checkpoint.pt"  # training.loop.CHECKPOINT_NAME (that module imports torch)


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """Replace a file's content at once: a reader sees the old content or the new, never half of it.

    The temporary name carries the pid, so two processes writing the same file never share one.
    """
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        if isinstance(data, str):
            tmp.write_text(data, encoding="utf-8")
        else:
            tmp.write_bytes(data)
        tmp.replace(path)
    except OSError:  # a full disk: no half-written temporary file is left behind
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise


def prepare(run_dir: Path) -> None:
    """Clear what a previous attempt left (a served stop request, its events, rank states) before a start."""
    for stale in (run_dir / STOP_FILE, run_dir / EVENTS_FILE):
        stale.unlink(missing_ok=True)
    for state_file in (run_dir / RANKS_DIR).glob("rank-*.json"):
        state_file.unlink(missing_ok=True)


# ------------------------------------------------------------------ stop request
def request_stop(run_dir: Path) -> None:
    """Ask the run to stop after its current step (any process may, on any host sharing the directory)."""
    (Path(run_dir) / STOP_FILE).touch()


def stop_requested(run_dir: Path) -> bool:
    return (Path(run_dir) / STOP_FILE).exists()


def watch_for_stop(run_dir: Path, stop: threading.Event, every: float = 0.2) -> None:
    """Set `stop` once the stop request appears (checked 5 times a second, off the training thread)."""
    while not stop.is_set():
        if stop_requested(run_dir):
            stop.set()
            return
        time.sleep(every)


# ------------------------------------------------------------------ rank states
def write_rank_state(run_dir: Path, rank: int, state: str, detail: str = "") -> None:
    """Record one rank's state for the process that follows the ranks."""
    folder = run_dir / RANKS_DIR
    folder.mkdir(exist_ok=True)
    write_atomic(folder / f"rank-{rank}.json", json.dumps(
        {"rank": rank, "state": state, "detail": detail, "pid": os.getpid(), "time": time.time()}))


def read_rank_states(run_dir: Path) -> list[tuple[int, str, str, float]]:
    """Each rank's last recorded (rank, state, detail, time)."""
    out = []
    for path in sorted((run_dir / RANKS_DIR).glob("rank-*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            out.append((int(data["rank"]), data["state"], data.get("detail", ""), float(data.get("time", 0))))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return out


def rank_pids(run_dir: Path) -> list[int]:
    """The pids the ranks recorded."""
    pids = []
    for path in (run_dir / RANKS_DIR).glob("rank-*.json"):
        try:
            pids.append(int(json.loads(path.read_text(encoding="utf-8"))["pid"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return pids


# ------------------------------------------------------------------ events
def event_line(event) -> str:
    """One event as a line of events.jsonl (what `training.events.event_from_json` reads).

    Built from the event's slots rather than `dataclasses.asdict`, which deep-copies every loss of a
    report: this runs a few times a second on the training thread.
    """
    from dataclasses import asdict

    data = {"type": type(event).__name__}
    for name in type(event).__slots__:
        data[name] = getattr(event, name)
    if "summary" in data:
        data["summary"] = asdict(data["summary"])
    return json.dumps(data) + "\n"


class EventFileReader:
    """Reads the whole lines appended to a run's events.jsonl since the last read."""

    def __init__(self, run_dir: Path, offset: int = 0):
        self.path = Path(run_dir) / EVENTS_FILE
        self.offset = offset

    def read_lines(self, limit: int = -1) -> list[bytes]:
        """The whole lines added since the last read (at most about `limit` bytes of them, when given)."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read(limit)
        except OSError:
            return []
        end = chunk.rfind(b"\n") + 1  # only whole lines; a half-written one waits for the next read
        self.offset += end
        return chunk[:end].splitlines()


def planned_steps(run_dir: Path) -> int:
    """The total steps the run's latest start announced (its RunStarted event, near the file's start)."""
    return announced(run_dir, "total_steps")


def announced(run_dir: Path, key: str) -> int:
    """A whole-number field of the RunStarted event of the run's latest start (0 when unknown)."""
    try:
        with open(Path(run_dir) / EVENTS_FILE, "rb") as f:
            head = f.read(65536)
    except OSError:
        return 0
    for line in head.splitlines():
        if line.startswith(b'{"type": "RunStarted"'):
            try:
                value = json.loads(line)[key]
            except (ValueError, KeyError, TypeError):
                return 0
            return value if isinstance(value, int) and not isinstance(value, bool) else 0
    return 0
