"""Per-iteration learning-rate schedules with warm-up; all resume exactly from state_dict().

The schedules are fvcore ParamSchedulers (a multiplier of BASE_LR as a function of training
progress in [0, 1]) driven by a torch LRScheduler, stepped once per iteration by the
LRScheduler hook. The multiplier at iteration i is applied to the step of iteration i.
"""

import math
from typing import Any, Dict, List, Optional

import torch
from fvcore.common.param_scheduler import (
    CosineParamScheduler,
    MultiStepParamScheduler,
    ParamScheduler,
)

__all__ = [
    "WarmupParamScheduler",
    "LRMultiplier",
    "WarmupMultiStepLR",
    "WarmupCosineLR",
    "WarmupPlateauLR",
    "warmup_factor_at_iter",
]


def warmup_factor_at_iter(method: str, it: int, warmup_iters: int, warmup_factor: float) -> float:
    """Multiplier of the warm-up at iteration ``it`` (1.0 once warm-up is over).

    "linear": from ``warmup_factor`` at iteration 0 rising linearly to 1 at ``warmup_iters``
    (Goyal et al.'s gradual warm-up). "constant": ``warmup_factor`` throughout, as the paper
    trains ResNet-110 at 0.1x the rate until training error falls below 80% (Sec. 4.2).
    """
    if it >= warmup_iters:
        return 1.0
    if method == "constant":
        return warmup_factor
    if method == "linear":
        alpha = it / warmup_iters
        return warmup_factor * (1 - alpha) + alpha
    raise ValueError(
        f"Unknown warmup method {method!r} (SOLVER.WARMUP_METHOD): use 'linear' or 'constant'"
    )


class WarmupParamScheduler(ParamScheduler):
    """``scheduler`` multiplied by a warm-up factor over the first ``warmup_iters``."""

    def __init__(
        self,
        scheduler: ParamScheduler,
        *,
        warmup_factor: float,
        warmup_iters: int,
        max_iter: int,
        warmup_method: str = "linear",
    ) -> None:
        """
        Args:
            scheduler: the main schedule (a function of progress in [0, 1]).
            warmup_factor: starting multiplier.
            warmup_iters: warm-up length in iterations.
            max_iter: total iterations (progress = iteration / max_iter).
            warmup_method: "linear" or "constant".
        """
        warmup_factor_at_iter(warmup_method, 0, 1, warmup_factor)  # validates the method
        self._scheduler = scheduler
        self._warmup_factor = warmup_factor
        self._warmup_iters = warmup_iters
        self._max_iter = max_iter
        self._method = warmup_method

    def __call__(self, where: float) -> float:
        it = int(round(where * self._max_iter))
        return self._scheduler(where) * warmup_factor_at_iter(
            self._method, it, self._warmup_iters, self._warmup_factor
        )


class LRMultiplier(torch.optim.lr_scheduler.LRScheduler):
    """lr of every param group = its base lr x ``multiplier(iteration / max_iter)``."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        multiplier: ParamScheduler,
        max_iter: int,
        last_iter: int = -1,
    ) -> None:
        """
        Args:
            optimizer: the optimizer whose groups' "initial_lr" are the base lrs.
            multiplier: an fvcore ParamScheduler.
            max_iter: total number of iterations.
            last_iter: iteration of the last step (-1: fresh start).
        """
        if not isinstance(multiplier, ParamScheduler):
            raise TypeError(
                f"LRMultiplier: multiplier must be an fvcore ParamScheduler, got "
                f"{type(multiplier).__name__}"
            )
        if max_iter < 1:
            raise ValueError(f"LRMultiplier: max_iter must be >= 1, got {max_iter}")
        self._multiplier = multiplier
        self._max_iter = max_iter
        super().__init__(optimizer, last_epoch=last_iter)

    def multiplier_at(self, it: int) -> float:
        return self._multiplier(min(it, self._max_iter) / self._max_iter)

    def get_lr(self) -> List[float]:
        m = self.multiplier_at(self.last_epoch)
        return [base * m for base in self.base_lrs]

    def state_dict(self) -> Dict[str, Any]:
        # Only plain values: the schedule itself is rebuilt from the config, and checkpoints
        # are read with torch.load(weights_only=True).
        return {"base_lrs": list(self.base_lrs), "last_epoch": int(self.last_epoch)}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        self.base_lrs = list(state_dict["base_lrs"])
        self.last_epoch = int(state_dict["last_epoch"])
        self._last_lr = self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, self._last_lr):
            group["lr"] = lr


class WarmupMultiStepLR(LRMultiplier):
    """Warm-up, then multiply by ``gamma`` at each of ``milestones`` (the paper's step decay:
    CIFAR-10 lr 0.1 divided by 10 at 32k and 48k iterations, Sec. 4.2)."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        *,
        milestones: List[int],
        max_iter: int,
        gamma: float = 0.1,
        warmup_factor: float = 0.001,
        warmup_iters: int = 1000,
        warmup_method: str = "linear",
        last_iter: int = -1,
    ) -> None:
        """
        Args:
            optimizer: the optimizer.
            milestones: strictly increasing iterations, each < max_iter.
            max_iter: total iterations.
            gamma: multiplier applied at each milestone.
            warmup_factor, warmup_iters, warmup_method: see :func:`warmup_factor_at_iter`.
            last_iter: -1 for a fresh start.
        """
        milestones = list(milestones)
        for i, s in enumerate(milestones):
            if s >= max_iter or (i and s <= milestones[i - 1]) or s <= 0:
                raise ValueError(
                    f"WarmupMultiStepLR: milestones must be increasing, positive "
                    f"and < max_iter={max_iter}; got {milestones}"
                )
        steps = MultiStepParamScheduler(
            values=[gamma**k for k in range(len(milestones) + 1)],
            milestones=milestones,
            num_updates=max_iter,
        )
        sched = WarmupParamScheduler(
            steps,
            warmup_factor=warmup_factor,
            warmup_iters=warmup_iters,
            max_iter=max_iter,
            warmup_method=warmup_method,
        )
        super().__init__(optimizer, sched, max_iter, last_iter)


