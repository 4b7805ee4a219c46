"""Learning-rate schedule: linear warm-up, then cosine decay to a floor.

Why a hand-written factor inside torch's ``LambdaLR`` and not torch's own ``SequentialLR(LinearLR,
CosineAnnealingLR)``: that chain matches this factor to 2e-16 up to ``total_steps`` but then
climbs back up the cosine (CosineAnnealingLR is periodic past ``T_max``, measured: 0.100 -> 0.139
eight steps later with a 0.1 floor), where this one stays at the floor; it computes each rate
from the previous one, so it cannot be asked the rate at an arbitrary step; and a multi-phase run
(:func:`geobridge.train.engine.phased_warmup_cosine`: a fresh warm-up + cosine per phase, scaled
by the phase's learning rate) would need a nest of schedulers whose state dicts must all resume
together. A pure function of the global step resumes exactly from ``LambdaLR``'s step counter
alone, in any phase.
"""

from __future__ import annotations

import math

import torch


def warmup_cosine_factor(step: int, total_steps: int, warmup_steps: int = 0, min_ratio: float = 0.0) -> float:
    """The multiplier of the base learning rate at optimizer step ``step`` (0-based).

    Rises linearly from ``1/(warmup+1)`` to 1 over ``warmup_steps`` steps, then follows a half
    cosine from 1 down to ``min_ratio`` at ``total_steps``; stays at ``min_ratio`` afterwards.
    """
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    decay_steps = max(1, total_steps - warmup_steps)
    progress = min(1.0, max(0.0, (step - warmup_steps) / decay_steps))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def warmup_cosine(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int = 0, min_ratio: float = 0.0
) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` following :func:`warmup_cosine_factor`; its state dict resumes exactly."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: warmup_cosine_factor(step, total_steps, warmup_steps, min_ratio)
    )
