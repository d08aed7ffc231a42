"""`tui-trainer sweep` (run every combination of a grid, measured alike) and `tui-trainer sweeps` (list them)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

DEFAULT_SWEEPS_DIR = "sweeps"


def add_sweep_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `sweep` (nothing from tui_trainer.runs is imported here: `--help` builds this parser)."""
    parser.add_argument("preset", help="a preset path, or the name of one in the presets directory")
    parser.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                        help="an axis: a preset key and its values (repeatable), e.g. "
                             "--grid train.precision=fp32,bf16-mixed --grid train.accumulate=1,4")
    parser.add_argument("--steps", type=int, default=None, metavar="N",
                        help="optimizer steps per combination (default 300; the first tenth is an untimed warm-up)")
    parser.add_argument("--effective-batch", type=int, default=0, metavar="N",
                        help="derive each row's train.accumulate = N / (batch x world size); sweep "
                             "data.batch_size to find the fastest way to an effective batch of N")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a preset field for every row (repeatable)")
    parser.add_argument("--sweeps-dir", default=DEFAULT_SWEEPS_DIR, metavar="DIR",
                        help="where sweep results are written (default ./sweeps)")
    parser.add_argument("--headless", action="store_true", help="print lines (the only mode so far)")


def add_sweeps_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `sweeps`."""
    parser.add_argument("--sweeps-dir", default=DEFAULT_SWEEPS_DIR, metavar="DIR",
                        help="where sweep results are kept (default ./sweeps)")
    parser.add_argument("--json", action="store_true", help="print JSON")


def run(args, presets_dir: Path) -> int:
    """Plan the sweep (bad input: exit 2, nothing started), run its rows, write its files; 0 when all ran."""
    from tui_trainer.cli.main import resolve_preset
    from tui_trainer.config import ConfigError
    from tui_trainer.hardware.machine import detect_machine
    from tui_trainer.runs import RunStore
    from tui_trainer.runs.sweep import (
        DEFAULT_STEPS,
        WARMUP_SHARE,
        parse_grid,
        plan_sweep,
        run_sweep,
        sweep_dir,
        write_sweep,
    )

    if not args.grid:
        print("error: give at least one axis, e.g. --grid train.precision=fp32,bf16-mixed", file=sys.stderr)
        return 2
    try:
        axes = parse_grid(args.grid)
        plan = plan_sweep(resolve_preset(args.preset, presets_dir), axes, detect_machine(),
                          steps=DEFAULT_STEPS if args.steps is None else args.steps,
                          effective_batch=args.effective_batch, overrides=tuple(args.overrides))
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    directory = sweep_dir(args.sweeps_dir, plan.preset)
    total = len(plan.rows)
    runnable = sum(1 for r in plan.rows if r.status == "planned")
    print(f"sweep {Path(plan.preset).stem}: {total} combinations of {', '.join(a.key for a in axes)} "
          f"({runnable} to run), {plan.steps} steps each, the first {max(1, int(plan.steps * WARMUP_SHARE))} "
          f"untimed" + (f", effective batch {plan.effective_batch}" if plan.effective_batch else ""), flush=True)

    def on_row(i: int, row) -> None:
        head = f"[{i + 1}/{total}] {row.label()}"
        if row.status == "running":
            print(f"{head}: running as {row.run_id}", flush=True)
        elif row.status == "completed":
            print(f"{head}: completed  {row_figures(row)}", flush=True)
            write_sweep(directory, plan, rows_so_far(i, row), finished=False)
        else:
            print(f"{head}: {row.status}: {row.reason}", flush=True)
            write_sweep(directory, plan, rows_so_far(i, row), finished=False)

    done: dict[int, object] = {}

    def rows_so_far(i: int, row):
        done[i] = row
        return [done.get(j, r) for j, r in enumerate(plan.rows)]

    stop = threading.Event()
    previous = signal.getsignal(signal.SIGINT)

    def on_interrupt(signum, frame) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print("Ctrl-C: stopping the current run and skipping the rest (Ctrl-C again to leave now)", flush=True)

    signal.signal(signal.SIGINT, on_interrupt)
    try:
        rows = run_sweep(plan, RunStore(args.runs_dir), stop=stop, on_row=on_row)
    except KeyboardInterrupt:
        print(f"sweep directory: {directory}")
        return 130
    finally:
        signal.signal(signal.SIGINT, previous)
    write_sweep(directory, plan, rows, finished=True)
    print(table(rows))
    print(f"sweep directory: {directory}")
    if stop.is_set():
        return 130
    return 0 if any(r.status == "completed" for r in rows) or runnable == 0 else 1


def row_figures(row) -> str:
    """One completed row's figures in a line."""
    parts = [f"{row.samples_per_s:,.0f} samples/s" if row.samples_per_s else "- samples/s",
             f"{row.step_ms:.3g} ms/step" if row.step_ms else "- ms/step",
             f"peak {_num(row.peak_memory_mib, ',.0f')} MiB", f"train loss {_num(row.final_loss)}"]
    if row.metric is not None:
        parts.append(f"{row.metric_name or 'metric'} {_num(row.metric, '.3f')}")
    return "  ".join(parts)


