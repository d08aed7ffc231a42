"""`tui-trainer export RUN... --tensorboard DIR`: runs' curves for TensorBoard, from their metrics."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `export`."""
    parser.add_argument("run_ids", nargs="+", metavar="RUN", help="run ids as `tui-trainer runs` lists them, or "
                                                                  "run directories")
    parser.add_argument("--tensorboard", required=True, type=Path, metavar="DIR",
                        help="write each run's curves to DIR/RUN_ID (open with tensorboard --logdir DIR)")


def run(args) -> int:
    """Export each run; an unknown run is an error (exit 2) and nothing is written."""
    run_dirs = []
    for text in args.run_ids:
        path = Path(text)
        run_dir = path if (path / "config.toml").exists() else Path(args.runs_dir) / text
        if not (run_dir / "config.toml").exists():
            print(f"error: {text}: no such run in {args.runs_dir}", file=sys.stderr)
            return 2
        run_dirs.append(run_dir)
    try:
        from tui_trainer.runs.export import export_tensorboard

        import tensorboard  # noqa: F401  (torch's SummaryWriter needs it)
    except ImportError:
        print("error: tensorboard is not installed: pip install tensorboard", file=sys.stderr)
        return 2
    for run_dir in run_dirs:
        out = args.tensorboard / run_dir.name
        train, evals = export_tensorboard(run_dir, out)
        print(f"{run_dir.name}: {train:,} train losses, {evals:,} evaluations -> {out}")
    print(f"open with: tensorboard --logdir {args.tensorboard}")
    return 0
