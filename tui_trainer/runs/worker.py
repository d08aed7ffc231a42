"""A run's worker process: one rank of a ddp run (started by torchrun), or a whole run the app started.

    python -m torch.distributed.run ... -m tui_trainer.training.worker RUN_DIR [--resume]
    python -m tui_trainer.training.worker RUN_DIR [--resume]

It trains through the same `execute` as a single-process run. The first process of each node writes
the run's files and its events (as JSON lines, to RUN_DIR/events.jsonl, which the launching process
follows); every rank keeps RUN_DIR/ranks/rank-K.json up to date with its state. A stop request is a
file, RUN_DIR/stop.request: each rank watches for it, and the ranks agree on the step to stop at in
their next all-reduce.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

STOP_FILE = "stop.request"
EVENTS_FILE = "events.jsonl"
RANKS_DIR = "ranks"


def write_rank_state(run_dir: Path, rank: int, state: str, detail: str = "") -> None:
    """Record this rank's state for the launcher (atomically: a reader never sees half a file)."""
    folder = run_dir / RANKS_DIR
    folder.mkdir(exist_ok=True)
    path = folder / f"rank-{rank}.json"
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"rank": rank, "state": state, "detail": detail, "pid": os.getpid(),
                               "time": time.time()}), encoding="utf-8")
    tmp.replace(path)


def die_with_parent() -> None:
    """Ask Linux to end this process when torchrun (its parent) dies, so no worker outlives its run."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: torchrun's own shutdown still stops the workers
        pass


def watch_for_stop(run_dir: Path, stop: threading.Event) -> None:
    """Set `stop` once the stop file appears (checked 5 times a second, off the training thread)."""
    path = run_dir / STOP_FILE
    while not stop.is_set():
        if path.exists():
            stop.set()
            return
        time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    die_with_parent()
    parser = argparse.ArgumentParser(prog="tui_trainer.training.worker")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    run_dir: Path = args.run_dir
    rank = int(os.environ.get("RANK", "0"))
    write_rank_state(run_dir, rank, "starting")

    from tui_trainer.config.validate import uses_gpu
    from tui_trainer.hardware.machine import detect_machine
    from tui_trainer.runs.runner import execute
    from tui_trainer.runs.store import load_run_config
    from tui_trainer.training.events import event_to_json
    from tui_trainer.training.strategies import DistributedStrategy, HybridStrategy

    try:
        config = load_run_config(run_dir)
        if config.train.threads:
            import torch

            torch.set_num_threads(config.train.threads)
        import torch

        strategy = None  # one process: execute() builds the configured strategy
        if "RANK" in os.environ:
            use_gpu = uses_gpu(config, detect_machine()) and torch.cuda.is_available()
            kind = HybridStrategy if config.strategy.name == "hybrid" else DistributedStrategy
            strategy = kind.from_environment(config, use_gpu)
    except Exception as exc:
        write_rank_state(run_dir, rank, "failed", f"{type(exc).__name__}: {exc}")
        return 1

    stop = threading.Event()
    threading.Thread(target=watch_for_stop, args=(run_dir, stop), daemon=True).start()
    events = open(run_dir / EVENTS_FILE, "a", encoding="utf-8") if strategy is None or strategy.is_main else None

    def emit(event) -> None:
        if events is not None:
            events.write(event_to_json(event) + "\n")
            events.flush()

    write_rank_state(run_dir, rank, "training", strategy.describe() if strategy else "")
    summary = execute(config, run_dir, emit, stop, resume=args.resume, strategy=strategy)
    write_rank_state(run_dir, rank, summary.status, summary.error)
    if events is not None:
        events.close()
    stop.set()
    return 0 if summary.status in ("completed", "stopped") else 1


if __name__ == "__main__":
    sys.exit(main())
