"""cfg -> keyword arguments of the built-in networks: the only code that reads MODEL.RESNETS,
MODEL.VGG, MODEL.FPN, MODEL.BACKBONE and MODEL.CLASSIFIER.ARCH's settings.

Each function is the ``from_config`` of entries of resnet_det.modeling.registry. It checks the
values and how they combine without building anything (config validation runs it before a
run starts) and raises ConfigError naming the key. The accepted values come from the modules
that use them (RESNET_DEPTHS, check_norm, check_shortcut, ...), so they are written once.
"""

from functools import partial
from typing import Any, Dict

from ..config.errors import reject_value, require_one_of, require_valid
from .blocks import BottleneckBlock, check_shortcut
from .checks import check_positive_int
from .norm import check_norm
from .resnet import RESNET_DEPTHS
from .vgg import VGG, VGG_DEPTHS
from .zoo import MODEL_SPECS

__all__ = [
    "resnet_kwargs",
    "resnet_backbone_kwargs",
    "resnet_fpn_kwargs",
    "res5_head_kwargs",
    "vgg_backbone_kwargs",
    "classifier_kwargs",
]

# freeze_at: 0 (nothing) .. 5 (stem and res2..res5 / all five VGG blocks), see Backbone.freeze.
FREEZE_AT_RANGE = range(0, 6)


def _in_channels(cfg) -> int:
    # One mean per input channel (3 for images; checked by the detector builder).
    return len(cfg.MODEL.PIXEL_MEAN)


def _freeze_at(cfg) -> int:
    require_one_of("MODEL.BACKBONE.FREEZE_AT", cfg.MODEL.BACKBONE.FREEZE_AT, FREEZE_AT_RANGE)
    return cfg.MODEL.BACKBONE.FREEZE_AT


def resnet_kwargs(cfg) -> Dict[str, Any]:
    """The block options of MODEL.RESNETS shared by the ResNet backbones and the res5 head:
    depth, shortcut, stride_in_1x1, norm, zero_init_residual, groups, width_per_group,
    stem_out_channels, residual."""
    r = cfg.MODEL.RESNETS
    # Table 1's depths (and 200, from the pre-activation paper).
    require_one_of("MODEL.RESNETS.DEPTH", r.DEPTH, RESNET_DEPTHS)
    require_valid("MODEL.RESNETS.SHORTCUT", r.SHORTCUT, check_shortcut)
    require_valid("MODEL.RESNETS.NORM", r.NORM, check_norm)
    require_valid("MODEL.RESNETS.NUM_GROUPS", r.NUM_GROUPS, partial(check_positive_int, "groups"))
    require_valid(
        "MODEL.RESNETS.WIDTH_PER_GROUP",
        r.WIDTH_PER_GROUP,
        partial(check_positive_int, "width_per_group"),
    )
    bottleneck = RESNET_DEPTHS[r.DEPTH][0] is BottleneckBlock
    if not bottleneck:
        # Basic blocks (Sec. 3.3, Table 1) have no grouped 3x3 and no bottleneck width.
        for key, value, plain in (
            ("NUM_GROUPS", r.NUM_GROUPS, 1),
            ("WIDTH_PER_GROUP", r.WIDTH_PER_GROUP, 64),
        ):
            if value != plain:
                reject_value(
                    f"MODEL.RESNETS.{key}",
                    value,
                    f"grouped / wide blocks need bottleneck blocks (DEPTH >= 50); "
                    f"MODEL.RESNETS.DEPTH {r.DEPTH} uses basic blocks: set {key} {plain}",
                )
    expected_res2 = r.STEM_OUT_CHANNELS * (4 if bottleneck else 1)
    if r.RES2_OUT_CHANNELS != expected_res2:
        reject_value(
            "MODEL.RESNETS.RES2_OUT_CHANNELS",
            r.RES2_OUT_CHANNELS,
            f"depth {r.DEPTH} with STEM_OUT_CHANNELS {r.STEM_OUT_CHANNELS} has res2 width "
            f"{expected_res2} (set RES2_OUT_CHANNELS {expected_res2}, e.g. 64 for "
            "ResNet-18/34)",
        )
    return dict(
        depth=r.DEPTH,
        shortcut=r.SHORTCUT,
        stride_in_1x1=r.STRIDE_IN_1X1,
        norm=r.NORM,
        zero_init_residual=r.ZERO_INIT_RESIDUAL,
        groups=r.NUM_GROUPS,
        width_per_group=r.WIDTH_PER_GROUP,
        stem_out_channels=r.STEM_OUT_CHANNELS,
        residual=not r.PLAIN,
    )


def resnet_backbone_kwargs(cfg) -> Dict[str, Any]:
    """``build_resnet`` kwargs of the C4 backbone: MODEL.RESNETS (OUT_FEATURES, ["res4"] for the
    paper's detector, whose res5 runs in the box head), frozen up to MODEL.BACKBONE.FREEZE_AT."""
    r = cfg.MODEL.RESNETS
    require_one_of("MODEL.RESNETS.RES5_DILATION", r.RES5_DILATION, (1, 2))
    return dict(
        resnet_kwargs(cfg),
        out_features=list(r.OUT_FEATURES),
        res5_dilation=r.RES5_DILATION,
        freeze_at=_freeze_at(cfg),
        in_channels=_in_channels(cfg),
    )


