"""`tui-trainer`: the app with no arguments; run, resume, presets, runs and gpus as subcommands.

Only argparse and the config package load at start, so `--help` is instant: torch, scikit-learn and
Textual are imported by the subcommand that needs them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tui_trainer import __version__

DEFAULT_RUNS_DIR = "runs"


def default_presets_dir() -> Path:
    """./presets when it exists, else the presets shipped beside the package (a source checkout)."""
    here = Path("presets")
    if here.is_dir():
        return here
    return Path(__file__).resolve().parents[2] / "presets"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tui-trainer",
        description="Keyboard-driven terminal experiment runner for PyTorch training. "
                    "With no command, opens the app.")
    parser.add_argument("--version", action="version", version=f"tui-trainer {__version__}")
    parser.add_argument("--runs-dir", default=DEFAULT_RUNS_DIR, help="where runs are kept (default ./runs)")
    parser.add_argument("--presets-dir", type=Path, default=None, help="where presets are read (default ./presets)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="start a run from a preset")
    run.add_argument("presets", nargs="+", metavar="PRESET",
                     help="path to a preset TOML file, or the name of one in the presets directory; "
                          "several run one after another as a queue")
    run.add_argument("--stop-on-failure", action="store_true",
                     help="a queue: stop at the first run that fails (default: go on with the next)")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                     help="override a preset field (repeatable), e.g. --set train.precision=bf16-mixed")
    run.add_argument("--headless", action="store_true", help="no app: print progress lines (CI, scripts, workers)")
    run.add_argument("--progress-every", type=float, default=2.0, metavar="SECONDS",
                     help="seconds between progress lines in headless mode (default 2)")
    run.add_argument("--node-rank", type=int, default=0, metavar="K",
                     help="multi-node ddp: this machine's node rank (0 on the head node, which shows the run)")
    run.add_argument("--rdzv-endpoint", default=None, metavar="HOST:PORT",
                     help="multi-node ddp: the rendezvous address (overrides strategy.rdzv_endpoint)")
    _add_store_args(run)

    resume = sub.add_parser("resume", help="continue a stopped run to its planned end")
    resume.add_argument("run_dir", type=Path, help="the run's directory, e.g. runs/20261127-101500-cpu-quick, "
                                                   "or its id (in --runs-dir)")
    resume.add_argument("--headless", action="store_true", help="no app: print progress lines")
    resume.add_argument("--progress-every", type=float, default=2.0, metavar="SECONDS")
    _add_store_args(resume)

    presets = sub.add_parser("presets", help="list presets with their description and validity")
    presets.add_argument("--json", action="store_true", help="print JSON")
    _add_store_args(presets)

    runs = sub.add_parser("runs", help="list runs with status, losses, settings, samples/s and duration")
    from tui_trainer.cli import runs as runs_command

    runs_command.add_arguments(runs)
    _add_store_args(runs)

    from tui_trainer.cli import sweep as sweep_command

    sweep = sub.add_parser("sweep", help="run every combination of preset values, measured alike")
    sweep_command.add_sweep_arguments(sweep)
    _add_store_args(sweep)
    sweeps = sub.add_parser("sweeps", help="list the sweeps with their rows and fastest combination")
    sweep_command.add_sweeps_arguments(sweeps)
    _add_store_args(sweeps)

    export = sub.add_parser("export", help="write runs' curves for TensorBoard")
    from tui_trainer.cli import export as export_command

    export_command.add_arguments(export)
    _add_store_args(export)

    gpus = sub.add_parser("gpus", help="show the GPUs NVML sees (memory, utilisation, temperature, power)")
    from tui_trainer.cli import gpus as gpus_command

    gpus_command.add_arguments(gpus)
    _add_store_args(gpus)
    return parser


def _add_store_args(parser: argparse.ArgumentParser) -> None:
    # Accepted after the subcommand too, where users tend to type them.
    parser.add_argument("--runs-dir", default=argparse.SUPPRESS, help="where runs are kept (default ./runs)")
    parser.add_argument("--presets-dir", type=Path, default=argparse.SUPPRESS, help="where presets are read")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `tui-trainer` console script."""
    args = build_parser().parse_args(argv)
    presets_dir = args.presets_dir or default_presets_dir()
    try:
        if args.command is None:
            from tui_trainer.ui.app import run_app

            return run_app(presets_dir=presets_dir, runs_dir=Path(args.runs_dir))
        if args.command == "run":
            return cmd_run(args, presets_dir)
        if args.command == "resume":
            return cmd_resume(args, presets_dir)
        if args.command == "presets":
            return cmd_presets(args, presets_dir)
        if args.command == "runs":
            return cmd_runs(args)
        if args.command in ("sweep", "sweeps"):
            from tui_trainer.cli import sweep as sweep_command

            return sweep_command.run(args, presets_dir) if args.command == "sweep" else sweep_command.list_command(args)
        if args.command == "export":
            from tui_trainer.cli import export as export_command

            return export_command.run(args)
        if args.command == "gpus":
            from tui_trainer.cli import gpus as gpus_command

            return gpus_command.run(args)
    except BrokenPipeError:  # `tui-trainer runs | head`
        return 0
    return 2


