"""The run store: `runs/<run-id>/` with config.toml, metrics.jsonl, checkpoint.pt and summary.json."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime
from pathlib import Path

from tui_trainer.config import RunConfig, load_config, save_preset
from tui_trainer.config.errors import ConfigError, ConfigProblem, escape, format_value
from tui_trainer.runs.liveness import live_owner, read_heartbeat, run_status
from tui_trainer.runs.metrics import last_step, latest_figures
from tui_trainer.runs.protocol import CHECKPOINT_FILE, HEARTBEAT_FILE, announced, planned_steps, write_atomic
from tui_trainer.runs.strict_json import strict_json
from tui_trainer.training.events import RunSummary

CONFIG_NAME = "config.toml"
SUMMARY_NAME = "summary.json"
LIVE_STATES = ("running", "starting", "stopping")  # a run's status while a process trains it


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A run as listed: where it is, how it ended, and its headline figures."""

    run_id: str
    path: Path
    name: str
    status: str
    step: int
    total_steps: int
    final_loss: float | None
    final_val_loss: float | None
    samples_per_s: float | None  # None: never measured (the run has not recorded its end)
    wall_s: float | None
    started_at: str
    error: str
    note: str = ""  # what is damaged in the run's files, e.g. "summary.json: unreadable wall_s = \"abc\""

    def as_json(self) -> dict:
        out = asdict(self)
        out["path"] = str(self.path)
        return out


