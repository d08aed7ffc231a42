"""Sweeps: every combination of a few preset keys run one after another, measured the same way.

A sweep answers "which strategy, precision, accumulation (or micro-batch) trains this model fastest, at
what memory and what loss?". Each combination of the grid's values is a real run in the run store.
Combinations this machine cannot run are `skipped` with the validation's reason (never started); a run
that fails is `failed` with its reason, and the sweep goes on.

How a row is measured (the same for every row, so rows compare):
- each run takes `steps` optimizer steps, and evaluates once, after its last step (outside the clock);
- **warm-up** (not timed): the steps up to the run's first progress report at or after a tenth of the
  steps (the first report comes after step 1, later ones about four times a second), which covers the
  first steps' allocations and caches;
- **timed**: from that report to the last step. `samples_per_s` = samples of the timed steps / their
  seconds; `step_ms` = milliseconds per timed optimizer step;
- `peak_memory_mib`: the run's peak (torch's `max_memory_allocated` on GPUs; the worker process's peak
  RSS on the CPU: every run trains in its own worker process, so rows never inherit each other's peak);
- `final_loss` and `metric`: the run's train loss figure (training/figures.py) and validation metric.

No Textual here: the CLI and the app both drive `run_sweep`.
"""

from __future__ import annotations

import csv
import itertools
import json
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from tui_trainer.config import ConfigError, ConfigProblem, Machine, RunConfig, load_config, validate_for_machine
from tui_trainer.config.presets import parse_override
from tui_trainer.runs.strict_json import strict_json

SWEEP_JSON = "sweep.json"
SWEEP_CSV = "sweep.csv"
DEFAULT_STEPS = 300
WARMUP_SHARE = 0.1
ROW_FIELDS = ("status", "reason", "run_id", "samples_per_s", "step_ms", "peak_memory_mib", "final_loss", "metric",
              "relative_speed", "fastest", "lowest_memory")


@dataclass(frozen=True, slots=True)
class Axis:
    """One preset key and the values the sweep gives it, as written (`"fp32"`, `2`, `[64, 64]`)."""

    key: str
    values: tuple[object, ...]


@dataclass(frozen=True, slots=True)
class SweepRow:
    """One combination: its values (axis key -> value, derived accumulation included), how it went, its figures."""

    values: tuple[tuple[str, object], ...]
    status: str = "planned"  # planned, then completed, skipped or failed
    reason: str = ""
    run_id: str = ""
    samples_per_s: float | None = None
    step_ms: float | None = None
    peak_memory_mib: float | None = None
    final_loss: float | None = None
    metric: float | None = None
    metric_name: str = ""
    relative_speed: float | None = None
    fastest: bool = False
    lowest_memory: bool = False
    config: RunConfig | None = field(default=None, compare=False, repr=False)

    def label(self) -> str:
        """`train.precision=fp32 train.accumulate=2`."""
        return " ".join(f"{k}={_text(v)}" for k, v in self.values)

    def as_json(self) -> dict:
        """The row as sweep.json holds it (fixed names: scripts read them)."""
        out = {"values": {k: _plain(v) for k, v in self.values}}
        out.update({name: getattr(self, name) for name in ROW_FIELDS})
        out["metric_name"] = self.metric_name
        return out


@dataclass(frozen=True, slots=True)
class SweepPlan:
    """What a sweep will run: the preset, its axes, the steps per run and the rows (some already skipped)."""

    preset: str
    axes: tuple[Axis, ...]
    steps: int
    effective_batch: int
    rows: tuple[SweepRow, ...]


def parse_grid(texts: list[str] | tuple[str, ...]) -> tuple[Axis, ...]:
    """`KEY=V1,V2,...` for each text; values are read as TOML (`[64,64]` stays one value), else as text."""
    axes, problems = [], []
    for text in texts:
        key, sep, raw = text.partition("=")
        key = key.strip()
        parts = _split_values(raw) if sep else []
        if not sep or "." not in key or not parts:
            problems.append(ConfigProblem("--grid", key or text, None,
                                          "expected KEY=V1,V2, e.g. --grid train.precision=fp32,bf16-mixed"))
            continue
        if any(a.key == key for a in axes):
            problems.append(ConfigProblem("--grid", key, None, "this key is already an axis; give its values once"))
            continue
        axes.append(Axis(key, tuple(parse_override(f"{key}={p}")[1] for p in parts)))
    if problems:
        raise ConfigError(problems)
    return tuple(axes)


