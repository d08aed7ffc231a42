"""The messages the app's parts send each other: small dataclasses, all in one place.

Full-state messages: each carries (or names) the whole current state, so a newer one replaces an
older one and a screen that misses one loses nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from tui_trainer.config import PresetEntry
from tui_trainer.runs import Curves, RunRecord
from tui_trainer.session.monitor import MachineReading
from tui_trainer.training.events import RunSummary


@dataclass
class RunUpdated(Message):
    """A followed run has new events folded into its RunState (sent at most 10 times a second)."""

    run_id: str


@dataclass
class RunEnded(Message):
    """A followed run ended (completed, stopped, failed, diverged)."""

    run_id: str
    status: str


@dataclass
class MachineSampled(Message):
    """New GPU and process readings, with their short histories (about once a second)."""

    reading: MachineReading


@dataclass
class PresetsLoaded(Message):
    """The presets directory was read (at start, and after saving a preset)."""

    entries: list[PresetEntry]
    highlight: str | None = None


@dataclass
class RunsLoaded(Message):
    """The run store was listed (in a worker)."""

    records: list[RunRecord]
    settings: dict | None = None  # run id -> RunSettings (runs/settings.py), read in the same worker
    listing: int = 0  # which listing this is: a slower earlier one arriving late is dropped


@dataclass
class RunLoaded(Message):
    """A finished run's summary.json and metrics.jsonl were read (in a worker): its figures and full curves."""

    run_id: str
    summary: RunSummary
    curves: Curves
    damage: str = ""  # what in the run's files is damaged, shown beside its figures


@dataclass
class ConfigsCompared(Message):
    """The compared runs' configs were read (in a worker): the keys whose values differ, with each run's value."""

    differences: list


@dataclass
class RunsDeleted(Message):
    """Runs were deleted from the store (in a worker): what went, what was kept as live, what could not go."""

    deleted: list[str]
    kept: list[str]
    failed: list[str]
