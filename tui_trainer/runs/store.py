"""The run store: `runs/<run-id>/` with config.toml, metrics.jsonl, checkpoint.pt and summary.json."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path

from tui_trainer.config import RunConfig, load_config, save_preset
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


def write_summary(run_dir: str | Path, summary: RunSummary | dict, **extra) -> None:
    """Write summary.json atomically; where that cannot be done, overwrite it in place.

    A full disk or a directory made read-only refuses the temporary file, but the blocks of the
    existing summary.json (a few hundred bytes) can still take the run's end state: a recorded end
    is worth more than atomicity there. Raises OSError only when neither way works.
    """
    path = Path(run_dir) / SUMMARY_NAME
    tmp = path.with_name(path.name + ".tmp")
    data = (asdict(summary) if isinstance(summary, RunSummary) else dict(summary)) | extra
    text = json.dumps(data, indent=2, allow_nan=True) + "\n"
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        if not path.exists():
            raise
        with open(path, "r+", encoding="utf-8") as f:
            f.write(text)
            f.truncate()


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
    if status == "running" and not _alive(data.get("pid")):
        status = "interrupted"  # the process that ran it is gone without writing an end state
    return RunRecord(run_id=run_dir.name, path=run_dir, name=data.get("name", ""), status=status,
                     step=data.get("step", 0), total_steps=data.get("total_steps", 0),
                     final_loss=data.get("final_loss"), final_val_loss=data.get("final_val_loss"),
                     samples_per_s=data.get("samples_per_s", 0.0), wall_s=data.get("wall_s", 0.0),
                     started_at=data.get("started_at", ""), error=data.get("error", ""))


def _alive(pid: object) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