def resnet_fpn_kwargs(cfg) -> Dict[str, Any]:
    """``build_resnet_fpn`` kwargs: the ResNet of MODEL.RESNETS giving MODEL.FPN.IN_FEATURES,
    and the pyramid's MODEL.FPN.OUT_CHANNELS / NORM."""
    if cfg.MODEL.RESNETS.RES5_DILATION != 1:
        reject_value(
            "MODEL.RESNETS.RES5_DILATION",
            cfg.MODEL.RESNETS.RES5_DILATION,
            "FPN needs res5 at stride 32 (RES5_DILATION 1)",
        )
    require_valid("MODEL.FPN.NORM", cfg.MODEL.FPN.NORM, check_norm)
    return dict(
        resnet_kwargs(cfg),
        in_features=list(cfg.MODEL.FPN.IN_FEATURES),
        out_channels=cfg.MODEL.FPN.OUT_CHANNELS,
        fpn_norm=cfg.MODEL.FPN.NORM,
        freeze_at=_freeze_at(cfg),
        in_channels=_in_channels(cfg),
    )


def res5_head_kwargs(cfg) -> Dict[str, Any]:
    """``build_res5_head`` kwargs of the C4 box head: res5 with the backbone's block options,
    its first block at stride 2 (Appendix A), on res4 (the res2 width x 4)."""
    if cfg.MODEL.RESNETS.RES5_DILATION != 1:
        reject_value(
            "MODEL.RESNETS.RES5_DILATION",
            cfg.MODEL.RESNETS.RES5_DILATION,
            "Res5ROIHeads runs res5 with stride 2 on the RoIs (RES5_DILATION 1)",
        )
    kwargs = resnet_kwargs(cfg)
    del kwargs["stem_out_channels"]
    return dict(kwargs, in_channels=cfg.MODEL.RESNETS.RES2_OUT_CHANNELS * 4, first_stride=2)


def vgg_backbone_kwargs(cfg) -> Dict[str, Any]:
    """``VGG`` kwargs in backbone mode: "vgg_conv5" (conv5_3, stride 16; pool5 is replaced by
    RoI pooling), MODEL.VGG.DEPTH / NORM, frozen up to MODEL.BACKBONE.FREEZE_AT."""
    require_one_of("MODEL.VGG.DEPTH", cfg.MODEL.VGG.DEPTH, VGG_DEPTHS)
    require_valid("MODEL.VGG.NORM", cfg.MODEL.VGG.NORM, check_norm)
    return dict(
        depth=cfg.MODEL.VGG.DEPTH,
        norm=cfg.MODEL.VGG.NORM,
        out_features=["vgg_conv5"],
        freeze_at=_freeze_at(cfg),
        in_channels=_in_channels(cfg),
    )


def classifier_kwargs(cfg) -> Dict[str, Any]:
    """``create_model(MODEL.CLASSIFIER.ARCH, **kwargs)`` overrides: NUM_CLASSES, the norm
    (MODEL.VGG.NORM for VGG, else MODEL.RESNETS.NORM) and, where the net has them,
    MODEL.RESNETS.SHORTCUT / STRIDE_IN_1X1 / ZERO_INIT_RESIDUAL."""
    arch = cfg.MODEL.CLASSIFIER.ARCH
    if arch not in MODEL_SPECS:
        reject_value("MODEL.CLASSIFIER.ARCH", arch, "not a model of resnet_det.list_models()")
    builder, _, allowed = MODEL_SPECS[arch]
    r = cfg.MODEL.RESNETS
    if r.PLAIN:
        reject_value(
            "MODEL.RESNETS.PLAIN",
            r.PLAIN,
            "PLAIN applies to detection backbones; for classification name the plain "
            f"net in MODEL.CLASSIFIER.ARCH (e.g. 'plain34', 'plain56_cifar'), not {arch!r} + PLAIN",
        )
    norm_key = "MODEL.VGG.NORM" if builder is VGG else "MODEL.RESNETS.NORM"
    norm = cfg.MODEL.VGG.NORM if builder is VGG else r.NORM
    if norm == "FrozenBN":
        reject_value(
            norm_key,
            norm,
            "FrozenBN has no trainable scale/shift and fixed statistics, so a classifier "
            "cannot be pretrained with it; use 'BN' (the paper), 'SyncBN' or 'GN'",
        )
    require_valid(norm_key, norm, check_norm)
    require_valid(
        "MODEL.CLASSIFIER.NUM_CLASSES",
        cfg.MODEL.CLASSIFIER.NUM_CLASSES,
        partial(check_positive_int, "num_classes"),
    )
    kwargs: Dict[str, Any] = {"num_classes": int(cfg.MODEL.CLASSIFIER.NUM_CLASSES), "norm": norm}
    # Keys the net has no use for (e.g. SHORTCUT for a plain net, whose point is having no
    # shortcuts) are not passed; create_model would reject them.
    if "shortcut" in allowed:
        require_valid("MODEL.RESNETS.SHORTCUT", r.SHORTCUT, check_shortcut)
        kwargs["shortcut"] = r.SHORTCUT
    if "stride_in_1x1" in allowed:
        kwargs["stride_in_1x1"] = bool(r.STRIDE_IN_1X1)
    if "zero_init_residual" in allowed:
        kwargs["zero_init_residual"] = bool(r.ZERO_INIT_RESIDUAL)
    return kwargs
