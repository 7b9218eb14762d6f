"""Optimizer and lr-schedule builders: cfg -> keyword arguments -> objects."""

import logging
from typing import Any, Dict, List, Optional

import torch
from torch import nn

from .lr_scheduler import WarmupCosineLR, WarmupMultiStepLR, WarmupPlateauLR

__all__ = [
    "NORM_MODULE_TYPES",
    "get_param_groups",
    "build_sgd",
    "build_optimizer",
    "build_lr_scheduler",
]

logger = logging.getLogger(__name__)

# Modules whose affine parameters are "norm" parameters (weight decay WEIGHT_DECAY_NORM).
# _NormBase covers BatchNorm*, SyncBatchNorm and InstanceNorm*.
NORM_MODULE_TYPES = (
    nn.modules.batchnorm._NormBase,
    nn.GroupNorm,
    nn.LayerNorm,
    nn.LocalResponseNorm,
)


def get_param_groups(
    model: nn.Module,
    *,
    weight_decay: float,
    weight_decay_norm: float,
    base_lr: Optional[float] = None,
    bias_lr_factor: float = 1.0,
    weight_decay_bias: Optional[float] = None,
) -> List[Dict[str, Any]]:
    """Trainable parameters split into groups by their hyper-parameters: norm layers'
    parameters take ``weight_decay_norm``, everything else ``weight_decay``; with the bias
    options (detectron2's semantics), every parameter named "bias", a norm layer's included,
    takes ``base_lr * bias_lr_factor`` and, when given, ``weight_decay_bias``.

    Groups, in this order and only when not empty: other parameters, norm parameters, then
    (only when ``bias_lr_factor != 1`` or ``weight_decay_bias`` is given) other biases and norm
    biases. With the defaults there are at most the first two, as before these options
    existed, so optimizer checkpoints stay compatible. Frozen parameters (requires_grad
    False, e.g. FreezeAt stages) are left out; a parameter shared by several modules is
    listed once.

    Args:
        model: the model.
        weight_decay: L2 decay of weights (and biases, unless ``weight_decay_bias``).
        weight_decay_norm: L2 decay of norm layers' scale and shift.
        base_lr: the learning rate ``bias_lr_factor`` multiplies (needed when it is not 1).
        bias_lr_factor: learning-rate multiplier of biases (Caffe's ``lr_mult: 2``: 2.0).
        weight_decay_bias: L2 decay of biases; None: as the other parameters of their module.
    """
    split_bias = bias_lr_factor != 1.0 or weight_decay_bias is not None
    if bias_lr_factor != 1.0 and base_lr is None:
        raise ValueError("get_param_groups: bias_lr_factor != 1 needs base_lr")
    seen = set()
    params: Dict[str, List[nn.Parameter]] = {"other": [], "norm": [], "bias": [], "norm_bias": []}
    for module in model.modules():
        is_norm = isinstance(module, NORM_MODULE_TYPES)
        for name, p in module.named_parameters(recurse=False):
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            kind = "norm" if is_norm else "other"
            if split_bias and name == "bias":
                kind = "norm_bias" if is_norm else "bias"
            params[kind].append(p)
    bias_decay = {} if weight_decay_bias is None else {"weight_decay": weight_decay_bias}
    bias_lr = {} if bias_lr_factor == 1.0 else {"lr": base_lr * bias_lr_factor}
    hyper = {
        "other": {"weight_decay": weight_decay},
        "norm": {"weight_decay": weight_decay_norm},
        "bias": {"weight_decay": weight_decay, **bias_decay, **bias_lr},
        "norm_bias": {"weight_decay": weight_decay_norm, **bias_decay, **bias_lr},
    }
    groups = [{"params": params[k], **hyper[k]} for k in params if params[k]]
    if not groups:
        raise ValueError(f"{type(model).__name__} has no trainable parameter to optimize")
    return groups


