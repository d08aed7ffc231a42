"""`tui-trainer runs`: the run store as a table, JSON or CSV, each run with its settings."""

from __future__ import annotations

import argparse
import csv
import json
import sys

from tui_trainer.runs.settings import SETTING_KEYS

# `runs --csv` columns, in order; names as in `runs --json`.
CSV_COLUMNS = ("run_id", "name", "status", "step", "total_steps", "final_loss", "final_val_loss", *SETTING_KEYS,
               "samples_per_s", "wall_s", "started_at", "error")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `runs`."""
    shape = parser.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true", help="print JSON")
    shape.add_argument("--csv", action="store_true", help="print CSV (one header line, one line a run)")


def listed_runs(runs_dir) -> list[dict]:
    """Every run as `runs --json` prints it: its record and its settings (None where unknown)."""
    from tui_trainer.runs import RunStore
    from tui_trainer.runs.settings import read_settings

    out = []
    for record in RunStore(runs_dir).list_runs():
        settings = read_settings(record.path)
        row = record.as_json()
        row.update(settings.as_json() if settings else dict.fromkeys(SETTING_KEYS))
        out.append(row)
    return out


def run(args) -> int:
    """List the runs (newest first)."""
    rows = listed_runs(args.runs_dir)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if args.csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return 0
    if not rows:
        print(f"no runs in {args.runs_dir}")
        return 0
    print(table(rows))
    return 0


def table(rows: list[dict]) -> str:
    """The runs as aligned text columns."""
    from tui_trainer.cli.headless import format_seconds

    def num(value, spec=".4g"):
        return "-" if value is None else format(value, spec)

    width = max(3, *(len(r["run_id"]) for r in rows))
    lines = [f"{'run':<{width}} {'status':<11} {'steps':>13} {'train loss':>10} {'val loss':>10} "
             f"{'strategy':<14} {'devices':<7} {'precision':<10} {'accum':>5} {'eff.batch':>9} {'lr':>8} "
             f"{'samples/s':>10} {'time':>7}"]
    for r in rows:
        lines.append(
            f"{r['run_id']:<{width}} {r['status']:<11} {steps_text(r):>13} "
            f"{num(r['final_loss']):>10} {num(r['final_val_loss']):>10} {r['strategy'] or '-':<14} "
            f"{r['devices'] or '-':<7} {r['precision'] or '-':<10} {num(r['accumulate'], 'd'):>5} "
            f"{num(r['effective_batch'], 'd'):>9} {num(r['lr'], '.3g'):>8} "
            f"{r['samples_per_s'] or 0:>10,.0f} {format_seconds(r['wall_s']):>7}")
    return "\n".join(lines)


def steps_text(row: dict) -> str:
    """`step/total` of one listed run."""
    return f"{row['step']}/{row['total_steps']}"
