"""Data: built-in scikit-learn sets and user callables, split, standardised, and cut into steps.

The sample order is a function of the seed and the epoch only, and each optimizer step takes the next
`effective batch` samples of it. How a step is then cut (micro-batches, ranks) never changes which
samples it sees, so strategies and accumulation settings are fair to compare and resume is exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from tui_trainer.config.schema import DataConfig
from tui_trainer.training.usercode import call_user, wrong_result

CLASSIFICATION_SETS = {"digits", "breast_cancer", "wine", "synthetic-classification"}


@dataclass(frozen=True, slots=True)
class TaskData:
    """A task's train and validation data, and what the model must output."""

    task: str  # "regression" or "classification"
    n_features: int
    n_outputs: int
    train: Dataset
    val: Dataset
    tensors: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None  # x/y train, x/y val

    @property
    def metric_name(self) -> str:
        return "r2" if self.task == "regression" else "accuracy"

    @property
    def train_size(self) -> int:
        return len(self.train)


def load_task_data(cfg: DataConfig) -> TaskData:
    """Load the configured dataset: arrays become standardised tensors, user Datasets stay as they are."""
    if ":" not in cfg.dataset:
        x, y, task = _builtin_arrays(cfg)
    else:
        made = call_user("data.dataset", cfg.dataset)
        if isinstance(made, tuple) and len(made) == 2 and all(isinstance(d, Dataset) for d in made):
            return _user_datasets(cfg, made[0], made[1])
        x, y = _user_arrays(cfg.dataset, made)
        task = cfg.task if cfg.task != "auto" else ("classification" if np.issubdtype(y.dtype, np.integer)
                                                     else "regression")
    return _from_arrays(cfg, x, y, task)


