"""`tui-trainer run A B C --headless`: presets run one after another, each a run of its own."""

from __future__ import annotations

import sys
from pathlib import Path

# Exit codes from best to worst: completed, stopped (Ctrl-C), failed; bad input (2) starts nothing.
SEVERITY = {0: 0, 130: 1, 1: 2}


def run_queue(args, presets_dir: Path) -> int:
    """Validate every preset first (any bad one: exit 2, nothing started), then run them in order.

    A failed run does not stop the queue unless `--stop-on-failure`; Ctrl-C stops the current run and the
    queue. The exit code is the worst of the runs' codes (failed 1 > stopped 130 > completed 0).
    """
    from tui_trainer.cli.headless import follow
    from tui_trainer.cli.main import resolve_preset
    from tui_trainer.config import ConfigError, ensure_runnable, load_config
    from tui_trainer.hardware import detect_machine
    from tui_trainer.runs import RunBusy, RunStore, create_runner

    overrides = list(args.overrides)
    if args.rdzv_endpoint:
        overrides.append(f"strategy.rdzv_endpoint={args.rdzv_endpoint}")
    configs, problems = [], []
    machine = detect_machine()
    for text in args.presets:
        try:
            config = load_config(resolve_preset(text, presets_dir), overrides)
            ensure_runnable(config, machine)
            configs.append(config)
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    if not args.headless and sys.stdout.isatty():
        print("note: a queue runs with progress lines; the app's queue is the launch screen's space and enter")
    store = RunStore(args.runs_dir)
    outcomes: list[tuple[str, str]] = []
    worst = 0
    for i, config in enumerate(configs):
        print(f"queue [{i + 1}/{len(configs)}]: {config.name}", flush=True)
        runner = create_runner(config, store, node_rank=args.node_rank)
        try:
            runner.start()
        except RunBusy as exc:  # cannot happen to a new run directory; said plainly if it does
            print(f"error: {exc}", file=sys.stderr)
            code = 1
        else:
            code = follow(runner, every=args.progress_every)
        status = runner.summary.status if runner.summary is not None else ("stopped" if code == 130 else "failed")
        outcomes.append((config.name, f"{status} ({runner.run_id})"))
        if SEVERITY.get(code, 2) > SEVERITY[worst]:
            worst = code
        if code == 130 or (code != 0 and args.stop_on_failure):
            break
    for name, outcome in outcomes:
        print(f"queue: {name}: {outcome}")
    for config in configs[len(outcomes):]:
        print(f"queue: {config.name}: not started")
    return worst
