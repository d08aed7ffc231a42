"""metrics.jsonl: one JSON object a line, appended in small batches, and read back for plots."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tui_trainer.training.events import EvalResult, RunStarted, TrainProgress

METRICS_NAME = "metrics.jsonl"


class MetricsLog:
    """Appends a run's metrics as JSON lines. One write and flush per batch of steps, never per step."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._file = open(self.path, "a", encoding="utf-8")
        self._steps_per_epoch = 0

    def record(self, event: object) -> None:
        """Write the lines an event carries (train losses, validation results); ignore other events."""
        if isinstance(event, RunStarted):
            self._steps_per_epoch = max(1, event.steps_per_epoch)
        elif isinstance(event, TrainProgress) and event.steps:
            spe = self._steps_per_epoch or 1
            lines = [f'{{"step": {s}, "epoch": {(s - 1) // spe}, "loss": {loss!r}}}'
                     for s, loss in zip(event.steps[:-1], event.losses[:-1])]
            last = {"step": event.steps[-1], "epoch": (event.steps[-1] - 1) // spe, "loss": event.losses[-1],
                    "lr": event.lr, "samples_per_s": round(event.samples_per_s, 2)}
            if event.scaler_scale is not None:
                last["scaler_scale"] = event.scaler_scale
                last["skipped_steps"] = event.skipped_steps
            if event.grad_norm is not None:
                last["grad_norm"] = event.grad_norm
            lines.append(json.dumps(last))
            self._file.write("\n".join(lines) + "\n")
            self._file.flush()
        elif isinstance(event, EvalResult):
            line = {"step": event.step, "epoch": event.epoch, "val_loss": event.val_loss,
                    event.metric_name: event.metric}
            self._file.write(json.dumps(line) + "\n")
            self._file.flush()

    def close(self) -> None:
        self._file.close()


@dataclass(frozen=True, slots=True)
class Curves:
    """A run's curves as read from metrics.jsonl."""

    steps: tuple[int, ...]
    losses: tuple[float, ...]
    val_steps: tuple[int, ...]
    val_losses: tuple[float, ...]
    metric_name: str
    metrics: tuple[float, ...]


def read_curves(path: str | Path) -> Curves:
    """Read train and validation curves; a torn last line (a killed writer) is skipped."""
    steps, losses, val_steps, val_losses, metrics = [], [], [], [], []
    metric_name = ""
    path = Path(path)
    if not path.exists():
        return Curves((), (), (), (), "", ())
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "loss" in row:
                steps.append(row["step"])
                losses.append(row["loss"])
            elif "val_loss" in row:
                val_steps.append(row["step"])
                val_losses.append(row["val_loss"])
                name = "r2" if "r2" in row else "accuracy" if "accuracy" in row else ""
                if name:
                    metric_name = name
                    metrics.append(row[name])
    return Curves(tuple(steps), tuple(losses), tuple(val_steps), tuple(val_losses), metric_name, tuple(metrics))


def downsample(values: tuple[float, ...] | list[float], points: int) -> list[float]:
    """At most `points` values for drawing: the mean of each equal share of the series."""
    n = len(values)
    if n <= points or points <= 0:
        return list(values)
    out = []
    for i in range(points):
        lo, hi = i * n // points, (i + 1) * n // points
        chunk = values[lo:hi]
        out.append(sum(chunk) / len(chunk))
    return out


def truncate_after(path: str | Path, step: int) -> None:
    """Drop lines after `step` (a resumed run continues from its checkpoint, not from its last log line)."""
    path = Path(path)
    if not path.exists():
        return
    kept = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                if json.loads(line)["step"] <= step:
                    kept.append(line)
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(kept), encoding="utf-8")
    tmp.replace(path)