def plan_sweep(preset: str | Path, axes: tuple[Axis, ...], machine: Machine, *, steps: int = DEFAULT_STEPS,
               effective_batch: int = 0, overrides: tuple[str, ...] = ()) -> SweepPlan:
    """Every combination of the axes' values, each a validated config or a row `skipped` with the reason.

    Raises ConfigError when an axis value is wrong whatever it is combined with (a typo, an unknown key):
    that is bad input, and nothing starts.
    """
    preset = Path(preset)
    if steps < 1:
        raise ConfigError([ConfigProblem("--steps", "", steps, "expected at least 1 optimizer step")])
    if effective_batch and any(a.key == "train.accumulate" for a in axes):
        raise ConfigError([ConfigProblem("--effective-batch", "", effective_batch, "an effective batch derives "
                                         "each row's accumulation (effective batch / (batch x processes)): leave "
                                         "train.accumulate at the preset's value and sweep data.batch_size")])
    base = (*overrides, f"train.max_steps={steps}", f"train.eval_every={steps + 1}")
    # Each value on its own against its field: a typo or an unknown key is bad input, not a skipped row.
    problems = [p for axis in axes for value in axis.values if (p := _value_problem(axis.key, value))]
    if problems:
        raise ConfigError(_unique(problems))
    load_config(preset, list(base))  # the preset itself must be valid (raises ConfigError)
    rows = []
    for combo in itertools.product(*(a.values for a in axes)):
        values = tuple((a.key, v) for a, v in zip(axes, combo))
        rows.append(_plan_row(preset, values, base, machine, effective_batch))
    return SweepPlan(str(preset), axes, steps, effective_batch, tuple(rows))


def _value_problem(key: str, value: object) -> ConfigProblem | None:
    """Why a value can never be right for its key (unknown key, wrong type, out of bounds), else None."""
    from dataclasses import fields

    from tui_trainer.config.presets import check_value
    from tui_trainer.config.schema import SECTIONS

    section, _, name = key.partition(".")
    known = {f.name: f for f in fields(SECTIONS[section])} if section in SECTIONS else {}
    if name not in known:
        allowed = ", ".join(f"{section}.{k}" for k in known) if known else ", ".join(SECTIONS)
        return ConfigProblem("--grid", key, value, f"unknown key (allowed: {allowed})")
    _, error = check_value(known[name].metadata, value)
    return ConfigProblem("--grid", key, value, error) if error else None


def _plan_row(preset: Path, values, base, machine: Machine, effective_batch: int) -> SweepRow:
    overrides = [*base, *(_override(k, v) for k, v in values)]
    try:
        config = load_config(preset, overrides)
        if effective_batch:
            per_step = config.effective_batch // config.train.accumulate  # batch x world x replicas
            if effective_batch % per_step:
                return SweepRow(values, "skipped", f"effective batch {effective_batch} is not a multiple of "
                                                   f"batch x world size = {per_step}")
            accumulate = effective_batch // per_step
            values = (*values, ("train.accumulate", accumulate))
            config = load_config(preset, [*overrides, f"train.accumulate={accumulate}"])
    except ConfigError as exc:  # a combination that contradicts itself (e.g. hybrid devices vs stages)
        return SweepRow(values, "skipped", "; ".join(_short(p) for p in exc.problems))
    problems = validate_for_machine(config, machine)
    if problems:
        return SweepRow(values, "skipped", "; ".join(_short(p) for p in problems))
    return SweepRow(values, config=config)


