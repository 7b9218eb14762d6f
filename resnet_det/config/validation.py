"""Checks on combinations of config keys; every error names the offending key.

Model-specific checks that need the builders (e.g. which features a backbone can output)
live in resnet_det.modeling.build; this covers what can be decided from the values alone.
"""
from typing import Any, Iterable, Optional

from .config import ConfigError

__all__ = ["validate_cfg", "check_batch_divisible", "reject_value"]

RESNET_DEPTHS = (18, 34, 50, 101, 152, 200)
NORMS = ("BN", "FrozenBN", "SyncBN", "GN", "none")
META_ARCHITECTURES = ("GeneralizedRCNN", "ImageClassifier")
RESNET_BACKBONES = ("build_resnet_backbone", "build_resnet_det_backbone")
FPN_BACKBONES = ("build_resnet_fpn_backbone", "build_resnet_det_fpn_backbone")
VGG_BACKBONES = ("build_vgg_backbone", "build_vgg16_backbone")
ROI_HEADS = ("Res5ROIHeads", "StandardROIHeads")
LR_SCHEDULERS = ("WarmupMultiStepLR", "WarmupCosineLR", "ReduceLROnPlateau")


def reject_value(key: str, value: Any, why: str):
    """Raise :class:`ConfigError` "config KEY=VALUE: WHY" (for the builders' checks)."""
    raise ConfigError(f"config {key}={value!r}: {why}")


def _one_of(key: str, value: Any, allowed: Iterable[Any]) -> None:
    allowed = tuple(allowed)
    if value not in allowed:
        raise ConfigError(f"{key} = {value!r} is not one of {list(allowed)}")


def check_batch_divisible(cfg, world_size: int) -> None:
    """SOLVER.IMS_PER_BATCH is the total over all processes: each gets an equal share."""
    total = cfg.SOLVER.IMS_PER_BATCH
    if world_size < 1 or total % world_size != 0:
        raise ConfigError(f"SOLVER.IMS_PER_BATCH = {total} is not divisible by the world size "
                          f"{world_size} (number of processes)")