def resolve_preset(text: str, presets_dir: Path) -> Path:
    """A preset argument as a path: an existing file, or a name in the presets directory."""
    path = Path(text)
    if path.exists() or path.suffix == ".toml":
        return path
    return presets_dir / f"{text}.toml"


def cmd_run(args, presets_dir: Path) -> int:
    from tui_trainer.config import ConfigError, ensure_runnable, load_config

    if len(args.presets) > 1:
        from tui_trainer.cli.queue import run_queue

        return run_queue(args, presets_dir)
    args.preset = args.presets[0]
    try:
        overrides = list(args.overrides)
        if args.rdzv_endpoint:
            overrides.append(f"strategy.rdzv_endpoint={args.rdzv_endpoint}")
        config = load_config(resolve_preset(args.preset, presets_dir), overrides)
        ensure_runnable(config)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    from tui_trainer.runs import RunStore, create_runner

    in_app = not args.headless and sys.stdout.isatty() and sys.stdin.isatty()
    # The app trains in a worker process (isolated) so drawing never slows the loop.
    runner = create_runner(config, RunStore(args.runs_dir), node_rank=args.node_rank, isolated=in_app)
    if in_app:
        from tui_trainer.ui.app import run_app

        return run_app(presets_dir=presets_dir, runs_dir=Path(args.runs_dir), runner=runner)
    from tui_trainer.cli.headless import follow

    runner.start()
    return follow(runner, every=args.progress_every)


def cmd_resume(args, presets_dir: Path) -> int:
    from tui_trainer.config import ConfigError
    from tui_trainer.runs import Runner, read_summary

    run_dir = args.run_dir
    if not run_dir.exists() and (Path(args.runs_dir) / run_dir).exists():  # a run id, as `runs` lists it
        run_dir = Path(args.runs_dir) / run_dir
    if not (run_dir / "config.toml").exists():
        print(f"error: {run_dir}: not a run directory (no config.toml)", file=sys.stderr)
        return 2
    status = read_summary(run_dir).get("status")
    if status == "completed":
        print(f"error: {run_dir}: the run is already completed; start a new one with tui-trainer run",
              file=sys.stderr)
        return 2
    if not (run_dir / "checkpoint.pt").exists():
        print(f"error: {run_dir}: no checkpoint.pt to resume from (status {status})", file=sys.stderr)
        return 2
    in_app = not args.headless and sys.stdout.isatty() and sys.stdin.isatty()
    try:
        runner = Runner.resume_run(run_dir, isolated=in_app)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    if in_app:
        from tui_trainer.ui.app import run_app

        return run_app(presets_dir=presets_dir, runs_dir=run_dir.parent, runner=runner)
    from tui_trainer.cli.headless import follow

    runner.start()
    return follow(runner, every=args.progress_every)


def cmd_presets(args, presets_dir: Path) -> int:
    from tui_trainer.config import discover_presets

    entries = discover_presets(presets_dir)
    if args.json:
        print(json.dumps([{"name": e.name, "path": str(e.path), "description": e.description, "valid": e.valid,
                           "errors": list(e.errors)} for e in entries], indent=2))
        return 0
    if not entries:
        print(f"no presets in {presets_dir}")
        return 0
    width = max(len(e.name) for e in entries)
    for e in entries:
        mark = "ok" if e.valid else "--"
        print(f"{mark}  {e.name:<{width}}  {e.description}")
        for error in e.errors:
            print(f"{'':<{width + 4}}  {error}")
    return 0


def cmd_runs(args) -> int:
    from tui_trainer.cli import runs as runs_command

    return runs_command.run(args)


if __name__ == "__main__":
    raise SystemExit(main())
