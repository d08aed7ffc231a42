"""Strategies: where the model runs and how many copies of it there are. One class each, by name.

The loop only talks to this interface (`setup_model`, `no_sync`, `reduce_sum`, `unwrap`,
`eval_model`, `input_device`, `output_device`, `world_size`, `rank`, `replicas`). A new strategy is
one new class with `@register`, which declares what it needs (`needs_gpu`, `multi_process`,
`splits_batch`, checked by a test against `config.choices`, where validation reads them) and how it
is built (`create`); `make_strategy` looks the name up; the loop does not change.
"""

from __future__ import annotations

import contextlib
import os

import torch
from torch import nn

from tui_trainer.config.choices import device_ids
from tui_trainer.config.schema import RunConfig

STRATEGIES: dict[str, type[Strategy]] = {}


def register(cls: type[Strategy]) -> type[Strategy]:
    """Add a strategy class to `STRATEGIES` under its `name`."""
    STRATEGIES[cls.name] = cls
    return cls


class Strategy:
    """One process, one device. The base of every strategy."""

    name = "cpu"
    needs_gpu = False  # what the strategy needs, as config.choices declares it for validation
    multi_process = False  # one process per device, started by torchrun
    splits_batch = False  # several model copies in this process split each forward's batch
    world_size = 1
    rank = 0
    local_rank = 0
    replicas = 1  # model copies that split one forward's batch (DataParallel)

    def __init__(self, config: RunConfig, device: torch.device):
        self.config = config
        self.device = device
        self.precision = None  # the run's Precision, set by the trainer before setup_model

    @classmethod
    def create(cls, config: RunConfig, on_gpu: bool, ids: tuple[int, ...]) -> Strategy:
        """This process's strategy for a config: `ids` are the devices' positions or GPU ids."""
        return cls(config, torch.device("cuda", ids[0]) if on_gpu else torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        """Whether this process writes the run's files and reports (the first process of its node)."""
        return self.local_rank == 0

    @property
    def input_device(self) -> torch.device:
        """Where batches must be placed for the forward pass."""
        return self.device

    @property
    def output_device(self) -> torch.device:
        """Where the model's outputs (and so the targets) live."""
        return self.device

    @property
    def devices(self) -> tuple[torch.device, ...]:
        """Every device this process uses."""
        return (self.device,)

    def describe(self) -> str:
        return str(self.device)

    def notes(self) -> tuple[str, ...]:
        """What the user should know about this choice (shown in the log and the summary)."""
        return ()

    def setup_model(self, model: nn.Module) -> nn.Module:
        """Place (and wrap) the model for this strategy."""
        return model.to(self.device)

    def unwrap(self, model: nn.Module) -> nn.Module:
        """The plain model under any wrapper, whose state_dict a checkpoint keeps."""
        return model

    def eval_model(self, model: nn.Module) -> nn.Module:
        """The module to run validation through (no gradient exchange)."""
        return self.unwrap(model)

    def no_sync(self, model: nn.Module):
        """Skip the gradient all-reduce for a non-final micro-batch (a no-op with one process)."""
        return contextlib.nullcontext()

    def reduce_sum(self, values: torch.Tensor) -> torch.Tensor:
        """Sum a tensor over processes (identity with one process)."""
        return values

    def peak_memory_mib(self) -> float | None:
        """Peak memory of this run (GPU: torch's peak allocated on the first device; CPU: process max RSS)."""
        if self.device.type == "cuda":
            return max(torch.cuda.max_memory_allocated(d) for d in self.devices) / 2**20
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def teardown(self) -> None:
        """Release what setup took (process groups)."""


@register
class CpuStrategy(Strategy):
    """The model and every batch on the CPU."""

    name = "cpu"

    @classmethod
    def create(cls, config: RunConfig, on_gpu: bool, ids: tuple[int, ...]) -> Strategy:
        return cls(config, torch.device("cpu"))

    def notes(self) -> tuple[str, ...]:
        threads = torch.get_num_threads()
        return (f"CPU with {threads} thread{'' if threads == 1 else 's'}",)


@register
class SingleGpuStrategy(Strategy):
    """The model and every batch on one GPU, chosen by its visible id."""

    name = "single"
    needs_gpu = True

    @classmethod
    def create(cls, config: RunConfig, on_gpu: bool, ids: tuple[int, ...]) -> Strategy:
        return cls(config, torch.device("cuda", ids[0]))

    def setup_model(self, model: nn.Module) -> nn.Module:
        torch.cuda.set_device(self.device)
        return model.to(self.device)

    def notes(self) -> tuple[str, ...]:
        return (f"GPU {self.device.index}: {torch.cuda.get_device_name(self.device)}; on tiny data "
                "per-step launch overhead can make a GPU slower than the CPU",)


@register
class DataParallelStrategy(Strategy):
    """`nn.DataParallel`: one process; each forward's batch scattered over the GPUs from the first one."""

    name = "dp"
    needs_gpu = True
    splits_batch = True

    @classmethod
    def create(cls, config: RunConfig, on_gpu: bool, ids: tuple[int, ...]) -> Strategy:
        return cls(config, ids)

    def __init__(self, config: RunConfig, device_ids: tuple[int, ...]):
        super().__init__(config, torch.device("cuda", device_ids[0]))
        self.device_ids = device_ids
        self.replicas = len(device_ids)

    @property
    def devices(self) -> tuple[torch.device, ...]:
        return tuple(torch.device("cuda", i) for i in self.device_ids)

    def describe(self) -> str:
        return f"DataParallel on GPUs {', '.join(map(str, self.device_ids))}"

    def notes(self) -> tuple[str, ...]:
        return (f"inputs, outputs and the loss live on GPU {self.device_ids[0]}, which holds more memory "
                "than the others (see the memory panels)",
                "DataParallel runs one Python thread per GPU and copies the weights every step: "
                "ddp (one process per GPU) is faster")

    def setup_model(self, model: nn.Module) -> nn.Module:
        torch.cuda.set_device(self.device)
        self.plain = model.to(self.device)
        return nn.DataParallel(replica_module(self.plain, self.precision, "cuda"), device_ids=list(self.device_ids),
                               output_device=self.device)

    def unwrap(self, model: nn.Module) -> nn.Module:
        return self.plain


def replica_module(model: nn.Module, precision, device_type: str) -> nn.Module:
    """What nn.DataParallel replicates: the model, with the precision's autocast entered in its forward.

    DataParallel's replica threads re-enter autocast without a dtype (thread-local: float16 on CUDA),
    so a bf16-mixed run would compute in fp16; see `precision.AutocastForward`.
    """
    return precision.replica_module(model, device_type) if precision is not None else model


@register
class DistributedStrategy(Strategy):
    """`DistributedDataParallel`: this process is one rank of a torchrun job (nccl on GPUs, gloo on CPU)."""

    name = "ddp"
    multi_process = True

    @classmethod
    def create(cls, config: RunConfig, on_gpu: bool, ids: tuple[int, ...]) -> Strategy:
        if "RANK" not in os.environ:
            raise RuntimeError(f"{cls.name} runs in torchrun worker processes; start it with tui-trainer run "
                               "or the Runner")
        return cls.from_environment(config, on_gpu)

    def __init__(self, config: RunConfig, device: torch.device, rank: int, world_size: int, local_rank: int):
        super().__init__(config, device)
        self.rank, self.world_size, self.local_rank = rank, world_size, local_rank

    @classmethod
    def from_environment(cls, config: RunConfig, use_gpu: bool) -> "DistributedStrategy":
        """Join the process group torchrun describes in RANK, WORLD_SIZE and LOCAL_RANK."""
        import torch.distributed as dist

        rank, world, local = (int(os.environ[k]) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
        if use_gpu:
            device = torch.device("cuda", device_ids(config.strategy.devices)[local])
            torch.cuda.set_device(device)
            dist.init_process_group("nccl", device_id=device)
        else:
            device = torch.device("cpu")
            dist.init_process_group("gloo")
        return cls(config, device, rank, world, local)

    def describe(self) -> str:
        where = "GPU" if self.device.type == "cuda" else "CPU process"
        return f"DDP rank {self.rank}/{self.world_size} ({where} {self.device})"

    def notes(self) -> tuple[str, ...]:
        notes = [f"DDP over {self.world_size} processes ({'nccl' if self.device.type == 'cuda' else 'gloo'}); "
                 "each optimizer step's samples are split across ranks"]
        if self.world_size == 1:
            notes.append("ddp with one process exchanges no gradients: single is the same without the launcher")
        if self.config.train.accumulate > 1:
            notes.append("non-final micro-batches run inside no_sync(): gradients are reduced once per step")
        return tuple(notes)

    def setup_model(self, model: nn.Module) -> nn.Module:
        from torch.nn.parallel import DistributedDataParallel

        model = model.to(self.device)
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=device_ids)

    def unwrap(self, model: nn.Module) -> nn.Module:
        return model.module

    def no_sync(self, model: nn.Module):
        return model.no_sync()

    def reduce_sum(self, values: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        dist.all_reduce(values)
        return values

    def teardown(self) -> None:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


class Pipeline(nn.Module):
    """Consecutive stages of one model on different devices; activations are moved between them."""

    def __init__(self, stages: list[nn.Sequential], devices: list[torch.device]):
        super().__init__()
        self.stages = nn.ModuleList(stage.to(device) for stage, device in zip(stages, devices))
        self.stage_devices = devices

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage, device in zip(self.stages, self.stage_devices):
            x = stage(x.to(device, non_blocking=True))
        return x


@register
class ModelParallelStrategy(Strategy):
    """The model's layers cut into consecutive stages on the listed devices (balanced by parameters)."""

    name = "model-parallel"
    needs_gpu = True

    @classmethod
    def create(cls, config: RunConfig, on_gpu: bool, ids: tuple[int, ...]) -> Strategy:
        return cls(config, [torch.device("cuda", i) if on_gpu else torch.device("cpu") for i in ids])

    def __init__(self, config: RunConfig, stage_devices: list[torch.device]):
        super().__init__(config, stage_devices[0])
        self.stage_devices = stage_devices
        self.plain: nn.Module | None = None
        self.stage_sizes: list[int] = []

    @property
    def output_device(self) -> torch.device:
        return self.stage_devices[-1]

    @property
    def devices(self) -> tuple[torch.device, ...]:
        return tuple(dict.fromkeys(self.stage_devices))

    def describe(self) -> str:
        return f"model parallel: {len(self.stage_devices)} stages on {', '.join(map(str, self.stage_devices))}"

    def notes(self) -> tuple[str, ...]:
        return (f"layers per stage: {self.stage_sizes}; only one stage computes at a time (no pipelining), "
                "so this saves memory per device rather than time",)

    def setup_model(self, model: nn.Module) -> nn.Module:
        if not isinstance(model, nn.Sequential):
            raise TypeError("model-parallel cuts an nn.Sequential into stages; "
                            f"this model is a {type(model).__name__}")
        blocks = layer_blocks(model)
        split = list(self.config.strategy.split) or balance(blocks, len(self.stage_devices))
        if sum(split) != len(blocks) or len(split) != len(self.stage_devices):
            raise ValueError(f"strategy.split = {split}: expected {len(self.stage_devices)} stage sizes adding up to "
                             f"the model's {len(blocks)} layers")
        stages, start = [], 0
        for size in split:
            stages.append(nn.Sequential(*[m for block in blocks[start:start + size] for m in block]))
            start += size
        self.stage_sizes = split
        self.plain = model
        return Pipeline(stages, self.stage_devices)

    def unwrap(self, model: nn.Module) -> nn.Module:
        # The original nn.Sequential shares its modules with the stages: its state_dict has the plain keys.
        return self.plain if self.plain is not None else model

    def eval_model(self, model: nn.Module) -> nn.Module:
        return model


def layer_blocks(model: nn.Sequential) -> list[list[nn.Module]]:
    """Group a Sequential into layers: each module with parameters, with the parameter-free ones after it."""
    blocks: list[list[nn.Module]] = []
    for module in model:
        if any(True for _ in module.parameters()) or not blocks:
            blocks.append([module])
        else:
            blocks[-1].append(module)
    return blocks


def balance(blocks: list[list[nn.Module]], stages: int) -> list[int]:
    """Layers per stage, contiguous, so that the largest stage holds as few parameters as possible."""
    sizes = [sum(p.numel() for m in block for p in m.parameters()) for block in blocks]
    if stages > len(blocks):
        raise ValueError(f"cannot cut {len(blocks)} layers into {stages} stages")
    best: tuple[int, list[int]] | None = None

    def search(start: int, left: int, taken: list[int], worst: int) -> None:
        nonlocal best
        if best is not None and worst >= best[0]:
            return
        if left == 1:
            total = max(worst, sum(sizes[start:]))
            if best is None or total < best[0]:
                best = (total, [*taken, len(sizes) - start])
            return
        for end in range(start + 1, len(sizes) - left + 2):
            search(end, left - 1, [*taken, end - start], max(worst, sum(sizes[start:end])))

    search(0, stages, [], 0)
    return best[1]


@register
class HybridStrategy(DistributedStrategy):
    """Model-parallel stages, each replica data-parallel: DDP over processes that each hold a Pipeline."""

    name = "hybrid"

    @classmethod
    def from_environment(cls, config: RunConfig, use_gpu: bool) -> "HybridStrategy":
        """Join torchrun's process group; this rank's stages take its share of `strategy.devices`."""
        import torch.distributed as dist

        rank, world, local = (int(os.environ[k]) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
        stages = config.strategy.stages
        if use_gpu:
            ids = device_ids(config.strategy.devices)
            stage_devices = [torch.device("cuda", i) for i in ids[local * stages:(local + 1) * stages]]
            torch.cuda.set_device(stage_devices[0])
            dist.init_process_group("nccl")
        else:
            stage_devices = [torch.device("cpu")] * stages
            dist.init_process_group("gloo")
        strategy = cls(config, stage_devices[0], rank, world, local)
        strategy.pipeline = ModelParallelStrategy(config, stage_devices)
        return strategy

    @property
    def output_device(self) -> torch.device:
        return self.pipeline.output_device

    @property
    def devices(self) -> tuple[torch.device, ...]:
        return self.pipeline.devices

    def describe(self) -> str:
        return f"hybrid rank {self.rank}/{self.world_size}: {self.pipeline.describe()}"

    def notes(self) -> tuple[str, ...]:
        return (*super().notes(), *self.pipeline.notes())

    def setup_model(self, model: nn.Module) -> nn.Module:
        from torch.nn.parallel import DistributedDataParallel

        # A module spread over several devices is wrapped with device_ids=None: DDP then leaves placement alone.
        return DistributedDataParallel(self.pipeline.setup_model(model), device_ids=None)

    def unwrap(self, model: nn.Module) -> nn.Module:
        return self.pipeline.unwrap(model.module)

    def eval_model(self, model: nn.Module) -> nn.Module:
        return model.module


def make_strategy(config: RunConfig) -> Strategy:
    """Build the configured strategy for this process (ddp: from torchrun's environment)."""
    from tui_trainer.config.validate import uses_gpu
    from tui_trainer.hardware.machine import detect_machine

    s = config.strategy
    on_gpu = uses_gpu(config, detect_machine()) and torch.cuda.is_available()
    return STRATEGIES[s.name].create(config, on_gpu, device_ids(s.devices))
