"""`tui-trainer`: the app with no arguments; run, resume, attach, stop, presets, runs and gpus as subcommands.

Only argparse and the config package load at start, so `--help` is instant: torch, scikit-learn and
Textual are imported by the subcommand that needs them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tui_trainer import __version__
from tui_trainer.config.errors import ConfigError, ConfigProblem

DEFAULT_RUNS_DIR = "runs"


def default_presets_dir() -> Path:
    """./presets when it exists, else the presets shipped with the package (tui_trainer/presets, a link
    to the checkout's presets/ in a source tree, copied files in an installed wheel)."""
    here = Path("presets")
    if here.is_dir():
        return here
    return Path(__file__).resolve().parents[1] / "presets"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tui-trainer",
        description="Keyboard-driven terminal experiment runner for PyTorch training. "
                    "With no command, opens the app.")
    parser.add_argument("--version", action="version", version=f"tui-trainer {__version__}")
    parser.add_argument("--runs-dir", default=DEFAULT_RUNS_DIR, help="where runs are kept (default ./runs)")
    parser.add_argument("--presets-dir", type=Path, default=None, help="where presets are read (default ./presets)")
    parser.add_argument("--stop-on-exit", action="store_true",
                        help="quitting the app (or closing its terminal) stops its runs; by default they keep training")
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
    run.add_argument("--detach", action="store_true",
                     help="train in the background, detached from this terminal; print the run id and return")
    run.add_argument("--progress-every", type=seconds, default=2.0, metavar="SECONDS",
                     help="seconds between progress lines in headless mode (default 2)")
    run.add_argument("--node-rank", type=int, default=0, metavar="K",
                     help="multi-node ddp: this machine's node rank (0 on the head node, which shows the run)")
    run.add_argument("--rdzv-endpoint", default=None, metavar="HOST:PORT",
                     help="multi-node ddp: the rendezvous address (overrides strategy.rdzv_endpoint)")
    _add_store_args(run)

    resume = sub.add_parser("resume", help="continue a stopped or interrupted run from its last checkpoint")
    resume.add_argument("run_dir", type=Path, help="the run's directory, e.g. runs/20261127-101500-cpu-quick, "
                                                   "or its id (in --runs-dir)")
    resume.add_argument("--headless", action="store_true", help="no app: print progress lines")
    resume.add_argument("--progress-every", type=seconds, default=2.0, metavar="SECONDS")
    _add_store_args(resume)

    attach = sub.add_parser("attach", help="open the live dashboard of a running run, whoever started it")
    attach.add_argument("run", nargs="?", type=Path, default=None,
                        help="the run's id or directory (default: the only live run, else pick one)")
    _add_store_args(attach)

    stop = sub.add_parser("stop", help="stop a running run (checkpoint written) and wait until it has stopped")
    stop.add_argument("run", type=Path, help="the run's id or directory")
    stop.add_argument("--no-wait", action="store_true", help="return once the stop is requested")
    _add_store_args(stop)

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


def seconds(text: str) -> float:
    """A --progress-every value: a finite number of seconds from 0.05 to a day."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.05 <= value <= 86_400:  # also refuses nan
        raise argparse.ArgumentTypeError(f"expected seconds from 0.05 to 86400, got {text[:40]!r}")
    return value


def _add_store_args(parser: argparse.ArgumentParser) -> None:
    # Accepted after the subcommand too, where users tend to type them.
    parser.add_argument("--runs-dir", default=argparse.SUPPRESS, help="where runs are kept (default ./runs)")
    parser.add_argument("--presets-dir", type=Path, default=argparse.SUPPRESS, help="where presets are read")
    parser.add_argument("--stop-on-exit", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `tui-trainer` console script."""
    args = build_parser().parse_args(argv)
    presets_dir = args.presets_dir or default_presets_dir()
    try:
        if args.command is None:
            from tui_trainer.ui.app import run_app

            return run_app(presets_dir=presets_dir, runs_dir=Path(args.runs_dir), stop_on_exit=args.stop_on_exit)
        if args.command == "run":
            return cmd_run(args, presets_dir)
        if args.command == "resume":
            return cmd_resume(args, presets_dir)
        if args.command == "attach":
            return cmd_attach(args, presets_dir)
        if args.command == "stop":
            return cmd_stop(args)
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
    except ConfigError as exc:  # bad input found late (a run store that cannot be written...): still one line
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    except OSError as exc:  # a run directory made read-only, a full disk: one line naming the file, no traceback
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    return 2


