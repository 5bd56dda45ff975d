"""Learning-rate schedule: linear warm-up then cosine decay, stepped once per iteration."""
from __future__ import annotations

import math

import torch

__all__ = ["WarmupCosine", "build_scheduler"]


class WarmupCosine:
    """Multiplier of the base learning rate at iteration ``step`` (a picklable ``lr_lambda``).

    ``step < warmup``: ``step / warmup`` (linear from 0); then a cosine from 1 down to
    ``eta_min / base_lr`` at ``total`` iterations (held there afterwards).
    """

    def __init__(self, warmup: int, total: int, base_lr: float, eta_min: float = 0.0) -> None:
        if total < 1 or warmup < 0:
            raise ValueError(f"WarmupCosine: need total >= 1 and warmup >= 0 iterations, got "
                             f"total={total}, warmup={warmup}")
        self.warmup, self.total = int(warmup), int(total)
        self.floor = float(eta_min) / float(base_lr) if base_lr > 0 else 0.0

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return step / self.warmup
        span = max(1, self.total - self.warmup)
        progress = min(1.0, (step - self.warmup) / span)
        return self.floor + (1.0 - self.floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(optimizer: torch.optim.Optimizer, *, warmup_steps: int, total_steps: int,
                    base_lr: float, eta_min: float) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` with :class:`WarmupCosine`; call ``.step()`` after every optimiser step."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, WarmupCosine(warmup_steps, total_steps, base_lr, eta_min))
