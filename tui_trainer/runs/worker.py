"""A run's own process: a detached run (the app, `--detach`), or one rank of a ddp run (under torchrun).

    python -m tui_trainer.runs.worker RUN_DIR [--resume] [--lock-fd FD]      a detached run's owner
    python -m torch.distributed.run ... -m tui_trainer.runs.worker RUN_DIR [--resume]      one rank

A detached run's process owns the run as a headless run does (lock, heartbeat, stop request, events
file, summary), with no terminal: it trains in a thread here, or follows torchrun's ranks for ddp.
SIGTERM, SIGHUP and SIGINT stop it cleanly, as a stop request does.

A rank trains through the same `execute`. The first process of each node writes the run's files and
its events (RUN_DIR/events.jsonl, which the owning process follows); every rank keeps
RUN_DIR/ranks/rank-K.json up to date with its state. Each rank watches for the stop request, and the
ranks agree on the step to stop at in their next all-reduce.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from tui_trainer.runs.protocol import EVENTS_FILE, event_line, watch_for_stop, write_rank_state


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tui_trainer.runs.worker")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--lock-fd", type=int, default=None, help="the run's lock, taken by the launching process")
    parser.add_argument("--node-rank", type=int, default=0)
    parser.add_argument("--rank", action="store_true", help="one rank of a ddp run (torchrun passes it)")
    args = parser.parse_args(argv)
    # Said by the launcher, not read from the environment: a shell inside a PyTorchJob, a Slurm step or
    # torchrun has RANK set, and a one-process run started there must not become a ddp rank.
    if args.rank:
        return run_rank(args.run_dir, args.resume)
    return run_owner(args.run_dir, args.resume, args.lock_fd, args.node_rank)


def run_owner(run_dir: Path, resume: bool, lock_fd: int | None, node_rank: int) -> int:
    """Own and train a detached run until it ends; 0 when completed or stopped."""
    from tui_trainer.runs.liveness import RunLock
    from tui_trainer.runs.launcher import create_runner
    from tui_trainer.runs.store import RunStore, load_run_config

    lock = RunLock.adopt(run_dir, lock_fd) if lock_fd is not None else None
    runner = create_runner(load_run_config(run_dir), RunStore(run_dir.parent), run_dir=run_dir, resume=resume,
                           node_rank=node_rank, lock=lock)
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, lambda *_: runner.stop())
    runner.start()
    while runner.is_running():
        runner.drain()  # nobody reads this process's queue: the events are in the run's events file
        runner.wait(0.5)
    summary = runner.wait()
    return 0 if summary is not None and summary.status in ("completed", "stopped") else 1


def run_rank(run_dir: Path, resume: bool) -> int:
    """One rank of a ddp run, started by torchrun."""
    from tui_trainer.runs.launcher import die_with_parent

    die_with_parent()  # torchrun (its parent) gone means the run is over
    rank = int(os.environ.get("RANK", "0"))
    write_rank_state(run_dir, rank, "starting")

    from tui_trainer.config.validate import uses_gpu
    from tui_trainer.hardware.machine import detect_machine
    from tui_trainer.runs.runner import execute
    from tui_trainer.runs.store import load_run_config
    from tui_trainer.training.strategies import DistributedStrategy, HybridStrategy

    try:
        config = load_run_config(run_dir)
        import torch

        if config.train.threads:
            torch.set_num_threads(config.train.threads)
        use_gpu = uses_gpu(config, detect_machine()) and torch.cuda.is_available()
        kind = HybridStrategy if config.strategy.name == "hybrid" else DistributedStrategy
        strategy = kind.from_environment(config, use_gpu)
    except Exception as exc:
        write_rank_state(run_dir, rank, "failed", f"{type(exc).__name__}: {exc}")
        return 1

    stop = threading.Event()
    threading.Thread(target=watch_for_stop, args=(run_dir, stop), daemon=True).start()
    events = open(run_dir / EVENTS_FILE, "a", encoding="utf-8") if strategy.is_main else None

    def emit(event) -> None:
        if events is not None:
            events.write(event_line(event))
            events.flush()

    write_rank_state(run_dir, rank, "training", strategy.describe())
    summary = execute(config, run_dir, emit, stop, resume=resume, strategy=strategy)
    write_rank_state(run_dir, rank, summary.status, summary.error)
    if events is not None:
        events.close()
    stop.set()
    return 0 if summary.status in ("completed", "stopped") else 1


if __name__ == "__main__":
    sys.exit(main())
