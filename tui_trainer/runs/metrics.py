"""metrics.jsonl: one JSON object a line, appended in small batches, and read back for plots.

Beside it, losses.bin holds every train step's (step, loss) as binary pairs (int64, float64, this
machine's byte order): the same numbers as the jsonl lines, so that a 10^6-step curve is read for a plot
in about 0.3 s instead of about 3 s of parsing 10^6 JSON lines (2 cores). metrics.jsonl stays the record a
user reads and processes; a run without losses.bin (another writer, an older tui-trainer) is read
from the jsonl alone.

Wall time: the last line of each batch of steps and every validation line carry `"time"`, the seconds of
the run's training wall clock at that point: counted from its first step (evaluations, checkpoints and
stalls included, the start-up before the first step not), and continued over resumes from the time
recorded at the step the run resumed from. A train step's time is interpolated between these marks
(`times_at`); a run written before times were recorded has none, and is plotted on steps only.
"""

from __future__ import annotations

import json
import math
import os
import struct
from bisect import bisect_left
from dataclasses import dataclass
from pathlib import Path

from tui_trainer.runs.protocol import write_atomic
from tui_trainer.training.events import EvalResult, RunStarted, TrainProgress

METRICS_NAME = "metrics.jsonl"
LOSSES_NAME = "losses.bin"
_PAIR = struct.Struct("=qd")  # one train step: step (int64), loss (float64)


class MetricsLog:
    """Appends a run's metrics as JSON lines. One write and flush per batch of steps, never per step."""

    def __init__(self, path: str | Path, time_offset: float = 0.0):
        """`time_offset`: the run's wall time before this process's first step (a resume's earlier attempts)."""
        self.path = Path(path)
        self.time_offset = time_offset
        self._file = open(self.path, "a", encoding="utf-8")
        self._losses = open(self.path.with_name(LOSSES_NAME), "ab")
        self._steps_per_epoch = 0

    def record(self, event: object) -> None:
        """Write the lines an event carries (train losses, validation results); ignore other events.

        A write error (a full disk) is raised as an OSError that names the file.
        """
        if isinstance(event, RunStarted):
            self._steps_per_epoch = max(1, event.steps_per_epoch)
        elif isinstance(event, TrainProgress) and event.steps:
            spe = self._steps_per_epoch or 1
            lines = [f'{{"step": {s}, "epoch": {(s - 1) // spe}, "loss": {_number(loss)}}}'
                     for s, loss in zip(event.steps[:-1], event.losses[:-1])]
            last = {"step": event.steps[-1], "epoch": (event.steps[-1] - 1) // spe, "loss": event.losses[-1],
                    "lr": event.lr, "samples_per_s": round(event.samples_per_s, 2),
                    "time": round(self.time_offset + event.elapsed_s, 3)}
            if event.scaler_scale is not None:
                last["scaler_scale"] = event.scaler_scale
                last["skipped_steps"] = event.skipped_steps
            if event.grad_norm is not None:
                last["grad_norm"] = event.grad_norm
            lines.append(json.dumps(last))
            _write(self._file, "\n".join(lines) + "\n")
            _write(self._losses, b"".join(map(_PAIR.pack, event.steps, event.losses)))
        elif isinstance(event, EvalResult):
            line = {"step": event.step, "epoch": event.epoch, "val_loss": event.val_loss,
                    event.metric_name: event.metric}
            if event.elapsed_s is not None:
                line["time"] = round(self.time_offset + event.elapsed_s, 3)
            _write(self._file, json.dumps(line) + "\n")

    def sync(self) -> None:
        """Make every line written so far durable (flushed and fsync'd): called before a checkpoint
        counts, so that a resume from it never finds a hole in the metrics before its step."""
        for f in (self._file, self._losses):
            try:
                f.flush()
                os.fsync(f.fileno())
            except OSError as exc:
                raise OSError(exc.errno, exc.strerror or str(exc), f.name) from exc

    def close(self) -> None:
        """Close both files (both are tried; a write error on the last flush is raised, naming its file)."""
        failure = None
        for f in (self._file, self._losses):
            try:
                f.close()
            except OSError as exc:
                failure = failure or OSError(exc.errno, exc.strerror or str(exc), f.name)
        if failure is not None:
            raise failure


