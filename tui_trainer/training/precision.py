"""Precisions: how numbers are computed. One class each, registered by name in `PRECISIONS`.

A precision owns everything numeric about a step, as Lightning's precision plugins do: the forward's
autocast, the backward, unscaling before clipping, the optimizer step, the skipped-step count and its
own state in the checkpoint. fp16's GradScaler lives inside `Fp16Mixed`; the loop never sees a scaler.
The names and needs (GPU, Ampere) are declared torch-free in `config.choices`, which validation reads.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn


class AutocastForward(nn.Module):
    """Runs the wrapped module's forward inside `torch.autocast(device_type, dtype)`.

    Autocast's dtype is thread-local: `nn.DataParallel` runs each replica in a new thread and re-enters
    `autocast(device_type, enabled=True)` without a dtype, which on CUDA means float16. A bf16-mixed dp
    run would compute in fp16 without a scaler. Entering autocast inside the replicated module's own
    forward gives every replica thread the run's dtype.
    """

    def __init__(self, module: nn.Module, device_type: str, dtype: torch.dtype):
        super().__init__()
        self.module = module
        self.device_type = device_type
        self.dtype = dtype

    def forward(self, *args, **kwargs):
        with torch.autocast(device_type=self.device_type, dtype=self.dtype):
            return self.module(*args, **kwargs)


class Precision:
    """fp32: every tensor and every matmul in full float32. The base of the others; one per run."""

    name = "fp32"
    autocast_dtype: torch.dtype | None = None
    param_dtype: torch.dtype | None = None  # set: the model's weights themselves change dtype
    needs_gpu = False  # declared in config.choices too; a test keeps the two in step
    needs_ampere = False

    def __init__(self, device: torch.device):
        self.device = device

    def configure(self) -> None:
        """Set process-wide numeric modes (TF32 matmuls are off unless asked for)."""
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False

    def prepare_model(self, model: nn.Module) -> nn.Module:
        """Cast the weights where the precision says so (bf16-true); else leave them in fp32."""
        return model.to(self.param_dtype) if self.param_dtype is not None else model

    def replica_module(self, model: nn.Module, device_type: str) -> nn.Module:
        """The module that runs in each DataParallel replica thread (with autocast inside, if any)."""
        if self.autocast_dtype is None:
            return model
        return AutocastForward(model, device_type, self.autocast_dtype)

    def autocast(self):
        """The context the forward pass runs in."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)

    def backward(self, loss: torch.Tensor) -> None:
        """Back-propagate one micro-batch's loss."""
        loss.backward()

    def unscale(self, optimizer: torch.optim.Optimizer) -> None:
        """Bring the gradients to their true size before clipping (only a scaled precision does work)."""

    def optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Apply the gradients (a scaled precision may skip the step on inf/NaN gradients)."""
        optimizer.step()

    def read_skipped(self) -> torch.Tensor | None:
        """(steps skipped for inf/NaN gradients so far, steps skipped in a row now) as one device tensor
        (None: this precision skips none).

        Read it together with the losses at report time: reading it alone would be a host sync.
        """
        return None

    def loss_scale(self) -> float | None:
        """The current loss scale (a host sync: report time only), or None without a scaler."""
        return None

    def state_dict(self) -> dict | None:
        """What a checkpoint keeps of this precision (the scaler), or None."""
        return None

    def load_state_dict(self, state: dict | None) -> None:
        """Restore `state_dict()`."""


class Tf32(Precision):
    """fp32 storage, TF32 tensor-core matmuls (10-bit mantissa): faster on Ampere+ at little accuracy cost."""

    name = "tf32"
    needs_gpu = True
    needs_ampere = True

    def configure(self) -> None:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


class Fp16Mixed(Precision):
    """float16 autocast; a GradScaler scales the loss so small gradients do not underflow.

    A step whose gradients hold inf/NaN is skipped by the scaler. The skips are counted on the device
    (the scaler's found-inf flags are added to a counter): with a fused optimizer the scaler never reads
    the scale on the host, and neither does this count, so fp16 steps run without a host sync.
    """

    name = "fp16-mixed"
    autocast_dtype = torch.float16
    needs_gpu = True

    def __init__(self, device: torch.device):
        super().__init__(device)
        self.scaler = torch.amp.GradScaler(device.type)
        # (steps skipped so far, steps skipped in a row now), on the device: read with the losses.
        self._skipped = torch.zeros(2, dtype=torch.float32, device=device)

    def backward(self, loss: torch.Tensor) -> None:
        self.scaler.scale(loss).backward()

    def unscale(self, optimizer: torch.optim.Optimizer) -> None:
        self.scaler.unscale_(optimizer)

    def optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        scaler = self.scaler
        scaler.step(optimizer)
        # The flags scaler.step computed (one per device holding gradients), before update() clears them.
        # There is no public accessor that does not read the scale on the host.
        found = scaler._per_optimizer_states[id(optimizer)]["found_inf_per_device"]
        flags = [f.to(self._skipped.device, non_blocking=True) for f in found.values()]
        if flags:
            hit = flags[0].reshape(()) if len(flags) == 1 else (torch.stack(flags).sum() > 0).float()
            self._skipped[0].add_(hit)
            self._skipped[1].mul_(hit).add_(hit)  # a taken step starts the count in a row again
        scaler.update()

    def read_skipped(self) -> torch.Tensor:
        return self._skipped

    def loss_scale(self) -> float:
        return float(self.scaler.get_scale())

    def state_dict(self) -> dict:
        return self.scaler.state_dict()

    def load_state_dict(self, state: dict | None) -> None:
        if state:
            self.scaler.load_state_dict(state)


class Bf16Mixed(Precision):
    """bfloat16 autocast, float32 weights: fp32's range, so no scaler."""

    name = "bf16-mixed"
    autocast_dtype = torch.bfloat16
    needs_ampere = True


class Bf16True(Precision):
    """The weights themselves in bfloat16: half the memory, least accurate."""

    name = "bf16-true"
    param_dtype = torch.bfloat16
    needs_ampere = True


PRECISIONS: dict[str, type[Precision]] = {cls.name: cls for cls in (Precision, Tf32, Fp16Mixed, Bf16Mixed, Bf16True)}


def make_precision(name: str, device: torch.device) -> Precision:
    """The precision registered under a name (validated by the config already), for a run on `device`."""
    return PRECISIONS[name](device)

