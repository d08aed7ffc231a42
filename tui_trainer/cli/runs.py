"""`tui-trainer runs`: the run store as a table, JSON or CSV, each run with its settings."""

from __future__ import annotations

import argparse
import csv
import sys

# `runs --csv` columns, in order; names as in `runs --json` (the settings' names: runs.settings.SETTING_KEYS).
# Nothing from tui_trainer.runs is imported at module level: `tui-trainer --help` builds this parser.
CSV_COLUMNS = ("run_id", "name", "status", "step", "total_steps", "final_loss", "final_val_loss", "strategy",
               "devices", "precision", "accumulate", "effective_batch", "lr", "samples_per_s", "wall_s",
               "started_at", "error")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `runs`, and its `rm` subcommand."""
    shape = parser.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true", help="print JSON")
    shape.add_argument("--csv", action="store_true", help="print CSV (one header line, one line a run)")
    sub = parser.add_subparsers(dest="runs_command", metavar="rm")
    rm = sub.add_parser("rm", help="delete runs (after confirmation; never a live one)")
    rm.add_argument("run_ids", nargs="*", metavar="RUN", help="run ids as `tui-trainer runs` lists them")
    rm.add_argument("--older-than", type=float, default=None, metavar="DAYS",
                    help="only runs started more than DAYS days ago")
    rm.add_argument("--status", default=None, help="only runs with this status (completed, stopped, failed, "
                                                   "diverged, interrupted)")
    rm.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    rm.add_argument("--runs-dir", default=argparse.SUPPRESS, help="where runs are kept (default ./runs)")


def listed_runs(runs_dir, *, exact: bool = True) -> list[dict]:
    """Every run as `runs --json` prints it: its record and its settings (None where unknown).

    `exact=False` (the table and CSV) reads the record's fields directly instead of through its
    `as_json()` (dataclasses.asdict copies every value: a fifth of a second over 1,000 runs).
    """
    from dataclasses import fields

    from tui_trainer.runs import RunStore
    from tui_trainer.runs.settings import SETTING_KEYS, read_settings

    out = []
    for record in RunStore(runs_dir).list_runs():
        settings = read_settings(record.path)
        row = record.as_json() if exact else {f.name: getattr(record, f.name) for f in fields(record)}
        row.update(settings.as_json() if settings else dict.fromkeys(SETTING_KEYS))
        out.append(row)
    return out


def run(args) -> int:
    """List the runs (newest first), or delete some (`runs rm`)."""
    if getattr(args, "runs_command", None) == "rm":
        return remove(args)
    rows = listed_runs(args.runs_dir, exact=args.json)
    if args.json:
        from tui_trainer.runs.strict_json import strict_json

        print(strict_json(rows))
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


def _live(row: dict) -> bool:
    from tui_trainer.runs.store import LIVE_STATES

    return row["status"] in LIVE_STATES


def _rate(row: dict) -> str:
    """Samples/s; "-" where never measured (a live run's figure comes at its end)."""
    value = row["samples_per_s"]
    return "-" if not value else f"{value:,.0f}"


def _duration(row: dict, seconds) -> str:
    """The run's wall time; a live run's age since it started (its wall time comes at its end); else "-"."""
    if row["wall_s"] is not None:
        return seconds(row["wall_s"])
    if not _live(row):
        return "-"
    from tui_trainer.session.format import seconds_since

    age = seconds_since(row.get("started_at") or "")
    return "-" if age is None else seconds(age)


def table(rows: list[dict]) -> str:
    """The runs as aligned text columns."""
    from tui_trainer.session.format import seconds

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
            f"{_rate(r):>10} {_duration(r, seconds):>7}")
        if r.get("note"):
            lines.append(f"  damaged: {r['note']}")
    return "\n".join(lines)


def steps_text(row: dict) -> str:
    """`step/total` of one listed run."""
    return f"{row['step']}/{row['total_steps']}"


def remove(args) -> int:
    """`runs rm`: list what would go, ask, delete; live runs are kept and said so. Exit 2 for bad input."""
    from pathlib import Path

    from tui_trainer.runs import RunStore
    from tui_trainer.runs.removal import remove_run, select_runs, split_live

    if not args.run_ids and args.older_than is None and args.status is None:
        print("error: name the runs to delete, or filter them with --older-than DAYS or --status S",
              file=sys.stderr)
        return 2
    ids = tuple(Path(i).name for i in args.run_ids)  # runs/ID or ID
    records = RunStore(args.runs_dir).list_runs()
    missing = [i for i in ids if i not in {r.run_id for r in records}]
    if missing:
        print(f"error: no run {', '.join(missing)} in {args.runs_dir}", file=sys.stderr)
        return 2
    chosen = select_runs(records, ids=ids, older_than_days=args.older_than, status=args.status)
    chosen, live = split_live(chosen)
    for r in live:
        print(f"kept: {r.run_id} is still running (stop it first)")
    if not chosen:
        print("no runs to delete")
        return 0 if not live else 1
    for r in chosen:
        print(f"{r.run_id}  {r.status}  {r.step}/{r.total_steps}")
    if not args.yes:
        try:
            answer = input(f"delete {len(chosen)} run{'s' if len(chosen) > 1 else ''}? [y/N] ")
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing deleted")
            return 1
    deleted = sum(1 for r in chosen if remove_run(r.path))
    print(f"deleted {deleted} run{'s' if deleted != 1 else ''}")
    return 0 if deleted == len(chosen) and not live else 1
