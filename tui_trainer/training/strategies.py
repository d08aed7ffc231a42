"""Strategies: where the model runs and how many copies of it there are. One class each, by name.

The loop only talks to this interface: `setup_model`, `no_sync`, `reduce_mean`, `unwrap`. A new
strategy is one new class registered in `STRATEGIES`; the loop does not change.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from tui_trainer.config.schema import RunConfig


class Strategy:
    """One process, one device. The base of every strategy."""

    name = "cpu"
    world_size = 1
    rank = 0

    def __init__(self, config: RunConfig, device: torch.device):
        self.config = config
        self.device = device

    @property
    def is_main(self) -> bool:
        """Whether this process writes files and reports (rank 0)."""
        return self.rank == 0

    @property
    def input_device(self) -> torch.device:
        """Where batches must be placed for the forward pass."""
        return self.device

    @property
    def output_device(self) -> torch.device:
        """Where the model's outputs (and so the targets) live."""
        return self.device

    def describe(self) -> str:
        return str(self.device)

    def setup_model(self, model: nn.Module) -> nn.Module:
        """Place (and wrap) the model for this strategy."""
        return model.to(self.device)

    def unwrap(self, model: nn.Module) -> nn.Module:
        """The plain model under any wrapper, whose state_dict a checkpoint keeps."""
        return model

    def no_sync(self, model: nn.Module):
        """Skip the gradient all-reduce for a non-final micro-batch (a no-op with one process)."""
        return contextlib.nullcontext()

    def reduce_mean(self, values: torch.Tensor) -> torch.Tensor:
        """Average a tensor over processes (identity with one process)."""
        return values

    def reduce_sum(self, values: torch.Tensor) -> torch.Tensor:
        """Sum a tensor over processes (identity with one process)."""
        return values

    def peak_memory_mib(self) -> float | None:
        """Peak memory of this run on its devices (GPU: torch's peak allocated; CPU: process max RSS)."""
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def teardown(self) -> None:
        """Release what setup took (process groups, workers)."""


class CpuStrategy(Strategy):
    """The model and every batch on the CPU."""

    name = "cpu"


class SingleGpuStrategy(Strategy):
    """The model and every batch on one GPU, chosen by its visible id."""

    name = "single"

    def setup_model(self, model: nn.Module) -> nn.Module:
        torch.cuda.set_device(self.device)
        return model.to(self.device)


STRATEGIES: dict[str, type[Strategy]] = {"cpu": CpuStrategy, "single": SingleGpuStrategy}


def make_strategy(config: RunConfig) -> Strategy:
    """Build the configured strategy on this process's device."""
    name = config.strategy.name
    if name not in STRATEGIES:
        raise NotImplementedError(f"strategy \"{name}\" is not available in this version")
    if name == "cpu":
        device = torch.device("cpu")
    else:
        devices = config.strategy.devices
        index = devices[0] if isinstance(devices, tuple) else 0
        device = torch.device("cuda", index)
    return STRATEGIES[name](config, device)
