"""Runs: the Runner (a job in a background thread) and the RunStore on disk. No torch at import."""

from tui_trainer.runs.metrics import Curves, downsample, read_curves
from tui_trainer.runs.runner import Runner, create_runner
from tui_trainer.runs.store import (
    RunRecord,
    RunStore,
    SummaryFile,
    load_run_config,
    load_summary,
    read_record,
    read_summary,
)

__all__ = ["Curves", "downsample", "read_curves", "Runner", "create_runner", "RunRecord", "RunStore", "load_run_config",
           "read_record", "read_summary", "load_summary", "SummaryFile"]