def build_sgd(
    model: nn.Module,
    *,
    base_lr: float,
    momentum: float = 0.9,
    nesterov: bool = False,
    weight_decay: float = 1e-4,
    weight_decay_norm: float = 0.0,
    bias_lr_factor: float = 1.0,
    weight_decay_bias: Optional[float] = None,
) -> torch.optim.SGD:
    """SGD with momentum as the paper trains (Sec. 3.4: momentum 0.9, weight decay 1e-4).

    Args:
        model: the (unwrapped or DDP) model.
        base_lr: learning rate before any schedule multiplier.
        momentum: SGD momentum.
        nesterov: Nesterov momentum.
        weight_decay: L2 decay for weights (and biases, unless ``weight_decay_bias``).
        weight_decay_norm: L2 decay for norm layers' scale and shift.
        bias_lr_factor: biases train at ``base_lr * bias_lr_factor`` (the schedule scales it
            like the others).
        weight_decay_bias: L2 decay for biases; None: as their module's other parameters.
    """
    if base_lr <= 0:
        raise ValueError(f"build_sgd: base_lr must be > 0, got {base_lr}")
    if nesterov and momentum <= 0:
        raise ValueError("build_sgd: nesterov=True needs momentum > 0")
    if bias_lr_factor <= 0:
        raise ValueError(f"build_sgd: bias_lr_factor must be > 0, got {bias_lr_factor}")
    groups = get_param_groups(
        model,
        weight_decay=weight_decay,
        weight_decay_norm=weight_decay_norm,
        base_lr=base_lr,
        bias_lr_factor=bias_lr_factor,
        weight_decay_bias=weight_decay_bias,
    )
    return torch.optim.SGD(groups, lr=base_lr, momentum=momentum, nesterov=nesterov)


def build_optimizer(cfg, model: nn.Module) -> torch.optim.Optimizer:
    """SGD from cfg.SOLVER (BASE_LR, MOMENTUM, NESTEROV, WEIGHT_DECAY, WEIGHT_DECAY_NORM,
    BIAS_LR_FACTOR, WEIGHT_DECAY_BIAS)."""
    s = cfg.SOLVER
    return build_sgd(
        model,
        base_lr=s.BASE_LR,
        momentum=s.MOMENTUM,
        nesterov=s.NESTEROV,
        weight_decay=s.WEIGHT_DECAY,
        weight_decay_norm=s.WEIGHT_DECAY_NORM,
        bias_lr_factor=s.BIAS_LR_FACTOR,
        weight_decay_bias=s.WEIGHT_DECAY_BIAS,
    )


def build_lr_scheduler(cfg, optimizer: torch.optim.Optimizer):
    """The schedule named by SOLVER.LR_SCHEDULER_NAME, with SOLVER.WARMUP_* warm-up."""
    s = cfg.SOLVER
    warmup = dict(
        warmup_factor=s.WARMUP_FACTOR, warmup_iters=s.WARMUP_ITERS, warmup_method=s.WARMUP_METHOD
    )
    name = s.LR_SCHEDULER_NAME
    if name == "WarmupMultiStepLR":
        steps = [x for x in s.STEPS]
        return WarmupMultiStepLR(
            optimizer, milestones=steps, max_iter=s.MAX_ITER, gamma=s.GAMMA, **warmup
        )
    if name == "WarmupCosineLR":
        return WarmupCosineLR(optimizer, max_iter=s.MAX_ITER, **warmup)
    if name == "ReduceLROnPlateau":
        if not s.PLATEAU_METRIC:
            raise ValueError(
                "SOLVER.LR_SCHEDULER_NAME = ReduceLROnPlateau needs "
                "SOLVER.PLATEAU_METRIC (the evaluation result to watch)"
            )
        if cfg.TEST.EVAL_PERIOD <= 0:
            raise ValueError(
                "SOLVER.LR_SCHEDULER_NAME = ReduceLROnPlateau needs periodic "
                "evaluation: set TEST.EVAL_PERIOD > 0"
            )
        return WarmupPlateauLR(
            optimizer,
            max_iter=s.MAX_ITER,
            metric=s.PLATEAU_METRIC,
            mode=s.PLATEAU_MODE,
            gamma=s.GAMMA,
            patience=s.PLATEAU_PATIENCE,
            **warmup,
        )
    raise ValueError(
        f"Unknown SOLVER.LR_SCHEDULER_NAME {name!r}: use WarmupMultiStepLR, "
        "WarmupCosineLR or ReduceLROnPlateau"
    )