def resolve_preset(text: str, presets_dir: Path) -> Path:
    """A preset argument as a path: an existing file, or a name in the presets directory.

    A name that is not there is bad input naming the directory, the closest name and the names there.
    """
    import difflib

    from tui_trainer.config.presets import preset_paths

    path = Path(text)
    if path.exists() or path.suffix == ".toml":
        return path
    named = Path(presets_dir) / f"{text}.toml"
    if named.exists():
        return named
    names = [p.stem for p in preset_paths(presets_dir)] if Path(presets_dir).is_dir() else []
    close = difflib.get_close_matches(text, names, n=1, cutoff=0.6) if len(text) < 100 else []
    hint = f'; did you mean "{close[0]}"?' if close else ""
    shown = ", ".join(names[:12]) + (f" and {len(names) - 12} more" if len(names) > 12 else "")
    there = f" (presets there: {shown})" if names else " (none there: give a file's path, or --presets-dir DIR)"
    raise ConfigError([ConfigProblem(str(presets_dir), "", None, f"no preset named {text}{hint}{there}")])


def cmd_run(args, presets_dir: Path) -> int:
    from tui_trainer.config import ConfigError, ensure_runnable, load_config
    from tui_trainer.hardware import detect_machine

    if len(args.presets) > 1:
        from tui_trainer.cli.queue import run_queue

        return run_queue(args, presets_dir)
    args.preset = args.presets[0]
    try:
        overrides = list(args.overrides)
        if args.rdzv_endpoint:
            overrides.append(f"strategy.rdzv_endpoint={args.rdzv_endpoint}")
        config = load_config(resolve_preset(args.preset, presets_dir), overrides)
        if not 0 <= args.node_rank < config.strategy.nodes:
            raise ConfigError([ConfigProblem("--node-rank", "", None, f"{args.node_rank} is not a node of this run: "
                                             f"strategy.nodes = {config.strategy.nodes}, so 0 to "
                                             f"{config.strategy.nodes - 1}")])
        ensure_runnable(config, detect_machine())
        from tui_trainer.runs import RunStore, create_runner

        RunStore(args.runs_dir).check_writable()
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    from tui_trainer.runs import RunBusy, RunStore, create_runner

    if args.detach:
        return detach(create_runner(config, RunStore(args.runs_dir), node_rank=args.node_rank, isolated=True), args)
    in_app = not args.headless and sys.stdout.isatty() and sys.stdin.isatty()
    # The app's runs train in a detached process of their own: they outlive the app, and drawing
    # never slows the loop. Headless, this process trains (the fastest path).
    runner = create_runner(config, RunStore(args.runs_dir), node_rank=args.node_rank, isolated=in_app)
    if in_app:
        from tui_trainer.ui.app import run_app

        return run_app(presets_dir=presets_dir, runs_dir=Path(args.runs_dir), runner=runner,
                       stop_on_exit=args.stop_on_exit)
    from tui_trainer.cli.headless import follow

    try:
        runner.start()
    except RunBusy as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return follow(runner, every=args.progress_every)


def detach(runner, args) -> int:
    """Start a run in its own process, detached from this terminal, and say how to follow and stop it."""
    from tui_trainer.runs import RunBusy

    try:
        run_dir = runner.launch()
    except RunBusy as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    where = "" if args.runs_dir == DEFAULT_RUNS_DIR else f" --runs-dir {args.runs_dir}"
    print(f"run {run_dir.name} is training in the background (pid {runner.process.pid}); "
          "closing this terminal does not stop it")
    print(f"  follow it:   tui-trainer attach {run_dir.name}{where}")
    print(f"  stop it:     tui-trainer stop {run_dir.name}{where}")
    print(f"  its output:  {run_dir / 'worker.log'}")
    return 0


def find_run_dir(text: Path, runs_dir: str) -> Path | None:
    """A run argument as a directory: a path, or a run id as `tui-trainer runs` lists it."""
    if (text / "config.toml").exists():
        return text
    if (Path(runs_dir) / text / "config.toml").exists():
        return Path(runs_dir) / text
    return None


