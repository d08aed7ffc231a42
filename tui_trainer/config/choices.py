"""The strategies and precisions a preset can name, and what each needs: one list, no torch.

The schema's allowed values, the machine validation and the app's option choices all read these
tables; the training registries (`training.strategies.STRATEGIES`, `training.precision.PRECISIONS`)
hold one class per name, and a test checks that the classes declare the same needs as the entries here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StrategyChoice:
    """A strategy as validation sees it.

    Attributes:
        name: the preset's `strategy.name`.
        needs_gpu: runs only on GPUs (single, dp, model-parallel unless `accelerator = "cpu"`).
        multi_process: one process per device, launched through torchrun (ddp, hybrid).
        splits_batch: several model copies in one process split each forward's batch (dp).
        summary: one line for the README and the app.
    """

    name: str
    needs_gpu: bool
    multi_process: bool
    splits_batch: bool
    summary: str


@dataclass(frozen=True, slots=True)
class PrecisionChoice:
    """A precision as validation sees it.

    Attributes:
        name: the preset's `train.precision`.
        needs_gpu: only a CUDA GPU computes it (fp16 with a GradScaler, TF32 tensor cores).
        needs_ampere: needs compute capability 8.0+ (bf16 and TF32 tensor cores).
        summary: one line for the README and the app.
    """

    name: str
    needs_gpu: bool
    needs_ampere: bool
    summary: str


STRATEGY_CHOICES: dict[str, StrategyChoice] = {c.name: c for c in (
    StrategyChoice("cpu", False, False, False, "the model and every batch on the CPU"),
    StrategyChoice("single", True, False, False, "one GPU"),
    StrategyChoice("dp", True, False, True, "nn.DataParallel: one process, one replica per GPU"),
    StrategyChoice("ddp", False, True, False, "DistributedDataParallel: one process per device (GPUs or CPU)"),
    StrategyChoice("model-parallel", True, False, False, "consecutive layers on different devices"),
    StrategyChoice("hybrid", False, True, False, "ddp over processes that each hold a model-parallel pipeline"),
)}

PRECISION_CHOICES: dict[str, PrecisionChoice] = {c.name: c for c in (
    PrecisionChoice("fp32", False, False, "float32 everywhere"),
    PrecisionChoice("tf32", True, True, "float32 storage, TF32 tensor-core matmuls"),
    PrecisionChoice("fp16-mixed", True, False, "float16 autocast with a GradScaler"),
    PrecisionChoice("bf16-mixed", False, True, "bfloat16 autocast, float32 weights"),
    PrecisionChoice("bf16-true", False, True, "bfloat16 weights and compute"),
)}

STRATEGY_NAMES: tuple[str, ...] = tuple(STRATEGY_CHOICES)
PRECISION_NAMES: tuple[str, ...] = tuple(PRECISION_CHOICES)


def is_multi_process(strategy_name: str) -> bool:
    """Whether a strategy runs one process per device under torchrun (ddp, hybrid)."""
    choice = STRATEGY_CHOICES.get(strategy_name)
    return choice is not None and choice.multi_process


def device_ids(devices: object) -> tuple[int, ...]:
    """The device positions a `strategy.devices` value names: its ids, or 0..count-1 for a count."""
    return tuple(devices) if isinstance(devices, (list, tuple)) else tuple(range(int(devices)))


def lists_ids(devices: object) -> bool:
    """Whether `strategy.devices` lists GPU ids (a list) rather than giving a count."""
    return isinstance(devices, (list, tuple))
