"""The run store: `runs/<run-id>/` with config.toml, metrics.jsonl, checkpoint.pt and summary.json."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path

from tui_trainer.config import RunConfig, load_config, save_preset
from tui_trainer.runs.liveness import live_owner, read_heartbeat, run_status
from tui_trainer.runs.metrics import last_step
from tui_trainer.runs.protocol import CHECKPOINT_FILE, planned_steps, write_atomic
from tui_trainer.training.events import RunSummary

CONFIG_NAME = "config.toml"
SUMMARY_NAME = "summary.json"


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
    samples_per_s: float
    wall_s: float
    started_at: str
    error: str

    def as_json(self) -> dict:
        out = asdict(self)
        out["path"] = str(self.path)
        return out


class RunStore:
    """All runs under one directory (default ./runs)."""

    def __init__(self, root: str | Path = "runs"):
        self.root = Path(root)

    def create(self, config: RunConfig) -> Path:
        """Make a new run directory holding the resolved config; its name is the run id."""
        self.root.mkdir(parents=True, exist_ok=True)
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
    return replace(config, name=read_summary(run_dir).get("name") or config.name)


def write_summary(run_dir: str | Path, summary: RunSummary, **extra) -> None:
    """Write summary.json atomically."""
    data = asdict(summary) | extra
    write_atomic(Path(run_dir) / SUMMARY_NAME, json.dumps(data, indent=2, allow_nan=True) + "\n")


def read_summary(run_dir: str | Path) -> dict:
    """summary.json as a dict (empty when missing or unreadable)."""
    try:
        return json.loads((Path(run_dir) / SUMMARY_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def read_record(run_dir: Path) -> RunRecord | None:
    """One run's listing entry, or None when the directory is not a run."""
    data = read_summary(run_dir)
    if not data:
        return None
    status = data.get("status", "unknown")
    step, total = data.get("step", 0), data.get("total_steps", 0)
    if status in ("running", "stopped", "failed"):  # a resumed run is live again before its summary says so
        status = run_status(run_dir, status)
        if status in ("running", "interrupted"):  # where it stands (or stood when its process died)
            beat = read_heartbeat(run_dir)
            step = max(last_step(run_dir), beat.step if beat else 0) or step
            total = (beat.total_steps if beat else 0) or planned_steps(run_dir) or total
    return RunRecord(run_id=run_dir.name, path=run_dir, name=data.get("name", ""), status=status,
                     step=step, total_steps=total,
                     final_loss=data.get("final_loss"), final_val_loss=data.get("final_val_loss"),
                     samples_per_s=data.get("samples_per_s", 0.0), wall_s=data.get("wall_s", 0.0),
                     started_at=data.get("started_at", ""), error=data.get("error", ""))


def resumable(run_dir: Path, recorded: str | None = None) -> str | None:
    """None when `resume` may continue this run now; else the reason it may not, in words."""
    run_dir = Path(run_dir)
    if recorded is None:
        recorded = read_summary(run_dir).get("status")
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