def _write(f, data) -> None:
    """Write and flush one batch; an error (a full disk) is raised as an OSError naming the file."""
    try:
        f.write(data)
        f.flush()
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror or str(exc), f.name) from exc


def _number(value: float) -> str:
    """A float as json.dumps writes it (NaN, Infinity), without its per-call cost."""
    return repr(value) if math.isfinite(value) else json.dumps(value)


@dataclass(frozen=True, slots=True)
class Curves:
    """A run's curves as read from metrics.jsonl."""

    steps: tuple[int, ...]
    losses: tuple[float, ...]
    val_steps: tuple[int, ...]
    val_losses: tuple[float, ...]
    metric_name: str
    metrics: tuple[float, ...]
    # The wall-time marks (metrics.jsonl's "time"): at step time_steps[i], times[i] seconds of the run.
    time_steps: tuple[int, ...] = ()
    times: tuple[float, ...] = ()


def read_curves(path: str | Path) -> Curves:
    """Read a run's train and validation curves from its metrics.jsonl (and losses.bin beside it).

    A torn last line or pair (a killed writer) is skipped.
    """
    path = Path(path)
    if not path.exists():
        return Curves((), (), (), (), "", ())
    text = path.read_text(encoding="utf-8", errors="replace")
    text = text[:text.rfind("\n") + 1]  # every complete line ends with a newline; a torn one does not
    pairs_path = path.with_name(LOSSES_NAME)
    if not pairs_path.exists():
        return _curves_from_lines(text.splitlines())
    data = pairs_path.read_bytes()
    data = memoryview(data)[:len(data) - len(data) % _PAIR.size]
    steps, losses = data.cast("q")[0::2].tolist(), data.cast("d")[1::2].tolist()
    val = _curves_from_lines(_lines_with(text, '"val_loss"'))
    marks = _curves_from_lines(_lines_with(text, '"time"'))  # the few batch-last and validation lines
    return Curves(tuple(steps), tuple(losses), val.val_steps, val.val_losses, val.metric_name, val.metrics,
                  marks.time_steps, marks.times)


def _lines_with(text: str, needle: str) -> list[str]:
    """The lines of `text` that contain `needle` (few, in a large text: found without splitting it)."""
    found = []
    at = text.find(needle)
    while at != -1:
        start, end = text.rfind("\n", 0, at) + 1, text.find("\n", at)
        found.append(text[start:end])
        at = text.find(needle, end)
    return found


def _curves_from_lines(lines: list[str]) -> Curves:
    steps, losses, val_steps, val_losses, metrics, time_steps, times = [], [], [], [], [], [], []
    metric_name = ""
    for line in lines:
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):  # a damaged line is skipped, not fatal to the whole curve
            continue
        if not isinstance(row, dict) or not _is_int(row.get("step")):
            continue
        if not all(_is_number(row[k]) for k in ("loss", "val_loss", "r2", "accuracy") if k in row):
            continue
        if _is_number(row.get("time")) and math.isfinite(row["time"]):
            time_steps.append(row["step"])
            times.append(float(row["time"]))
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
    return Curves(tuple(steps), tuple(losses), tuple(val_steps), tuple(val_losses), metric_name, tuple(metrics),
                  tuple(time_steps), tuple(times))


