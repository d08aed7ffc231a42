"""The preset schema: one frozen dataclass per TOML section, each field documented and bounded.

A field's metadata says what values it allows; `presets.parse_config` checks every field against
it and reports every problem at once. The schema is the single source of truth for the README's
preset reference, the TOML writer and the UI's option pane.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

from tui_trainer.config.choices import PRECISION_NAMES as PRECISIONS
from tui_trainer.config.choices import STRATEGY_CHOICES, device_ids, is_multi_process
from tui_trainer.config.choices import STRATEGY_NAMES as STRATEGIES

BUILTIN_DATASETS = (
    "diabetes",
    "digits",
    "breast_cancer",
    "wine",
    "synthetic-regression",
    "synthetic-classification",
)
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "cosine", "linear")
ACTIVATIONS = ("relu", "gelu", "tanh", "silu", "leaky_relu")

# Upper bounds: every number in a preset is finite and bounded, so a typo (an extra zero run, 1e99, nan)
# is refused before a run directory exists instead of failing (or overflowing) inside torch.
MAX_STEPS = 1_000_000_000  # steps, epochs, intervals
MAX_BATCH = 1_048_576  # samples per micro-batch
MAX_SEED = 2**32 - 1  # numpy and scikit-learn take 32-bit seeds
MAX_DEVICES = 1024  # devices, processes, nodes, stages
MAX_LIST = 64  # entries of a list (hidden widths, split)


def opt(default, kind: str, doc: str, *, choices=None, minimum=None, maximum=None, above=None):
    """A schema field: its default, its kind of value, and the bounds validation enforces."""
    meta = {"kind": kind, "doc": doc, "choices": choices, "min": minimum, "max": maximum, "above": above}
    if isinstance(default, tuple):
        return field(default_factory=lambda: default, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True, slots=True)
class DataConfig:
    """Where the samples come from and how they are batched."""

    dataset: str = opt("diabetes", "dataset", "built-in name, or \"package.module:callable\"")
    batch_size: int = opt(32, "int", "micro-batch per device per forward pass", minimum=1,
                         maximum=MAX_BATCH)
    val_fraction: float = opt(0.2, "float", "share of samples held out for validation", minimum=0.0, maximum=0.9)
    split_seed: int = opt(0, "int", "seed of the train/validation split and of synthetic data", minimum=0,
                         maximum=MAX_SEED)
    samples: int = opt(10_000, "int", "number of samples (synthetic sets)", minimum=10, maximum=100_000_000)
    features: int = opt(20, "int", "number of features (synthetic sets)", minimum=1, maximum=100_000)
    classes: int = opt(2, "int", "number of classes (synthetic-classification, user data)", minimum=2,
                      maximum=100_000)
    noise: float = opt(10.0, "float", "noise of synthetic-regression targets", minimum=0.0, maximum=1e6)
    task: str = opt("auto", "str", "task of user data", choices=("auto", "regression", "classification"))
    loader: str = opt("auto", "str", "device: batches sliced from tensors placed once; dataloader: torch DataLoader",
                      choices=("auto", "device", "dataloader"))
    num_workers: int = opt(0, "int", "DataLoader worker processes", minimum=0, maximum=256)
    pin_memory: object = opt("auto", "pin", "pin host memory for GPU copies: true, false or \"auto\"")


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """The network: the built-in MLP, or a user callable `(in_features, out_features) -> nn.Module`."""

    name: str = opt("mlp", "model", "\"mlp\", or \"package.module:callable\"")
    hidden: tuple = opt((16, 32), "int_list", "hidden layer widths of the MLP", minimum=1, maximum=65_536)
    activation: str = opt("relu", "str", "MLP activation", choices=ACTIVATIONS)
    dropout: float = opt(0.0, "float", "dropout after each hidden layer", minimum=0.0, maximum=0.95)


@dataclass(frozen=True, slots=True)
class OptimizerConfig:
    """The optimizer and its hyper-parameters."""

    name: str = opt("adam", "str", "optimizer", choices=OPTIMIZERS)
    lr: float = opt(1e-3, "float", "peak learning rate", above=0.0, maximum=1e9)
    weight_decay: float = opt(0.0, "float", "weight decay", minimum=0.0, maximum=1e3)
    momentum: float = opt(0.9, "float", "momentum (sgd only)", minimum=0.0, maximum=1.0)


@dataclass(frozen=True, slots=True)
class ScheduleConfig:
    """The learning-rate schedule over optimizer steps."""

    name: str = opt("constant", "str", "learning-rate schedule after warm-up", choices=SCHEDULES)
    warmup_steps: int = opt(0, "int", "linear warm-up steps from 0 to optimizer.lr", minimum=0,
                       maximum=MAX_STEPS)
    min_lr_ratio: float = opt(0.0, "float", "final lr as a share of optimizer.lr (cosine, linear)",
                              minimum=0.0, maximum=1.0)


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """How long, how numbers are computed, and how often to evaluate and checkpoint."""

    epochs: int = opt(100, "int", "passes over the training split", minimum=1, maximum=MAX_STEPS)
    max_steps: int = opt(0, "int", "optimizer steps; when set (> 0) the run ends there instead of after epochs",
                         minimum=0, maximum=MAX_STEPS)
    seed: int = opt(0, "int", "seed of weights, sample order and dropout", minimum=0, maximum=MAX_SEED)
    precision: str = opt("fp32", "str", "how numbers are computed", choices=PRECISIONS)
    accumulate: int = opt(1, "int", "micro-batches per optimizer step", minimum=1, maximum=65_536)
    grad_clip: float = opt(0.0, "float", "clip the gradient norm to this value (0 = off)", minimum=0.0,
                          maximum=1e9)
    eval_every: int = opt(0, "int", "evaluate every N optimizer steps (0 = at the end of each epoch)", minimum=0,
                         maximum=MAX_STEPS)
    checkpoint_every: int = opt(0, "int", "checkpoint every N optimizer steps (0 = at the end and on stop)",
                                minimum=0, maximum=MAX_STEPS)
    checkpoint_minutes: float = opt(10.0, "float", "checkpoint at least every N minutes of training (0 = off)",
                                     minimum=0.0, maximum=1e6)
    threads: int = opt(0, "int", "torch CPU threads per process (0 = auto: 1 when parameters x batch is under "
                                 "1M, else torch's default)", minimum=0, maximum=1024)
    max_skipped_in_row: int = opt(100, "int", "fp16: optimizer steps the GradScaler may skip in a row (inf "
                                             "gradients) before the run ends as diverged", minimum=1,
                                  maximum=1_000_000)
    compile: bool = opt(False, "bool", "torch.compile the model (compiled during the first step, whose time "
                                       "is reported apart from the training time)")


@dataclass(frozen=True, slots=True)
class StrategyConfig:
    """Where the model runs and how many copies of it there are."""

    name: str = opt("cpu", "str", "where and how many copies of the model", choices=STRATEGIES)
    devices: object = opt(1, "devices", "a count of devices/processes, or a list of GPU ids (torch's visible ids)")
    accelerator: str = opt("auto", "str", "auto: GPUs when the machine has them, else CPU", choices=("auto", "cpu", "gpu"))
    nodes: int = opt(1, "int", "machines taking part (ddp)", minimum=1, maximum=MAX_DEVICES)
    rdzv_endpoint: str = opt("", "str", "host:port of the c10d rendezvous (multi-node ddp)")
    rdzv_timeout: int = opt(120, "int", "multi-node ddp: seconds to wait for every node to join, and for the "
                                        "endpoint to answer, before the run fails", minimum=1, maximum=86_400)
    split: tuple = opt((), "int_list", "model-parallel, hybrid: layers per stage (empty = balance by parameters)",
                       minimum=1, maximum=10_000)
    stages: int = opt(2, "int", "hybrid: model-parallel stages per replica (devices = replicas x stages)",
                      minimum=1, maximum=MAX_DEVICES)


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    """What the run records besides its checkpoint."""

    every: int = opt(1, "int", "record the train loss every N optimizer steps", minimum=1, maximum=MAX_STEPS)
    tensorboard: bool = opt(False, "bool", "also write loss curves with torch's SummaryWriter")


SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "model": ModelConfig,
    "optimizer": OptimizerConfig,
    "schedule": ScheduleConfig,
    "train": TrainConfig,
    "strategy": StrategyConfig,
    "logging": LoggingConfig,
}


@dataclass(frozen=True, slots=True)
class RunConfig:
    """A whole run, as read from a preset and its overrides: validated, immutable."""

    name: str = "run"
    description: str = ""
    source: str = "<defaults>"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)

    @property
    def world_size(self) -> int:
        """Processes (ddp) or model replicas (dp) that share one optimizer step's batch."""
        s = self.strategy
        if not is_multi_process(s.name):
            return 1
        per_replica = s.stages if s.name == "hybrid" else 1
        return device_count(s.devices) // per_replica * s.nodes

    @property
    def effective_batch(self) -> int:
        """Samples per optimizer step: batch x accumulation x world size (x dp replicas)."""
        replicas = device_count(self.strategy.devices) if _has_replicas(self.strategy.name) else 1
        return self.data.batch_size * self.train.accumulate * self.world_size * replicas


