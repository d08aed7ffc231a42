"""The loss figures a run reports, one definition each. No torch: the UI and the CLI use them too.

- **train loss**: the mean of the train losses of the last `window` logged optimizer steps, where the
  window is one epoch's worth of logged steps (at least 1, at most `MAX_WINDOW`). One step's loss is
  too noisy to read (the last step of an epoch may hold a single sample); an epoch's mean sees every
  sample once. The trainer computes it at each report; the headless lines, summary.json
  (`final_loss`), the runs list, the dashboard, the detail and compare screens and sweeps all show
  that same number, or recompute it from the recorded curve with this module.
- **val loss**: the validation loss at the last evaluation (`final_val_loss` in summary.json).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

MAX_WINDOW = 1000  # logged steps: keeps the figure recent on huge epochs, and its memory bounded


def train_loss_window(steps_per_epoch: int, log_every: int = 1) -> int:
    """How many logged steps the train loss averages: one epoch's worth, between 1 and MAX_WINDOW."""
    return max(1, min(MAX_WINDOW, steps_per_epoch // max(1, log_every)))


def train_loss(losses: Sequence[float], window: int) -> float | None:
    """The train loss: the mean of the finite values among the last `window` losses (None if none)."""
    values = losses if isinstance(losses, (list, tuple)) else list(losses)
    tail = [v for v in values[-max(1, window):] if math.isfinite(v)]
    return sum(tail) / len(tail) if tail else None


def train_loss_label(window: int | None) -> str:
    """How the train loss is labelled on screen: `train loss (mean of last 12 steps)`."""
    if not window:
        return "train loss"
    return f"train loss (mean of last {window:,} step{'s' if window != 1 else ''})"