def times_at(curves: Curves, steps) -> list[float] | None:
    """The run's wall time at each of `steps` (which may be fractional, e.g. a drawn point's mean step):
    linear between the recorded time marks, from (step 0, 0 s) to the first; the last mark's time after
    the last. None when the run recorded no times (written before tui-trainer recorded them)."""
    if not curves.times:
        return None
    marks = sorted(zip(curves.time_steps, curves.times))
    if marks[0][0] > 0:
        marks.insert(0, (0, 0.0))
    xs, ys = [m[0] for m in marks], [m[1] for m in marks]
    out = []
    for s in steps:
        i = bisect_left(xs, s)
        if i == 0:
            out.append(ys[0])
        elif i == len(xs):
            out.append(ys[-1])
        else:
            x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
            out.append(y1 if x1 == x0 else y0 + (y1 - y0) * (s - x0) / (x1 - x0))
    return out


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
    """Keep the lines up to `step` (a resumed run continues from its checkpoint, not from its last log).

    losses.bin is rebuilt from the kept lines, so the two files agree again whatever happened before:
    a kill between their writes, a run written before losses.bin existed, a torn last line.
    """
    path = Path(path)
    if not path.exists():
        return
    kept, pairs = [], []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.endswith("\n"):
                continue  # torn: the next line would be glued onto it
            try:
                row = json.loads(line)
                if row["step"] > step:
                    continue
                pair = _PAIR.pack(row["step"], row["loss"]) if "loss" in row else None
            except (ValueError, RecursionError, KeyError, TypeError, IndexError, struct.error):
                continue  # a damaged line (hand-edited, garbage) is dropped, like a torn one
            kept.append(line)
            if pair is not None:
                pairs.append(pair)
    write_atomic(path, "".join(kept).encode("utf-8"))
    write_atomic(path.with_name(LOSSES_NAME), b"".join(pairs))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def last_step(run_dir: str | Path) -> int:
    """The last step metrics.jsonl reached (its tail only is read: a long run's file is large)."""
    path = Path(run_dir) / METRICS_NAME
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 65536))
            tail = f.read()
    except OSError:
        return 0
    for line in reversed(tail.splitlines()[1 if size > 65536 else 0:]):
        try:
            return int(json.loads(line)["step"])
        except (ValueError, KeyError, TypeError):
            continue
    return 0


@dataclass(frozen=True, slots=True)
class LatestFigures:
    """A run's figures at the last step metrics.jsonl recorded (None: not in the part read)."""

    step: int
    train_loss: float | None  # figures.train_loss over the last `window` logged steps
    val_loss: float | None  # at the last evaluation
    time: float | None  # the run's wall clock at its last time mark (see the module's docstring)


def latest_figures(run_dir: str | Path, window: int, most: int = 8 << 20) -> LatestFigures:
    """The figures of a run at its last recorded step, from the tail of metrics.jsonl (at most `most` bytes
    of it: a long run's file is large), for a run whose process ended without writing its summary."""
    from tui_trainer.training.figures import train_loss

    path = Path(run_dir) / METRICS_NAME
    size = max(65536, 128 * window)
    while True:
        try:
            with open(path, "rb") as f:
                f.seek(0, 2)
                end = f.tell()
                f.seek(max(0, end - size))
                tail = f.read()
        except OSError:
            return LatestFigures(0, None, None, None)
        if end > size:
            tail = tail[tail.find(b"\n") + 1:]  # the first line may be cut
        val = _last_val_loss(tail)
        if val is not None or end <= size or size >= most:
            break
        size *= 4  # the last evaluation is further back than the tail read (a long epoch)
    step, losses, time = 0, [], None
    for line in reversed(tail.splitlines()):
        row = _row(line)
        if row is None:
            continue
        step = step or row["step"]
        if time is None and _is_number(row.get("time")):
            time = float(row["time"])
        if "loss" in row and len(losses) < window and _is_number(row["loss"]):
            losses.append(row["loss"])
        if len(losses) >= window and time is not None:
            break
    losses.reverse()
    return LatestFigures(step, train_loss(losses, window) if window > 0 else None, val, time)


def _last_val_loss(tail: bytes) -> float | None:
    """The val loss of the last readable evaluation line in `tail`."""
    at = tail.rfind(b'"val_loss"')
    while at != -1:
        start = tail.rfind(b"\n", 0, at) + 1
        row = _row(tail[start:tail.find(b"\n", at) if tail.find(b"\n", at) != -1 else len(tail)])
        if row is not None and _is_number(row.get("val_loss")):
            return float(row["val_loss"])
        at = tail.rfind(b'"val_loss"', 0, start)
    return None


def _row(line: bytes) -> dict | None:
    """One metrics.jsonl line as a dict with a whole-number step, or None (torn, damaged)."""
    try:
        row = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return row if isinstance(row, dict) and _is_int(row.get("step")) else None