def validate_cfg(cfg, *, world_size: Optional[int] = None) -> None:
    """Raise :class:`ConfigError` naming the key if settings do not fit together.

    Args:
        cfg: a config from :func:`get_cfg` (merged).
        world_size: when given, also check that SOLVER.IMS_PER_BATCH splits evenly.
    """
    m = cfg.MODEL
    _one_of("MODEL.META_ARCHITECTURE", m.META_ARCHITECTURE, META_ARCHITECTURES)
    _one_of("MODEL.DEVICE", m.DEVICE.split(":")[0], ("cpu", "cuda"))
    _one_of("ENGINE", cfg.ENGINE, ("builtin", "detectron2"))
    _one_of("INPUT.FORMAT", cfg.INPUT.FORMAT, ("BGR", "RGB"))
    _one_of("DATALOADER.ON_BAD_IMAGE", cfg.DATALOADER.ON_BAD_IMAGE, ("stop", "skip"))
    for key, values in (("MODEL.PIXEL_MEAN", m.PIXEL_MEAN), ("MODEL.PIXEL_STD", m.PIXEL_STD)):
        if len(values) != 3:
            raise ConfigError(f"{key} must have 3 values (one per channel), got {list(values)}")
    if any(s <= 0 for s in m.PIXEL_STD):
        raise ConfigError(f"MODEL.PIXEL_STD must be positive, got {list(m.PIXEL_STD)}")

    # ResNet family (the paper's Table 1 depths, plus 200 from the follow-up work).
    r = m.RESNETS
    _one_of("MODEL.RESNETS.DEPTH", r.DEPTH, RESNET_DEPTHS)
    _one_of("MODEL.RESNETS.SHORTCUT", r.SHORTCUT, ("A", "B", "C"))
    _one_of("MODEL.RESNETS.NORM", r.NORM, NORMS)
    _one_of("MODEL.RESNETS.RES5_DILATION", r.RES5_DILATION, (1, 2))
    if r.NUM_GROUPS < 1:
        raise ConfigError(f"MODEL.RESNETS.NUM_GROUPS must be >= 1, got {r.NUM_GROUPS}")
    if r.DEPTH in (18, 34):
        # Basic blocks (Sec. 3.3, Table 1) have no grouped 3x3 and no bottleneck widening.
        if r.NUM_GROUPS != 1:
            raise ConfigError(f"MODEL.RESNETS.NUM_GROUPS = {r.NUM_GROUPS} needs bottleneck "
                              f"blocks; MODEL.RESNETS.DEPTH = {r.DEPTH} uses basic blocks: "
                              "set MODEL.RESNETS.NUM_GROUPS 1")
        if r.RES2_OUT_CHANNELS != 64:
            raise ConfigError(f"MODEL.RESNETS.RES2_OUT_CHANNELS must be 64 for "
                              f"MODEL.RESNETS.DEPTH = {r.DEPTH} (basic blocks), got "
                              f"{r.RES2_OUT_CHANNELS}: set MODEL.RESNETS.RES2_OUT_CHANNELS 64")
        if r.RES5_DILATION != 1:
            raise ConfigError(f"MODEL.RESNETS.RES5_DILATION = {r.RES5_DILATION} is not "
                              f"supported for MODEL.RESNETS.DEPTH = {r.DEPTH}")
    _one_of("MODEL.VGG.DEPTH", m.VGG.DEPTH, (16, 19))
    _one_of("MODEL.VGG.NORM", m.VGG.NORM, ("none", "BN"))
    _one_of("MODEL.FPN.NORM", m.FPN.NORM, ("",) + NORMS)
    _one_of("MODEL.BACKBONE.FREEZE_AT", m.BACKBONE.FREEZE_AT, range(0, 6))

    if m.META_ARCHITECTURE == "GeneralizedRCNN":
        bb, heads = m.BACKBONE.NAME, m.ROI_HEADS.NAME
        _one_of("MODEL.BACKBONE.NAME", bb, RESNET_BACKBONES + FPN_BACKBONES + VGG_BACKBONES)
        _one_of("MODEL.ROI_HEADS.NAME", heads, ROI_HEADS)
        _one_of("MODEL.PROPOSAL_GENERATOR.NAME", m.PROPOSAL_GENERATOR.NAME, ("RPN",))
        # Res5ROIHeads runs res5 of a ResNet as the box head (the paper's C4 design, Sec. A
        # of the appendix); FPN and VGG backbones have no res5 to spare.
        if heads == "Res5ROIHeads" and bb not in RESNET_BACKBONES:
            raise ConfigError(f"MODEL.ROI_HEADS.NAME = Res5ROIHeads needs a ResNet C4 backbone "
                              f"(MODEL.BACKBONE.NAME in {list(RESNET_BACKBONES)}), got "
                              f"MODEL.BACKBONE.NAME = {bb}: use StandardROIHeads")
        if bb in VGG_BACKBONES and heads != "StandardROIHeads":
            raise ConfigError(f"MODEL.BACKBONE.NAME = {bb} needs MODEL.ROI_HEADS.NAME = "
                              f"StandardROIHeads, got {heads}")
        if m.ROI_HEADS.NUM_CLASSES < 1:
            raise ConfigError(f"MODEL.ROI_HEADS.NUM_CLASSES must be >= 1, got "
                              f"{m.ROI_HEADS.NUM_CLASSES}")
        _one_of("MODEL.ROI_BOX_HEAD.POOLER_TYPE", m.ROI_BOX_HEAD.POOLER_TYPE,
                ("ROIAlignV2", "ROIAlign", "ROIPool"))
    else:
        if m.CLASSIFIER.NUM_CLASSES < 1:
            raise ConfigError(f"MODEL.CLASSIFIER.NUM_CLASSES must be >= 1, got "
                              f"{m.CLASSIFIER.NUM_CLASSES}")

    # Solver
    s = cfg.SOLVER
    _one_of("SOLVER.LR_SCHEDULER_NAME", s.LR_SCHEDULER_NAME, LR_SCHEDULERS)
    _one_of("SOLVER.WARMUP_METHOD", s.WARMUP_METHOD, ("linear", "constant"))
    _one_of("SOLVER.AMP.DTYPE", s.AMP.DTYPE, ("float16", "bfloat16"))
    _one_of("SOLVER.CLIP_GRADIENTS.CLIP_TYPE", s.CLIP_GRADIENTS.CLIP_TYPE, ("value", "norm"))
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
    _one_of("SOLVER.PLATEAU_MODE", s.PLATEAU_MODE, ("min", "max"))
    if s.LR_SCHEDULER_NAME == "ReduceLROnPlateau":
        if not s.PLATEAU_METRIC:
            raise ConfigError("SOLVER.LR_SCHEDULER_NAME = ReduceLROnPlateau needs "
                              "SOLVER.PLATEAU_METRIC (the evaluation result to watch, e.g. "
                              "top1_err)")
        if cfg.TEST.EVAL_PERIOD <= 0:
            raise ConfigError("SOLVER.LR_SCHEDULER_NAME = ReduceLROnPlateau needs periodic "
                              "evaluation: set TEST.EVAL_PERIOD > 0")
    steps = list(s.STEPS)
    for i, step in enumerate(steps):
        if not isinstance(step, int) or step <= 0:
            raise ConfigError(f"SOLVER.STEPS[{i}] = {step!r} must be a positive int")
        if i and step <= steps[i - 1]:
            raise ConfigError(f"SOLVER.STEPS must be strictly increasing, got {steps}")
        if step >= s.MAX_ITER:
            raise ConfigError(f"SOLVER.STEPS[{i}] = {step} must be < SOLVER.MAX_ITER = "
                              f"{s.MAX_ITER}")
    if not 0.0 < s.GAMMA <= 1.0:
        raise ConfigError(f"SOLVER.GAMMA must be in (0, 1], got {s.GAMMA}")
    if s.PLATEAU_PATIENCE < 0:
        raise ConfigError(f"SOLVER.PLATEAU_PATIENCE must be >= 0, got {s.PLATEAU_PATIENCE}")
    if s.CHECKPOINT_PERIOD < 1:
        raise ConfigError(f"SOLVER.CHECKPOINT_PERIOD must be >= 1, got {s.CHECKPOINT_PERIOD}")
    if s.CLIP_GRADIENTS.ENABLED and s.CLIP_GRADIENTS.CLIP_VALUE <= 0:
        raise ConfigError(f"SOLVER.CLIP_GRADIENTS.CLIP_VALUE must be > 0, got "
                          f"{s.CLIP_GRADIENTS.CLIP_VALUE}")
    if s.REFERENCE_WORLD_SIZE < 0:
        raise ConfigError(f"SOLVER.REFERENCE_WORLD_SIZE must be >= 0, got "
                          f"{s.REFERENCE_WORLD_SIZE}")
    if cfg.TEST.EVAL_PERIOD < 0:
        raise ConfigError(f"TEST.EVAL_PERIOD must be >= 0, got {cfg.TEST.EVAL_PERIOD}")
    if cfg.LOG_PERIOD < 1:
        raise ConfigError(f"LOG_PERIOD must be >= 1, got {cfg.LOG_PERIOD}")
    if cfg.DATALOADER.NUM_WORKERS < 0:
        raise ConfigError(f"DATALOADER.NUM_WORKERS must be >= 0, got "
                          f"{cfg.DATALOADER.NUM_WORKERS}")
    if world_size is not None:
        check_batch_divisible(cfg, world_size)