# ----------------------------------------------------------------------------------------------- running
def run_sweep(plan: SweepPlan, store, *, stop: threading.Event | None = None,
              on_row: Callable[[int, SweepRow], None] | None = None,
              on_event: Callable[[int, object], None] | None = None,
              make_runner=None) -> tuple[SweepRow, ...]:
    """Run the plan's rows one after another; return every row with its figures, best rows marked.

    `on_row(i, row)` is called when row i starts (status "running") and when it is done; `on_event(i, e)`
    receives each event of row i's run (the app draws its loss from them). Setting `stop` stops the
    current run after its step (that row `failed`, "stopped") and skips the rest.
    """
    from tui_trainer.runs.launcher import create_runner
    from tui_trainer.training.events import RunFinished, RunStarted, TrainProgress

    make_runner = make_runner or (lambda config: create_runner(config, store, isolated=True))
    stop = stop or threading.Event()
    rows = list(plan.rows)
    for i, row in enumerate(rows):
        if row.status != "planned":
            _call(on_row, i, row)
            continue
        if stop.is_set():
            rows[i] = replace(row, status="skipped", reason="the sweep was stopped before this row")
            _call(on_row, i, rows[i])
            continue
        try:
            runner = make_runner(row.config)
            run_dir = runner.start()
        except Exception as exc:  # the run directory cannot be made, a launcher is missing: this row fails
            rows[i] = replace(row, status="failed", reason=f"could not start: {type(exc).__name__}: {exc}",
                              config=None)
            _call(on_row, i, rows[i])
            continue
        _call(on_row, i, replace(row, status="running", run_id=run_dir.name))
        clock = _Clock(plan.steps)
        summary, asked_stop = None, False
        while summary is None:
            if stop.is_set() and not asked_stop:
                runner.stop()
                asked_stop = True
            try:
                event = runner.events.get(timeout=0.2)
            except queue.Empty:
                continue
            if isinstance(event, RunStarted):
                clock.started(event)
            elif isinstance(event, TrainProgress):
                clock.progress(event)
            elif isinstance(event, RunFinished):
                summary = event.summary
            _call(on_event, i, event)
        runner.wait()
        rows[i] = _finished_row(row, run_dir.name, summary, clock)
        _call(on_row, i, rows[i])
    return mark_best(rows)


class _Clock:
    """The timed part of one run, from its progress events (see the module docstring)."""

    def __init__(self, steps: int):
        self.warmup_step = max(1, int(steps * WARMUP_SHARE))
        self.samples_per_step = 0.0
        self.start: tuple[int, float] | None = None  # (step, elapsed seconds) where the clock starts
        self.first: tuple[int, float] | None = None
        self.last: tuple[int, float] | None = None

    def started(self, event) -> None:
        if event.steps_per_epoch:
            self.samples_per_step = event.train_samples / event.steps_per_epoch

    def progress(self, event) -> None:
        point = (event.step, event.elapsed_s)
        self.first = self.first or point
        if self.start is None and event.step >= self.warmup_step:
            self.start = point
        self.last = point

    def figures(self) -> tuple[float | None, float | None]:
        """(samples/s, ms per step) over the timed steps; the whole run's when no report fell after warm-up."""
        start = self.start if self.start is not None and self.start != self.last else self.first
        if start is None or self.last is None:
            return None, None
        steps, seconds = self.last[0] - start[0], self.last[1] - start[1]
        if steps <= 0 or seconds <= 0:
            return None, None
        return steps * self.samples_per_step / seconds, 1000 * seconds / steps


def _finished_row(row: SweepRow, run_id: str, summary, clock: _Clock) -> SweepRow:
    rate, step_ms = clock.figures()
    if summary.status == "completed":
        status, reason = "completed", ""
    elif summary.status == "stopped":
        status, reason = "failed", f"stopped at step {summary.step}/{summary.total_steps}"
    else:
        status, reason = "failed", summary.error or summary.status
    if status == "completed" and rate is None:  # too fast for two reports: the run's own figure
        rate = summary.samples_per_s or None
        step_ms = 1000 * summary.wall_s / max(summary.step, 1) if rate else None
    return replace(row, status=status, reason=reason, run_id=run_id, samples_per_s=rate, step_ms=step_ms,
                   peak_memory_mib=summary.peak_memory_mib, final_loss=summary.final_loss, metric=summary.metric,
                   metric_name=summary.metric_name, config=None)


def mark_best(rows) -> tuple[SweepRow, ...]:
    """Speed relative to the first completed row; the fastest and the lowest-memory completed rows marked."""
    done = [r for r in rows if r.status == "completed" and r.samples_per_s]
    if not done:
        return tuple(rows)
    first = done[0].samples_per_s
    fastest = max(done, key=lambda r: r.samples_per_s)
    with_memory = [r for r in done if r.peak_memory_mib is not None]
    lowest = min(with_memory, key=lambda r: r.peak_memory_mib) if with_memory else None
    return tuple(replace(r, relative_speed=r.samples_per_s / first if any(r is d for d in done) else None,
                         fastest=r is fastest, lowest_memory=r is lowest) for r in rows)


