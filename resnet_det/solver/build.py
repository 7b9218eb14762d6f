"""Optimizer and lr-schedule builders: cfg -> keyword arguments -> objects."""
import logging
from typing import Any, Dict, List

import torch
from torch import nn

from .lr_scheduler import WarmupCosineLR, WarmupMultiStepLR, WarmupPlateauLR

__all__ = ["NORM_MODULE_TYPES", "get_param_groups", "build_sgd", "build_optimizer",
           "build_lr_scheduler"]

logger = logging.getLogger(__name__)

# Modules whose affine parameters are "norm" parameters (weight decay WEIGHT_DECAY_NORM).
# _NormBase covers BatchNorm*, SyncBatchNorm and InstanceNorm*.
NORM_MODULE_TYPES = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm,
                     nn.LocalResponseNorm)


def get_param_groups(model: nn.Module, *, weight_decay: float,
                     weight_decay_norm: float) -> List[Dict[str, Any]]:
    """Trainable parameters split into (at most) two groups: norm layers' parameters with
    ``weight_decay_norm``, everything else (weights and biases alike) with ``weight_decay``.

    Frozen parameters (requires_grad False, e.g. FreezeAt stages) are left out; a parameter
    shared by several modules is listed once.
    """
    seen = set()
    norm_params, other_params = [], []
    for module in model.modules():
        is_norm = isinstance(module, NORM_MODULE_TYPES)
        for p in module.parameters(recurse=False):
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            (norm_params if is_norm else other_params).append(p)
    groups = []
    if other_params:
        groups.append({"params": other_params, "weight_decay": weight_decay})
    if norm_params:
        groups.append({"params": norm_params, "weight_decay": weight_decay_norm})
    if not groups:
        raise ValueError(f"{type(model).__name__} has no trainable parameter to optimize")
    return groups


def build_sgd(model: nn.Module, *, base_lr: float, momentum: float = 0.9,
              nesterov: bool = False, weight_decay: float = 1e-4,
              weight_decay_norm: float = 0.0) -> torch.optim.SGD:
    """SGD with momentum as the paper trains (Sec. 3.4: momentum 0.9, weight decay 1e-4).

    Args:
        model: the (unwrapped or DDP) model.
        base_lr: learning rate before any schedule multiplier.
        momentum: SGD momentum.
        nesterov: Nesterov momentum.
        weight_decay: L2 decay for weights and biases.
        weight_decay_norm: L2 decay for norm layers' scale and shift.
    """
    if base_lr <= 0:
        raise ValueError(f"build_sgd: base_lr must be > 0, got {base_lr}")
    if nesterov and momentum <= 0:
        raise ValueError("build_sgd: nesterov=True needs momentum > 0")
    groups = get_param_groups(model, weight_decay=weight_decay,
                              weight_decay_norm=weight_decay_norm)
    return torch.optim.SGD(groups, lr=base_lr, momentum=momentum, nesterov=nesterov)


def build_optimizer(cfg, model: nn.Module) -> torch.optim.Optimizer:
    """SGD from cfg.SOLVER (BASE_LR, MOMENTUM, NESTEROV, WEIGHT_DECAY, WEIGHT_DECAY_NORM)."""
    s = cfg.SOLVER
    return build_sgd(model, base_lr=s.BASE_LR, momentum=s.MOMENTUM, nesterov=s.NESTEROV,
                     weight_decay=s.WEIGHT_DECAY, weight_decay_norm=s.WEIGHT_DECAY_NORM)


def build_lr_scheduler(cfg, optimizer: torch.optim.Optimizer):
    """The schedule named by SOLVER.LR_SCHEDULER_NAME, with SOLVER.WARMUP_* warm-up."""
    s = cfg.SOLVER
    warmup = dict(warmup_factor=s.WARMUP_FACTOR, warmup_iters=s.WARMUP_ITERS,
                  warmup_method=s.WARMUP_METHOD)
    name = s.LR_SCHEDULER_NAME
    if name == "WarmupMultiStepLR":
        steps = [x for x in s.STEPS]
        return WarmupMultiStepLR(optimizer, milestones=steps, max_iter=s.MAX_ITER,
                                 gamma=s.GAMMA, **warmup)
    if name == "WarmupCosineLR":
        return WarmupCosineLR(optimizer, max_iter=s.MAX_ITER, **warmup)
    if name == "ReduceLROnPlateau":
        if not s.PLATEAU_METRIC:
            raise ValueError("SOLVER.LR_SCHEDULER_NAME = ReduceLROnPlateau needs "
                             "SOLVER.PLATEAU_METRIC (the evaluation result to watch)")
        if cfg.TEST.EVAL_PERIOD <= 0:
            raise ValueError("SOLVER.LR_SCHEDULER_NAME = ReduceLROnPlateau needs periodic "
                             "evaluation: set TEST.EVAL_PERIOD > 0")
        return WarmupPlateauLR(optimizer, max_iter=s.MAX_ITER, metric=s.PLATEAU_METRIC,
                               mode=s.PLATEAU_MODE, gamma=s.GAMMA,
                               patience=s.PLATEAU_PATIENCE, **warmup)
    raise ValueError(f"Unknown SOLVER.LR_SCHEDULER_NAME {name!r}: use WarmupMultiStepLR, "
                     "WarmupCosineLR or ReduceLROnPlateau")
