"""Optimizers and the learning-rate schedule (a pure function of the step, so resume needs no state)."""

from __future__ import annotations

import math

import torch

from tui_trainer.config.schema import OptimizerConfig, RunConfig


def build_optimizer(cfg: OptimizerConfig, parameters) -> torch.optim.Optimizer:
    """The configured optimizer over the given parameters."""
    if cfg.name == "sgd":
        return torch.optim.SGD(parameters, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if cfg.name == "adamw":
        return torch.optim.AdamW(parameters, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(parameters, lr=cfg.lr, weight_decay=cfg.weight_decay)


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

