"""Optimizer (SGD with momentum, per-group weight decay) and lr schedules with warm-up."""

from .build import build_lr_scheduler, build_optimizer, build_sgd, get_param_groups
from .lr_scheduler import (
    LRMultiplier,
    WarmupCosineLR,
    WarmupMultiStepLR,
    WarmupParamScheduler,
    WarmupPlateauLR,
    warmup_factor_at_iter,
)

__all__ = [
    "build_lr_scheduler",
    "build_optimizer",
    "build_sgd",
    "get_param_groups",
    "LRMultiplier",
    "WarmupCosineLR",
    "WarmupMultiStepLR",
    "WarmupParamScheduler",
    "WarmupPlateauLR",
    "warmup_factor_at_iter",
]
