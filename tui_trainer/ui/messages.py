"""The messages the app's parts send each other: small dataclasses, all in one place.

Full-state messages: each carries (or names) the whole current state, so a newer one replaces an
older one and a screen that misses one loses nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from tui_trainer.config import PresetEntry, RunConfig
from tui_trainer.runs import Curves, RunRecord
from tui_trainer.ui.options import Evaluated


@dataclass
class OptionsChanged(Message):
    """The options pane re-validated: the config to run (None when it does not parse) and its problems."""

    evaluated: Evaluated | None


@dataclass
class StartRun(Message):
    """Start a new run of this config and open its dashboard."""

    config: RunConfig


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
    """New GPU and process readings are in the app's MachineView (about once a second)."""


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


@dataclass
class CurvesLoaded(Message):
    """A run's metrics.jsonl was read (in a worker) for its full curve."""

    run_id: str
    curves: Curves