class RunStore:
    """All runs under one directory (default ./runs)."""

    def __init__(self, root: str | Path = "runs"):
        self.root = Path(root)

    def check_writable(self) -> None:
        """Raise ConfigError naming the directory when no run can be created in it (read-only, a file...)."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            os.rmdir(tempfile.mkdtemp(prefix=".write-test-", dir=self.root))
        except OSError as exc:
            raise ConfigError([ConfigProblem(str(self.root), "", None, f"cannot create runs here: "
                                             f"{exc.strerror or exc}; choose another --runs-dir")]) from None

    def create(self, config: RunConfig) -> Path:
        """Make a new run directory holding the resolved config; its name is the run id."""
        self.check_writable()
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        base = f"{stamp}-{config.name}"
        for n in range(1, 10_000):
            run_dir = self.root / (base if n == 1 else f"{base}-{n}")
            try:
                run_dir.mkdir()
                break
            except FileExistsError:
                continue
        save_preset(config, run_dir / CONFIG_NAME)
        return run_dir

    def trained_elsewhere(self, known: set[str] | frozenset[str] = frozenset()) -> list[Path]:
        """The runs some live process trains (a detached run, another terminal's), leaving out `known` ids.

        Cheap for a large store: only a run that is training (or whose process died) has a heartbeat file.
        """
        if not self.root.is_dir():
            return []
        found = []
        with os.scandir(self.root) as entries:
            for entry in entries:
                if (entry.name not in known and entry.is_dir()
                        and os.path.exists(os.path.join(entry.path, HEARTBEAT_FILE))
                        and live_owner(Path(entry.path)) is not None):
                    found.append(Path(entry.path))
        return found

    def list_runs(self) -> list[RunRecord]:
        """Every run with a summary, newest first."""
        if not self.root.is_dir():
            return []
        records = []
        with os.scandir(self.root) as entries:
            for entry in entries:
                if entry.is_dir():
                    record = read_record(Path(entry.path))
                    if record is not None:
                        records.append(record)
        records.sort(key=lambda r: (r.started_at, r.run_id), reverse=True)
        return records


def load_run_config(run_dir: str | Path) -> RunConfig:
    """The resolved config a run was started with."""
    run_dir = Path(run_dir)
    config = load_config(run_dir / CONFIG_NAME)
    # The run's config file is named config.toml; keep the preset's name for display.
    return replace(config, name=read_summary(run_dir).name or config.name)


def write_summary(run_dir: str | Path, summary: RunSummary | dict, **extra) -> None:
    """Write summary.json atomically; where that cannot be done, overwrite it in place.

    A full disk or a directory made read-only refuses the temporary file, but the blocks of the
    existing summary.json (a few hundred bytes) can still take the run's end state: a recorded end
    is worth more than atomicity there. Raises OSError only when neither way works.
    """
    path = Path(run_dir) / SUMMARY_NAME
    data = (asdict(summary) if isinstance(summary, RunSummary) else dict(summary)) | extra
    text = strict_json(data) + "\n"
    try:
        write_atomic(path, text)
    except OSError:
        if not path.exists():
            raise
        with open(path, "r+", encoding="utf-8") as f:
            f.write(text)
            f.truncate()


@dataclass(frozen=True, slots=True)
class SummaryFile:
    """summary.json as read back: the summary (defaults where a field is damaged), its writer's pid, and
    what was wrong with it ("" when the file is intact, or absent: see `found`)."""

    summary: RunSummary
    pid: int | None = None
    found: bool = False
    damage: str = ""


def load_summary(run_dir: str | Path) -> SummaryFile:
    """Read summary.json without trusting it: a hand-edited or half-written file never raises.

    A field of the wrong type (`"wall_s": "abc"`, a null rate, a list status) takes its default and is
    named in `damage`; a file that is not a JSON object keeps every default.
    """
    run_dir = Path(run_dir)
    empty = RunSummary(run_id=run_dir.name, name="", status="")
    path = run_dir / SUMMARY_NAME
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return SummaryFile(empty)
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        return SummaryFile(empty, found=True, damage=f"{SUMMARY_NAME} cannot be read ({why})")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return SummaryFile(empty, found=True, damage=f"{SUMMARY_NAME} is not valid JSON"
                           + (" (empty)" if not text.strip() else ""))
    if not isinstance(data, dict):
        return SummaryFile(empty, found=True, damage=f"{SUMMARY_NAME} holds {type(data).__name__}, not an object")
    values, bad = {"run_id": run_dir.name}, []
    for f in fields(RunSummary):
        if f.name == "run_id" or f.name not in data:
            continue
        ok, value = _typed(f.type if isinstance(f.type, str) else f.type.__name__, data[f.name])
        if ok:
            values[f.name] = value
        else:
            bad.append(f"{f.name} = {format_value(data[f.name], 30)}")
    values.setdefault("name", "")
    values.setdefault("status", "")
    pid = data.get("pid")
    pid = pid if isinstance(pid, int) and not isinstance(pid, bool) and 0 < pid < 2**31 else None
    damage = f"{SUMMARY_NAME}: unreadable {', '.join(bad)}" if bad else ""
    return SummaryFile(RunSummary(**values), pid=pid, found=True, damage=damage)


def read_summary(run_dir: str | Path) -> RunSummary:
    """summary.json as a RunSummary (status "" when missing; damaged fields take their defaults)."""
    return load_summary(run_dir).summary


def _typed(kind: str, value: object) -> tuple[bool, object]:
    """Whether a JSON value fits a RunSummary field's type (as annotated), and the value converted."""
    if value is None:
        return ("None" in kind), None
    if isinstance(value, bool):
        return False, value
    if kind.startswith("int"):
        return isinstance(value, int) and abs(value) < 2**63, value
    if kind.startswith("float"):
        if isinstance(value, float) or (isinstance(value, int) and abs(value) < 2**63):
            return True, float(value)
        return False, value
    if kind.startswith("str"):
        return isinstance(value, str), value
    if kind.startswith("tuple"):
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        return ok, tuple(value) if ok else value
    return False, value


def read_record(run_dir: Path) -> RunRecord | None:
    """One run's listing entry, or None when the directory is not a run.

    A run whose summary.json is missing, damaged or of the wrong shape is listed with a note, so that
    one bad file never hides the others.
    """
    read = load_summary(run_dir)
    if not read.found and not (run_dir / CONFIG_NAME).exists():
        return None
    data = read.summary
    status = escape(data.status)[:20] or "unknown"  # shown in a column: one short line, no terminal escapes
    step, total = data.step, data.total_steps
    # A rate or a time of 0 was never measured (a run that has not recorded its end): listed as unknown.
    loss, val_loss, rate, wall = data.final_loss, data.final_val_loss, data.samples_per_s or None, data.wall_s or None
    if status in ("running", "stopped", "failed"):  # a resumed run is live again before its summary says so
        status = run_status(run_dir, status)
        if status in ("running", "interrupted"):  # where it stands (or stood when its process died)
            beat = read_heartbeat(run_dir)
            step = max(last_step(run_dir), beat.step if beat else 0) or step
            total = (beat.total_steps if beat else 0) or planned_steps(run_dir) or total
            if step != data.step:  # the summary's figures are an earlier attempt's: the metrics have this one's
                latest = latest_figures(run_dir, announced(run_dir, "loss_window") or data.loss_window)
                loss, val_loss, rate = latest.train_loss, latest.val_loss, None
                wall = latest.time if status == "interrupted" else None  # a live run's time is its age
    note = read.damage or ("" if read.found else f"no {SUMMARY_NAME}")
    return RunRecord(run_id=run_dir.name, path=run_dir, name=data.name, status=status,
                     step=step, total_steps=total, final_loss=loss, final_val_loss=val_loss,
                     samples_per_s=rate, wall_s=wall, started_at=data.started_at, error=data.error, note=note)


def resumable(run_dir: Path, recorded: str | None = None) -> str | None:
    """None when `resume` may continue this run now; else the reason it may not, in words."""
    run_dir = Path(run_dir)
    if recorded is None:
        recorded = read_summary(run_dir).status or None
    owner = live_owner(run_dir)
    if owner is not None:
        return (f"the run is still training ({owner.describe()}): follow it with tui-trainer attach "
                f"{run_dir.name}, or stop it with tui-trainer stop {run_dir.name}")
    if recorded == "completed":
        return "the run is already completed; start a new one with tui-trainer run"
    if not (run_dir / CHECKPOINT_FILE).exists():
        status = "interrupted" if recorded in (None, "running") else recorded
        return f"no checkpoint to resume from (status {status})"
    return None
