"""Precisions: how numbers are computed. Each is a small class behind one interface, chosen by name."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch


@dataclass(frozen=True, slots=True)
class Precision:
    """fp32: every tensor and every matmul in full float32. The base of the others."""

    name: str = "fp32"
    autocast_dtype: torch.dtype | None = None
    needs_scaler: bool = False
    param_dtype: torch.dtype | None = None  # set: the model's weights themselves change dtype

    def configure(self, device: torch.device) -> None:
        """Set process-wide numeric modes (TF32 matmuls are off unless asked for)."""
        if device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False

    def prepare_model(self, model: torch.nn.Module) -> torch.nn.Module:
        """Cast the weights where the precision says so (bf16-true); else leave them in fp32."""
        return model.to(self.param_dtype) if self.param_dtype is not None else model

    def autocast(self, device: torch.device):
        """The context the forward pass runs in."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=self.autocast_dtype)

    def make_scaler(self, device: torch.device) -> torch.amp.GradScaler | None:
        """A GradScaler where small fp16 gradients would underflow without one."""
        return torch.amp.GradScaler(device.type) if self.needs_scaler else None


@dataclass(frozen=True, slots=True)
class Tf32(Precision):
    """fp32 storage, TF32 tensor-core matmuls (10-bit mantissa): faster on Ampere+ at little accuracy cost."""

    name: str = "tf32"

    def configure(self, device: torch.device) -> None:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


PRECISIONS: dict[str, Precision] = {p.name: p for p in (
    Precision("fp32"),
    Tf32(),
    Precision("fp16-mixed", torch.float16, needs_scaler=True),
    Precision("bf16-mixed", torch.bfloat16),
    Precision("bf16-true", None, param_dtype=torch.bfloat16),
)}


def get_precision(name: str) -> Precision:
    """The precision registered under a name (validated by the config already)."""
    return PRECISIONS[name]
