"""Checks on the keys of the solver, the data loader and the engine, alone and in combination;
every error names the offending key.

The model's keys (MODEL.*, INPUT.FORMAT) are not checked here: the model's description
(resnet_det.modeling.describe_model) reads each of them once and checks it where the value is
used.
"""

from typing import Optional

from ..utils.errors import ConfigError, require_one_of

__all__ = ["validate_cfg", "check_batch_divisible"]

LR_SCHEDULERS = ("WarmupMultiStepLR", "WarmupCosineLR", "ReduceLROnPlateau")


def check_batch_divisible(cfg, world_size: int) -> None:
    """SOLVER.IMS_PER_BATCH is the total over all processes: each gets an equal share."""
    total = cfg.SOLVER.IMS_PER_BATCH
    if world_size < 1 or total % world_size != 0:
        raise ConfigError(
            f"SOLVER.IMS_PER_BATCH = {total} is not divisible by the world size "
            f"{world_size} (number of processes)"
        )


def validate_cfg(cfg, *, world_size: Optional[int] = None) -> None:
    """Raise :class:`ConfigError` naming the key if settings do not fit together.

    Args:
        cfg: a config from :func:`get_cfg` (merged).
        world_size: when given, also check that SOLVER.IMS_PER_BATCH splits evenly.
    """
    require_one_of("MODEL.DEVICE", cfg.MODEL.DEVICE.split(":")[0], ("cpu", "cuda"))
    require_one_of("ENGINE", cfg.ENGINE, ("builtin", "detectron2"))
    require_one_of("DATALOADER.ON_BAD_IMAGE", cfg.DATALOADER.ON_BAD_IMAGE, ("stop", "skip"))

    # Solver
    s = cfg.SOLVER
    require_one_of("SOLVER.LR_SCHEDULER_NAME", s.LR_SCHEDULER_NAME, LR_SCHEDULERS)
    require_one_of("SOLVER.WARMUP_METHOD", s.WARMUP_METHOD, ("linear", "constant"))
    require_one_of("SOLVER.AMP.DTYPE", s.AMP.DTYPE, ("float16", "bfloat16"))
    require_one_of("SOLVER.CLIP_GRADIENTS.CLIP_TYPE", s.CLIP_GRADIENTS.CLIP_TYPE, ("value", "norm"))
    if s.MAX_ITER < 1:
        raise ConfigError(f"SOLVER.MAX_ITER must be >= 1, got {s.MAX_ITER}")
    if s.BASE_LR <= 0:
        raise ConfigError(f"SOLVER.BASE_LR must be > 0, got {s.BASE_LR}")
    if s.IMS_PER_BATCH < 1:
        raise ConfigError(f"SOLVER.IMS_PER_BATCH must be >= 1, got {s.IMS_PER_BATCH}")
    if not 0.0 <= s.WARMUP_FACTOR <= 1.0:
        raise ConfigError(f"SOLVER.WARMUP_FACTOR must be in [0, 1], got {s.WARMUP_FACTOR}")
    if s.WARMUP_ITERS < 0:
        raise ConfigError(f"SOLVER.WARMUP_ITERS must be >= 0, got {s.WARMUP_ITERS}")
    require_one_of("SOLVER.PLATEAU_MODE", s.PLATEAU_MODE, ("min", "max"))
    if s.LR_SCHEDULER_NAME == "ReduceLROnPlateau":
        if not s.PLATEAU_METRIC:
            raise ConfigError(
                "SOLVER.LR_SCHEDULER_NAME = ReduceLROnPlateau needs "
                "SOLVER.PLATEAU_METRIC (the evaluation result to watch, e.g. "
                "top1_err)"
            )
        if cfg.TEST.EVAL_PERIOD <= 0:
            raise ConfigError(
                "SOLVER.LR_SCHEDULER_NAME = ReduceLROnPlateau needs periodic "
                "evaluation: set TEST.EVAL_PERIOD > 0"
            )
    steps = list(s.STEPS)
    for i, step in enumerate(steps):
        if not isinstance(step, int) or step <= 0:
            raise ConfigError(f"SOLVER.STEPS[{i}] = {step!r} must be a positive int")
        if i and step <= steps[i - 1]:
            raise ConfigError(f"SOLVER.STEPS must be strictly increasing, got {steps}")
        if step >= s.MAX_ITER:
            raise ConfigError(
                f"SOLVER.STEPS[{i}] = {step} must be < SOLVER.MAX_ITER = {s.MAX_ITER}"
            )
    if not 0.0 < s.GAMMA <= 1.0:
        raise ConfigError(f"SOLVER.GAMMA must be in (0, 1], got {s.GAMMA}")
    if s.PLATEAU_PATIENCE < 0:
        raise ConfigError(f"SOLVER.PLATEAU_PATIENCE must be >= 0, got {s.PLATEAU_PATIENCE}")
    if s.CHECKPOINT_PERIOD < 1:
        raise ConfigError(f"SOLVER.CHECKPOINT_PERIOD must be >= 1, got {s.CHECKPOINT_PERIOD}")
    if s.CLIP_GRADIENTS.ENABLED and s.CLIP_GRADIENTS.CLIP_VALUE <= 0:
        raise ConfigError(
            f"SOLVER.CLIP_GRADIENTS.CLIP_VALUE must be > 0, got {s.CLIP_GRADIENTS.CLIP_VALUE}"
        )
    if s.REFERENCE_WORLD_SIZE < 0:
        raise ConfigError(f"SOLVER.REFERENCE_WORLD_SIZE must be >= 0, got {s.REFERENCE_WORLD_SIZE}")
    if cfg.TEST.EVAL_PERIOD < 0:
        raise ConfigError(f"TEST.EVAL_PERIOD must be >= 0, got {cfg.TEST.EVAL_PERIOD}")
    if cfg.LOG_PERIOD < 1:
        raise ConfigError(f"LOG_PERIOD must be >= 1, got {cfg.LOG_PERIOD}")
    if cfg.DATALOADER.NUM_WORKERS < 0:
        raise ConfigError(f"DATALOADER.NUM_WORKERS must be >= 0, got {cfg.DATALOADER.NUM_WORKERS}")
    if world_size is not None:
        check_batch_divisible(cfg, world_size)
