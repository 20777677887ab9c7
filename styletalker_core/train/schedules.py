"""Learning-rate schedules named in recipes (``lr_schedule``)."""

from __future__ import annotations

import math

import torch

from styletalker_core.recipe.schema import StageConfig


def lr_factor(config: StageConfig, step: int) -> float:
    """Multiplier of the base learning rate at ``step`` (0-based) of a stage of ``config.steps`` steps."""
    if config.lr_schedule == "constant":
        return 1.0
    warmup = config.warmup_steps if config.lr_schedule == "warmup_cosine" else 0
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, config.steps - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def build_scheduler(optimizer: torch.optim.Optimizer, config: StageConfig) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(config, step))