class WarmupCosineLR(LRMultiplier):
    """Warm-up, then half a cosine from 1 to 0 over ``max_iter`` (the modern recipe)."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        *,
        max_iter: int,
        warmup_factor: float = 0.001,
        warmup_iters: int = 1000,
        warmup_method: str = "linear",
        last_iter: int = -1,
    ) -> None:
        """
        Args:
            optimizer: the optimizer.
            max_iter: total iterations; the multiplier reaches 0 at max_iter.
            warmup_factor, warmup_iters, warmup_method: see :func:`warmup_factor_at_iter`.
            last_iter: -1 for a fresh start.
        """
        sched = WarmupParamScheduler(
            CosineParamScheduler(1.0, 0.0),
            warmup_factor=warmup_factor,
            warmup_iters=warmup_iters,
            max_iter=max_iter,
            warmup_method=warmup_method,
        )
        super().__init__(optimizer, sched, max_iter, last_iter)


class WarmupPlateauLR(torch.optim.lr_scheduler.LRScheduler):
    """The paper's ImageNet schedule: "the learning rate starts from 0.1 and is divided by 10
    when the error plateaus" (Sec. 3.4), with optional warm-up.

    :meth:`step` is called every iteration (warm-up); :meth:`report` with each evaluation's
    metric. After ``patience`` evaluations without a relative improvement larger than
    ``threshold`` the lr is multiplied by ``gamma`` (like torch's ReduceLROnPlateau, counted
    in evaluations).
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        *,
        max_iter: int,
        metric: str,
        mode: str = "min",
        gamma: float = 0.1,
        patience: int = 3,
        threshold: float = 1e-4,
        warmup_factor: float = 0.001,
        warmup_iters: int = 0,
        warmup_method: str = "linear",
        last_iter: int = -1,
    ) -> None:
        """
        Args:
            optimizer: the optimizer.
            max_iter: total iterations.
            metric: name of the evaluation result watched (e.g. "top1_err"; a key of the
                flattened results written to the EventStorage).
            mode: "min" (an error) or "max" (an accuracy / AP).
            gamma: lr multiplier at each plateau.
            patience: evaluations without improvement tolerated before reducing.
            threshold: relative improvement that counts.
            warmup_factor, warmup_iters, warmup_method: see :func:`warmup_factor_at_iter`.
            last_iter: -1 for a fresh start.
        """
        if mode not in ("min", "max"):
            raise ValueError(f"WarmupPlateauLR: mode must be 'min' or 'max', got {mode!r}")
        warmup_factor_at_iter(warmup_method, 0, 1, warmup_factor)
        self.metric = metric
        self.mode = mode
        self.gamma = gamma
        self.patience = patience
        self.threshold = threshold
        self._warmup = (warmup_method, warmup_iters, warmup_factor)
        self._max_iter = max_iter
        self.best: Optional[float] = None
        self.num_bad_evals = 0
        self.num_reductions = 0
        self.last_report_iter = -1
        super().__init__(optimizer, last_epoch=last_iter)

    def _is_better(self, value: float) -> bool:
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best * (1 - self.threshold)
        return value > self.best * (1 + self.threshold)

    def report(self, value: float, iteration: Optional[int] = None) -> None:
        """Feed one evaluation result; may divide the lr by 1/gamma."""
        value = float(value)
        if math.isnan(value):
            raise FloatingPointError(f"WarmupPlateauLR: metric {self.metric} is NaN")
        if self._is_better(value):
            self.best, self.num_bad_evals = value, 0
        else:
            self.num_bad_evals += 1
            if self.num_bad_evals > self.patience:
                self.num_reductions += 1
                self.num_bad_evals = 0
        if iteration is not None:
            self.last_report_iter = int(iteration)
        self._last_lr = self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, self._last_lr):
            group["lr"] = lr

    def get_lr(self) -> List[float]:
        method, iters, factor = self._warmup
        m = warmup_factor_at_iter(method, max(self.last_epoch, 0), iters, factor)
        m *= self.gamma**self.num_reductions
        return [base * m for base in self.base_lrs]

    def state_dict(self) -> Dict[str, Any]:
        return {
            "base_lrs": list(self.base_lrs),
            "last_epoch": int(self.last_epoch),
            "best": self.best,
            "num_bad_evals": self.num_bad_evals,
            "num_reductions": self.num_reductions,
            "last_report_iter": self.last_report_iter,
        }

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        self.base_lrs = list(state_dict["base_lrs"])
        self.last_epoch = int(state_dict["last_epoch"])
        self.best = state_dict["best"]
        self.num_bad_evals = int(state_dict["num_bad_evals"])
        self.num_reductions = int(state_dict["num_reductions"])
        self.last_report_iter = int(state_dict["last_report_iter"])
        self._last_lr = self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, self._last_lr):
            group["lr"] = lr
