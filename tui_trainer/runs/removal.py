"""Deleting runs from the store: chosen by id, age and status, never one that is still training."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path

from tui_trainer.runs.liveness import live_owner
from tui_trainer.runs.store import RunRecord


def is_live(run_dir: str | Path) -> bool:
    """Whether a run is still training: a process holds its lock or beats its heartbeat (runs.liveness).

    The one place that decides it for deletion.
    """
    return live_owner(Path(run_dir)) is not None


def select_runs(records: list[RunRecord], *, ids: tuple[str, ...] = (), older_than_days: float | None = None,
                status: str | None = None, now: datetime | None = None) -> list[RunRecord]:
    """The records named by `ids` (all when none are named) that also pass the age and status filters."""
    chosen = [r for r in records if r.run_id in ids] if ids else list(records)
    if status:
        chosen = [r for r in chosen if r.status == status]
    if older_than_days is not None:
        cutoff = (now or datetime.now()) - timedelta(days=older_than_days)
        chosen = [r for r in chosen if _started(r) < cutoff]
    return chosen


def split_live(records: list[RunRecord], *, also_live: frozenset[str] | set[str] = frozenset()
               ) -> tuple[list[RunRecord], list[RunRecord]]:
    """(deletable, live): the records split by `is_live`; `also_live` names runs the caller itself trains."""
    live = [r for r in records if r.run_id in also_live or is_live(r.path)]
    return [r for r in records if r not in live], live


def remove_run(run_dir: str | Path) -> bool:
    """Delete one run's directory; False (nothing deleted) when the run is live."""
    if is_live(run_dir):
        return False
    shutil.rmtree(run_dir)
    return True


def _started(record: RunRecord) -> datetime:
    try:
        return datetime.fromisoformat(record.started_at)
    except ValueError:  # no start time recorded: the directory's age
        return datetime.fromtimestamp(record.path.stat().st_mtime)