def table(rows) -> str:
    """The sweep's rows as aligned columns, the best rows marked."""
    keys = list(dict.fromkeys(k for r in rows for k, _ in r.values))
    head = [*keys, "status", "samples/s", "ms/step", "vs first", "peak MiB", "train loss", "metric", "best"]
    lines = []
    for r in rows:
        values = dict(r.values)
        best = ", ".join(name for name, on in (("fastest", r.fastest), ("lowest memory", r.lowest_memory)) if on)
        lines.append([*(_text(values.get(k, "")) for k in keys), r.status,
                      f"{r.samples_per_s:,.0f}" if r.samples_per_s else "-",
                      f"{r.step_ms:.3g}" if r.step_ms else "-",
                      f"{r.relative_speed:.2f}x" if r.relative_speed else "-",
                      f"{r.peak_memory_mib:,.0f}" if r.peak_memory_mib is not None else "-",
                      _num(r.final_loss), _num(r.metric, ".3f"), best])
    widths = [max(len(str(c)) for c in column) for column in zip(head, *lines)]
    out = ["  ".join(f"{c:<{w}}" for c, w in zip(head, widths)).rstrip()]
    out += ["  ".join(f"{c:<{w}}" for c, w in zip(line, widths)).rstrip() for line in lines]
    reasons: dict[tuple[str, str], int] = {}
    for r in rows:
        if r.status != "completed" and r.reason:
            reasons[r.status, r.reason] = reasons.get((r.status, r.reason), 0) + 1
    for (status, reason), count in reasons.items():
        out.append(f"{status} ({count} row{'s' if count > 1 else ''}): {reason}")
    return "\n".join(out)


def list_command(args) -> int:
    """`tui-trainer sweeps`: every sweep directory with its preset, axes, row counts and fastest row."""
    from tui_trainer.runs.strict_json import strict_json
    from tui_trainer.runs.sweep import list_sweeps

    entries = list_sweeps(args.sweeps_dir)
    if args.json:
        print(strict_json([{"path": str(e.path), "preset": e.preset, "axes": list(e.axes), "rows": e.rows,
                             "completed": e.completed, "skipped": e.skipped, "failed": e.failed,
                             "finished": e.finished, "fastest": e.fastest} for e in entries]))
        return 0
    if not entries:
        print(f"no sweeps in {args.sweeps_dir}")
        return 0
    for e in entries:
        state = "" if e.finished else "  (unfinished)"
        print(f"{e.path}  {e.preset}  {', '.join(e.axes)}: {e.rows} rows, {e.completed} completed, "
              f"{e.skipped} skipped, {e.failed} failed{state}")
        if e.fastest:
            print(f"    fastest: {e.fastest}")
    return 0


def _num(value: float | None, spec: str = ".4g") -> str:
    return "-" if value is None else format(value, spec)


def _text(value: object) -> str:
    from tui_trainer.config.errors import format_value

    return value if isinstance(value, str) else format_value(value)
