"""What a run tells the world, as small immutable messages. No torch, no UI: anyone may import them.

The trainer emits them in batches (never one per step); the runner writes them to disk and puts them
on a queue that the UI or the headless printer drains at its own pace.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class RunStarted:
    """The run is built and about to take its first step."""

    run_id: str
    run_dir: str
    device: str
    total_steps: int
    steps_per_epoch: int
    start_step: int
    effective_batch: int
    world_size: int
    parameters: int
    train_samples: int
    notes: tuple[str, ...] = ()
    loss_window: int = 0  # logged steps the "train loss" figure averages (figures.py)


@dataclass(frozen=True, slots=True)
class TrainProgress:
    """The train losses of the steps since the last report, and where the run stands."""

    step: int
    epoch: int
    steps: tuple[int, ...]
    losses: tuple[float, ...]
    lr: float
    samples_per_s: float
    elapsed_s: float
    eta_s: float
    grad_norm: float | None = None
    scaler_scale: float | None = None
    skipped_steps: int = 0
    # Per CUDA device of the training process: (torch index, allocated, reserved, peak allocated) in MiB.
    # The app shows these in its memory panels: the training may run in another process than the app.
    device_memory: tuple[tuple[int, float, float, float], ...] = ()
    # The wall-clock seconds `samples_per_s` is measured over: the last 10 s of the run (less at its
    # start), evaluations, checkpoints and stalls included.
    rate_window_s: float = 0.0
    # The run's "train loss" figure (figures.py): the mean of the last `loss_window` logged steps.
    train_loss: float | None = None


@dataclass(frozen=True, slots=True)
class EvalResult:
    """Validation after a step: loss and the task metric (R^2 or accuracy)."""

    step: int
    epoch: int
    val_loss: float
    metric_name: str
    metric: float
    elapsed_s: float | None = None  # seconds since this process's first step, as TrainProgress.elapsed_s


@dataclass(frozen=True, slots=True)
class CheckpointSaved:
    step: int
    path: str


@dataclass(frozen=True, slots=True)
class LogLine:
    """A line for the run's log pane: notes, warnings and errors."""

    level: str
    text: str


@dataclass(frozen=True, slots=True)
class RankState:
    """One worker process of a multi-process run (ddp): its rank and what it is doing."""

    rank: int
    state: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class RunSummary:
    """How a run ended; written to summary.json."""

    run_id: str
    name: str
    status: str
    step: int = 0
    total_steps: int = 0
    epoch: int = 0
    final_loss: float | None = None
    final_val_loss: float | None = None
    best_val_loss: float | None = None
    metric_name: str = ""
    metric: float | None = None
    samples_per_s: float = 0.0
    wall_s: float = 0.0
    peak_memory_mib: float | None = None
    skipped_steps: int = 0
    error: str = ""
    started_at: str = ""
    finished_at: str = ""
    device: str = ""
    effective_batch: int = 0
    notes: tuple[str, ...] = field(default=())
    loss_window: int = 0  # final_loss is the mean train loss of this many last logged steps (figures.py)
    compile_s: float | None = None  # train.compile: seconds of the first step, where the model compiled
    train_s: float | None = None  # seconds of training, compile_s excluded


@dataclass(frozen=True, slots=True)
class RunFinished:
    """The run ended (completed, stopped, failed or diverged); nothing more will follow."""

    summary: RunSummary


Event = RunStarted | TrainProgress | EvalResult | CheckpointSaved | LogLine | RankState | RunFinished


EVENT_TYPES: dict[str, type] = {cls.__name__: cls for cls in (
    RunStarted, TrainProgress, EvalResult, CheckpointSaved, LogLine, RankState, RunFinished)}


def event_to_json(event: Event) -> str:
    """One event as a JSON line (how ddp workers hand events to the process that shows the run)."""
    import json
    from dataclasses import asdict

    return json.dumps({"type": type(event).__name__, **asdict(event)})


def event_from_json(line: str) -> Event:
    """The event a JSON line written by `event_to_json` describes."""
    import json

    data = json.loads(line)
    cls = EVENT_TYPES[data.pop("type")]
    if cls is RunFinished:
        return RunFinished(_build(RunSummary, data["summary"]))
    return _build(cls, data)


def _tuples(value):
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def _build(cls: type, data: dict):
    from dataclasses import fields

    values = {}
    for f in fields(cls):
        if f.name in data:
            value = data[f.name]
            values[f.name] = _tuples(value)
    return cls(**values)