# ------------------------------------------------------------------------------------------------- files
def sweep_dir(root: str | Path, preset: str) -> Path:
    """A new directory for one sweep: `<root>/<date>-<time>-<preset>`."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    base = f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{Path(preset).stem}"
    for n in range(1, 10_000):
        path = root / (base if n == 1 else f"{base}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise FileExistsError(base)


def write_sweep(directory: str | Path, plan: SweepPlan, rows, *, finished: bool) -> None:
    """sweep.json (an object with `rows`) and sweep.csv (one line a row), both replaced atomically."""
    directory = Path(directory)
    data = {"preset": plan.preset, "axes": {a.key: [_plain(v) for v in a.values] for a in plan.axes},
            "steps": plan.steps, "effective_batch": plan.effective_batch or None, "finished": finished,
            "written_at": datetime.now().isoformat(timespec="seconds"), "rows": [r.as_json() for r in rows]}
    _atomic(directory / SWEEP_JSON, strict_json(data) + "\n")
    keys = list(dict.fromkeys(k for r in rows for k, _ in r.values))
    lines = [[*keys, *ROW_FIELDS]]
    for r in rows:
        values = dict(r.values)
        lines.append([_text(values[k]) if k in values else "" for k in keys]
                     + [_cell(getattr(r, f)) for f in ROW_FIELDS])
    import io

    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(lines)
    _atomic(directory / SWEEP_CSV, text.getvalue())


@dataclass(frozen=True, slots=True)
class SweepEntry:
    """A sweep directory as `tui-trainer sweeps` lists it."""

    path: Path
    preset: str
    axes: tuple[str, ...]
    rows: int
    completed: int
    skipped: int
    failed: int
    finished: bool
    fastest: str


def list_sweeps(root: str | Path) -> list[SweepEntry]:
    """Every sweep directory under root with a readable sweep.json, newest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    out = []
    for path in sorted(root.iterdir(), reverse=True):
        try:
            data = json.loads((path / SWEEP_JSON).read_text(encoding="utf-8"))
            rows = data["rows"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        count = {s: sum(1 for r in rows if r.get("status") == s) for s in ("completed", "skipped", "failed")}
        best = next((r for r in rows if r.get("fastest")), None)
        fastest = " ".join(f"{k}={_text(v)}" for k, v in best["values"].items()) if best else ""
        out.append(SweepEntry(path, Path(str(data.get("preset", ""))).stem, tuple(data.get("axes", {})), len(rows),
                              count["completed"], count["skipped"], count["failed"], bool(data.get("finished")),
                              fastest))
    return out


# ----------------------------------------------------------------------------------------------- helpers
def _split_values(raw: str) -> list[str]:
    """Split on the commas outside brackets and quotes: `[64,64],[128]` is two values."""
    parts, depth, quote, current = [], 0, "", []
    for ch in raw:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    parts.append("".join(current).strip())
    return [p for p in parts if p]


def _override(key: str, value: object) -> str:
    """An axis value back as a `--set` text."""
    from tui_trainer.config.errors import format_value

    return f"{key}={format_value(value)}"


def _short(problem: ConfigProblem) -> str:
    """A problem without its source file (every row has the same one)."""
    from tui_trainer.config.errors import format_value

    return f"{problem.key} = {format_value(problem.value)}: {problem.allowed}" if problem.key else problem.allowed


def _unique(problems: list[ConfigProblem]) -> list[ConfigProblem]:
    seen, out = set(), []
    for p in problems:
        if str(p) not in seen:
            seen.add(str(p))
            out.append(p)
    return out


def _text(value: object) -> str:
    from tui_trainer.config.errors import format_value

    return value if isinstance(value, str) else format_value(value)


def _cell(value: object) -> object:
    """A CSV cell: empty for None, true/false for booleans (as in sweep.json)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _plain(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value


def _call(callback, *args) -> None:
    if callback is not None:
        callback(*args)


def _atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