def cmd_resume(args, presets_dir: Path) -> int:
    from tui_trainer.config import ConfigError
    from tui_trainer.config.errors import escape
    from tui_trainer.config.names import is_plain_name
    from tui_trainer.runs import RunBusy, resumable, resume_runner

    run_dir = args.run_dir
    if not run_dir.exists() and is_plain_name(str(run_dir)):  # a run id, as `runs` lists it
        run_dir = Path(args.runs_dir) / run_dir
    where = escape(str(run_dir))
    if not run_dir.is_dir():
        print(f"error: {where}: no such run (give a run directory, or a run id listed by tui-trainer runs)",
              file=sys.stderr)
        return 2
    if not (run_dir / "config.toml").is_file():
        print(f"error: {where}: not a run directory (no config.toml)", file=sys.stderr)
        return 2
    why = resumable(run_dir)
    if why is not None:
        print(f"error: {where}: {why}", file=sys.stderr)
        return 2
    in_app = not args.headless and sys.stdout.isatty() and sys.stdin.isatty()
    try:
        runner = resume_runner(run_dir, isolated=in_app)
        from tui_trainer.training.checkpoint import check_checkpoint

        check_checkpoint(run_dir / "checkpoint.pt")  # a damaged one is refused before the run's record is touched
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    if in_app:
        from tui_trainer.ui.app import run_app

        return run_app(presets_dir=presets_dir, runs_dir=run_dir.parent, runner=runner,
                       stop_on_exit=args.stop_on_exit)
    from tui_trainer.cli.headless import follow

    try:
        runner.start()
    except RunBusy as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return follow(runner, every=args.progress_every)


def cmd_attach(args, presets_dir: Path) -> int:
    """The live dashboard of a running run (the only one, or the one named); several: the runs to pick from."""
    from tui_trainer.runs import RunStore, live_owner, read_record

    if not (sys.stdout.isatty() and sys.stdin.isatty()):
        print("error: attach opens the live dashboard and needs a terminal", file=sys.stderr)
        return 2
    runs_dir = Path(args.runs_dir)
    if args.run is not None:
        run_dir = find_run_dir(args.run, args.runs_dir)
        if run_dir is None:
            print(f"error: {args.run}: not a run directory (no config.toml)", file=sys.stderr)
            return 2
        if live_owner(run_dir) is None:
            record = read_record(run_dir)
            status = record.status if record is not None else "not started"
            print(f"error: {run_dir}: not running (status {status}); tui-trainer opens its curves in Runs",
                  file=sys.stderr)
            return 2
        runs_dir = run_dir.parent
    else:
        live = [r for r in RunStore(runs_dir).list_runs() if r.status == "running"]
        if not live:
            print(f"error: no run is training in {runs_dir}", file=sys.stderr)
            return 2
        run_dir = live[0].path if len(live) == 1 else None  # several: the app's runs screen, to pick one
    from tui_trainer.ui.app import run_app

    return run_app(presets_dir=presets_dir, runs_dir=runs_dir, attach=run_dir, show_runs=run_dir is None,
                   stop_on_exit=args.stop_on_exit)


def cmd_stop(args) -> int:
    """Ask a run to stop (every rank at the same step, checkpoint written); wait until its summary says so."""
    import time

    from tui_trainer.cli.headless import summary_text
    from tui_trainer.runs import live_owner, read_record, read_summary, request_stop
    from tui_trainer.runs.follow import FINAL_STATES

    run_dir = find_run_dir(args.run, args.runs_dir)
    if run_dir is None:
        print(f"error: {args.run}: not a run directory (no config.toml)", file=sys.stderr)
        return 2
    owner = live_owner(run_dir)
    if owner is None:
        record = read_record(run_dir)
        print(f"error: {run_dir}: not running (status {record.status if record else 'not started'})",
              file=sys.stderr)
        return 2
    request_stop(run_dir)
    print(f"stop requested: {run_dir.name} ({owner.describe()}) stops after its current step and writes "
          "a checkpoint", flush=True)
    if args.no_wait:
        return 0
    try:
        while True:
            data = read_summary(run_dir)
            if data.status in FINAL_STATES and live_owner(run_dir) is None:
                print(summary_text(data, run_dir))
                return 0 if data.status in ("stopped", "completed") else 1
            if live_owner(run_dir) is None:
                print(f"interrupted: the run's process ended without recording an end; "
                      f"tui-trainer resume {run_dir.name} continues from its last checkpoint")
                return 1
            time.sleep(0.2)
    except KeyboardInterrupt:  # the stop request stands; the run stops without us
        return 130


def cmd_presets(args, presets_dir: Path) -> int:
    from tui_trainer.config import discover_presets
    from tui_trainer.hardware import detect_machine
    from tui_trainer.config.errors import escape

    entries = discover_presets(presets_dir, detect_machine())
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
        print(f"{mark}  {e.name:<{width}}  {escape(e.description)[:200]}")
        for error in e.errors:
            print(f"{'':<{width + 4}}  {error}")
    return 0


def cmd_runs(args) -> int:
    from tui_trainer.cli import runs as runs_command

    return runs_command.run(args)


if __name__ == "__main__":
    raise SystemExit(main())
