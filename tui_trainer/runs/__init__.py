"""Runs: a run's whole life (its process, its files, liveness, stop, resume) and the RunStore. No torch at import."""

from tui_trainer.runs.liveness import RunBusy, live_owner
from tui_trainer.runs.metrics import Curves, downsample, read_curves
from tui_trainer.runs.protocol import request_stop
from tui_trainer.runs.launcher import create_runner, resume_runner
from tui_trainer.runs.runner import Runner
from tui_trainer.runs.store import (
    RunRecord,
    RunStore,
    SummaryFile,
    load_run_config,
    load_summary,
    read_record,
    read_summary,
    resumable,
)

__all__ = ["Curves", "downsample", "read_curves", "Runner", "create_runner", "RunRecord", "RunStore", "load_run_config",
           "read_record", "read_summary", "load_summary", "SummaryFile", "RunBusy", "live_owner", "resumable",
           "request_stop", "resume_runner"]