# Samples of the built-in sets that are not synthetic (scikit-learn's loaders), to check batches before a run.
BUILTIN_SIZES = {"diabetes": 442, "digits": 1797, "breast_cancer": 569, "wine": 178}


def train_samples(data: DataConfig) -> int | None:
    """Samples in the training split of a built-in set (None for user data: known once loaded)."""
    total = data.samples if data.dataset.startswith("synthetic-") else BUILTIN_SIZES.get(data.dataset)
    if total is None:
        return None
    return total - math.ceil(total * data.val_fraction)  # scikit-learn's train_test_split rounds the test share up
def _has_replicas(strategy_name: str) -> bool:
    choice = STRATEGY_CHOICES.get(strategy_name)
    return choice is not None and choice.splits_batch


def device_count(devices: object) -> int:
    """The number of devices a `strategy.devices` value names (a count or a list of ids)."""
    return len(device_ids(devices))


def to_dict(config: RunConfig) -> dict:
    """The config as plain TOML-ready data (every field, defaults included)."""
    out: dict = {"description": config.description}
    for section_name in SECTIONS:
        section = getattr(config, section_name)
        out[section_name] = {f.name: as_written(getattr(section, f.name)) for f in fields(section)}
    return out


def as_written(value: object) -> object:
    """A value as TOML (and a problem message) writes it: tuples of GPU ids as lists."""
    return list(value) if isinstance(value, tuple) else value
