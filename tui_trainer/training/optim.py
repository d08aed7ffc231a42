"""Optimizers and the learning-rate schedule (a pure function of the step, so resume needs no state)."""

from __future__ import annotations

import math

import torch

from tui_trainer.config.schema import OptimizerConfig, RunConfig


def build_optimizer(cfg: OptimizerConfig, parameters) -> torch.optim.Optimizer:
    """The configured optimizer over the given parameters, fused where torch can.

    A fused optimizer updates every parameter in one kernel per step instead of about ten small ops per
    parameter tensor: on the default diabetes MLP (CPU) Adam's step takes 0.48 ms instead of 0.65 ms.
    Where torch cannot fuse (a parameter dtype or device it does not support) the usual one is used.
    """
    parameters = list(parameters)
    try:
        return _optimizer(cfg, parameters, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return _optimizer(cfg, parameters, fused=None)


def _optimizer(cfg: OptimizerConfig, parameters: list, fused: bool | None) -> torch.optim.Optimizer:
    if cfg.name == "sgd":
        return torch.optim.SGD(parameters, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                               fused=fused)
    cls = torch.optim.AdamW if cfg.name == "adamw" else torch.optim.Adam
    return cls(parameters, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused)


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