def _builtin_arrays(cfg: DataConfig) -> tuple[np.ndarray, np.ndarray, str]:
    import sklearn.datasets as sk

    task = "classification" if cfg.dataset in CLASSIFICATION_SETS else "regression"
    if cfg.dataset == "synthetic-regression":
        x, y = sk.make_regression(n_samples=cfg.samples, n_features=cfg.features,
                                  n_informative=max(1, cfg.features // 2), noise=cfg.noise,
                                  random_state=cfg.split_seed)
    elif cfg.dataset == "synthetic-classification":
        x, y = sk.make_classification(n_samples=cfg.samples, n_features=cfg.features,
                                      n_informative=max(2, cfg.features // 2), n_redundant=0,
                                      n_classes=cfg.classes, n_clusters_per_class=1, random_state=cfg.split_seed)
    else:
        loader = {"diabetes": sk.load_diabetes, "digits": sk.load_digits,
                  "breast_cancer": sk.load_breast_cancer, "wine": sk.load_wine}[cfg.dataset]
        x, y = loader(return_X_y=True)
    return x, y, task


def _from_arrays(cfg: DataConfig, x: np.ndarray, y: np.ndarray, task: str) -> TaskData:
    """Split, standardise with the scaler fitted on the training split only, and make tensors."""
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    stratify = y if task == "classification" else None
    if cfg.val_fraction > 0:
        x_tr, x_va, y_tr, y_va = train_test_split(x, y, test_size=cfg.val_fraction,
                                                  random_state=cfg.split_seed, stratify=stratify)
    else:
        x_tr, x_va, y_tr, y_va = x, x[:0], y, y[:0]
    scaler = StandardScaler().fit(x_tr)
    x_tr = torch.as_tensor(scaler.transform(x_tr), dtype=torch.float32)
    x_va = torch.as_tensor(scaler.transform(x_va) if len(x_va) else x_va, dtype=torch.float32)
    if task == "classification":
        classes = np.unique(y)
        n_outputs = int(max(classes.max() + 1, cfg.classes if ":" in cfg.dataset else 0))
        y_tr, y_va = torch.as_tensor(y_tr, dtype=torch.long), torch.as_tensor(y_va, dtype=torch.long)
    else:
        n_outputs = 1
        y_tr = torch.as_tensor(y_tr, dtype=torch.float32).reshape(-1, 1)
        y_va = torch.as_tensor(y_va, dtype=torch.float32).reshape(-1, 1)
    train = torch.utils.data.TensorDataset(x_tr, y_tr)
    val = torch.utils.data.TensorDataset(x_va, y_va)
    return TaskData(task, x_tr.shape[1], n_outputs, train, val, (x_tr, y_tr, x_va, y_va))


def _user_datasets(cfg: DataConfig, train: Dataset, val: Dataset) -> TaskData:
    x0, y0 = train[0]
    y0 = torch.as_tensor(y0)
    task = cfg.task if cfg.task != "auto" else ("classification" if not y0.is_floating_point() else "regression")
    n_outputs = cfg.classes if task == "classification" else max(1, y0.numel())
    return TaskData(task, int(torch.as_tensor(x0).numel()), n_outputs, train, val, None)


def _user_arrays(path: str, made: object) -> tuple[np.ndarray, np.ndarray]:
    """A user callable's (x, y): numeric, x of shape (samples, features), y one target per sample."""
    if not (isinstance(made, (tuple, list)) and len(made) == 2):
        raise wrong_result("data.dataset", path, f"a {type(made).__name__}; expected (x, y) arrays or "
                           "(train, val) torch Datasets")
    try:
        x, y = (np.asarray(a) for a in made)
    except Exception as exc:
        raise wrong_result("data.dataset", path, f"(x, y) that are not arrays ({type(exc).__name__})") from exc
    if x.ndim != 2 or y.ndim not in (1, 2) or len(x) != len(y) or len(x) < 2:
        raise wrong_result("data.dataset", path, f"x of shape {x.shape} and y of shape {y.shape}; expected x "
                           "(samples, features) and y (samples,) with the same number of samples (2 or more)")
    if not (np.issubdtype(x.dtype, np.number) and np.issubdtype(y.dtype, np.number)):
        raise wrong_result("data.dataset", path, f"x of dtype {x.dtype} and y of dtype {y.dtype}; expected numbers")
    return x, y


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The sample order of one epoch: a permutation drawn from the seed and the epoch alone."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=generator)


def steps_per_epoch(n: int, global_batch: int, world_size: int = 1) -> int:
    """Optimizer steps in one epoch, the last partial one included: the same for any world size, so a
    ddp run takes the steps and samples of one process with the same global batch (a rank whose
    share of a short last step is empty joins it with zero weight)."""
    return -(-n // global_batch)


@dataclass(frozen=True, slots=True)
class StepPlan:
    """How one epoch is cut: per optimizer step, this rank's micro-batches and their loss weights."""

    micro_batches: tuple[tuple[torch.Tensor, ...], ...]
    weights: tuple[tuple[float, ...], ...]


def plan_epoch(n: int, seed: int, epoch: int, batch_size: int, accumulate: int,
               world_size: int = 1, rank: int = 0, device: torch.device | None = None) -> StepPlan:
    """Cut an epoch into steps of `batch x accumulate x world` samples, then into this rank's micro-batches.

    A micro-batch's weight is its share of the step's samples times the world size, so that the
    weighted losses add up (after DDP averages the ranks) to the mean over every sample in the step,
    also when the last step of an epoch is short and its micro-batches are unequal. A rank with no
    sample in a short last step gets one empty micro-batch of weight 0: it still joins the step's
    gradient all-reduce, contributing zeros.
    """
    order = epoch_order(n, seed, epoch)
    if device is not None:
        order = order.to(device)  # indices placed once per epoch, not once per batch
    global_batch = batch_size * accumulate * world_size
    count = steps_per_epoch(n, global_batch, world_size)
    steps, weights = [], []
    for step_indices in order.split(global_batch)[:count]:
        share = torch.tensor_split(step_indices, world_size)[rank] if world_size > 1 else step_indices
        micro = share.split(batch_size)
        total = len(step_indices)
        steps.append(micro)
        weights.append(tuple(len(m) * world_size / total for m in micro))
    return StepPlan(tuple(steps), tuple(weights))


class DeviceLoader:
    """Batches sliced from tensors placed on the device once: no collation, no per-batch copies."""

    def __init__(self, data: TaskData, device: torch.device, dtype: torch.dtype | None = None,
                 target_device: torch.device | None = None):
        x_tr, y_tr, x_va, y_va = data.tensors
        target_device = target_device or device  # model parallel: targets live beside the last stage
        # Inputs take the model's dtype (bf16-true); targets stay as they are: the loss is computed in fp32.
        self.x, self.y = x_tr.to(device=device, dtype=dtype), y_tr.to(target_device)
        self.x_val, self.y_val = x_va.to(device=device, dtype=dtype), y_va.to(target_device)

    def steps(self, plan: StepPlan, start: int = 0):
        """Yield, per optimizer step, a list of (x, y, weight) micro-batches."""
        x, y = self.x, self.y
        same = x.device == y.device
        for micro, weights in zip(plan.micro_batches[start:], plan.weights[start:]):
            if same:
                yield [(x[idx], y[idx], w) for idx, w in zip(micro, weights)]
            else:
                yield [(x[idx], y[idx.to(y.device)], w) for idx, w in zip(micro, weights)]

    def val_batches(self, size: int = 8192):
        """The validation split in large chunks, already on the device."""
        for start in range(0, len(self.x_val), size):
            yield self.x_val[start:start + size], self.y_val[start:start + size]


class TorchDataLoader:
    """The `DataLoader` path: worker processes and pinned memory, fed the same step plan."""

    def __init__(self, data: TaskData, device: torch.device, cfg: DataConfig, dtype: torch.dtype | None = None,
                 target_device: torch.device | None = None):
        self.data, self.device, self.cfg, self.dtype = data, device, cfg, dtype
        self.target_device = target_device or device
        pin = cfg.pin_memory
        self.pin = device.type == "cuda" and (pin is True or (pin == "auto" and _ram_is_plentiful()))

    def _loader(self, dataset: Dataset, batches: list[list[int]]) -> DataLoader:
        return DataLoader(dataset, batch_sampler=batches, num_workers=self.cfg.num_workers,
                          pin_memory=self.pin, persistent_workers=False)

    def _move(self, x: torch.Tensor, y: torch.Tensor):
        return x.to(self.device, dtype=self.dtype, non_blocking=self.pin), y.to(self.target_device,
                                                                                non_blocking=self.pin)

    def steps(self, plan: StepPlan, start: int = 0):
        """Yield, per optimizer step, a list of (x, y, weight) micro-batches."""
        micro_plan = [m.cpu().tolist() for step in plan.micro_batches[start:] for m in step if len(m)]
        batches = iter(self._loader(self.data.train, micro_plan)) if micro_plan else iter(())
        for micro, weights in zip(plan.micro_batches[start:], plan.weights[start:]):
            yield [(*self._move(*(next(batches) if len(m) else self._empty())), w) for m, w in zip(micro, weights)]

    def _empty(self) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch of no samples, shaped like the dataset's (a rank with an empty share of a step)."""
        x0, y0 = self.data.train[0]
        return torch.as_tensor(x0)[None][:0], torch.as_tensor(y0)[None][:0]

    def val_batches(self, size: int = 8192):
        n = len(self.data.val)
        batches = [list(range(s, min(s + size, n))) for s in range(0, n, size)]
        if batches:
            for x, y in self._loader(self.data.val, batches):
                yield self._move(x, y)


def make_loader(data: TaskData, device: torch.device, cfg: DataConfig, dtype: torch.dtype | None = None,
                target_device: torch.device | None = None):
    """The device loader where the data is in memory; the DataLoader for user Datasets (or when asked)."""
    if data.tensors is None or cfg.loader == "dataloader":
        return TorchDataLoader(data, device, cfg, dtype, target_device)
    return DeviceLoader(data, device, dtype, target_device)


def _ram_is_plentiful() -> bool:
    """Pinned pages cannot be swapped: pin only when at least 2 GiB of RAM is free."""
    try:
        import psutil

        return psutil.virtual_memory().available > 2 * 1024**3
    except ImportError:  # pragma: no cover
        return True
