"""cfg -> the description of the model -> the model.

``describe_model(cfg)`` resolves a config once into a :class:`ModelDescription`: the entries
the config selects in the model registries (resnet_det.modeling.registry) and their keyword
arguments, read from the config and checked. It is the only code that reads the model's keys
(MODEL.*, INPUT.FORMAT): each config -> kwargs function below reads its entry's keys and checks
how they combine (raising ConfigError naming the key); each argument is then checked by its
module's own check, whose ArgumentError ModelDescription reports under the key the argument
came from. ``build_model(cfg)`` is ``describe_model(cfg).build()``.

The built-in entries are registered at the end of this module.
"""

from functools import partial
from typing import Any, Dict, Optional, Sequence, Tuple

from torch import nn

from ..utils.errors import reject_value, require_one_of
from .backbone import Backbone
from .classifier import ImageClassifier, build_image_classifier, check_label_smoothing
from .detection.box_heads import (
    FastRCNNConvFCHead,
    VGGFCHead,
    check_conv_fc_head_arguments,
    check_vgg_fc_head_arguments,
)
from .detection.fpn import build_resnet_fpn, check_resnet_fpn_arguments
from .detection.mask_heads import build_mask_branch, check_mask_head_arguments
from .detection.rcnn import build_generalized_rcnn, check_generalized_rcnn_arguments
from .detection.roi_heads import (
    build_res5_roi_heads,
    build_standard_roi_heads,
    check_roi_heads_arguments,
)
from .detection.rpn import build_rpn, check_rpn_arguments
from .registry import (
    BACKBONES,
    BOX_HEADS,
    CLASSIFIERS,
    MASK_HEADS,
    META_ARCHITECTURES,
    PROPOSAL_GENERATORS,
    ROI_HEADS,
    ConfigKwargs,
    ModelDescription,
    RegistryEntry,
)
from .resnet import (
    RESNET_DEPTHS,
    build_res5_head,
    build_resnet,
    check_res5_head_arguments,
    check_resnet_arguments,
    res2_channels,
)
from .vgg import QUARTER_WIDTH, VGG, check_vgg_arguments, vgg_widths
from .zoo import CIFAR_RESNETS, IMAGENET_RESNETS, VGGS, check_model_arguments, create_model

__all__ = [
    "describe_model",
    "res5_head_of",
    "describe_backbone",
    "build_model",
    "build_backbone",
    "build_classifier",
    "resnets_kwargs",
]


# ------------------------------------------------------------------------------ MODEL.RESNETS
# build_resnet's arguments -> their MODEL.RESNETS keys: every reader of those keys reads them
# through ``resnets_kwargs``.
RESNETS_KEYS = {
    "depth": "DEPTH",
    "shortcut": "SHORTCUT",
    "stride_in_1x1": "STRIDE_IN_1X1",
    "norm": "NORM",
    "zero_init_residual": "ZERO_INIT_RESIDUAL",
    "groups": "NUM_GROUPS",
    "width_per_group": "WIDTH_PER_GROUP",
    "stem_out_channels": "STEM_OUT_CHANNELS",
}


def resnets_kwargs(cfg, arguments: Sequence[str] = tuple(RESNETS_KEYS)) -> ConfigKwargs:
    """``arguments`` of build_resnet read from MODEL.RESNETS (see RESNETS_KEYS)."""
    node = cfg.MODEL.RESNETS
    kwargs = ConfigKwargs()
    for argument in arguments:
        leaf = RESNETS_KEYS[argument]
        kwargs.add(argument, f"MODEL.RESNETS.{leaf}", node[leaf])
    return kwargs


def _input_channels(cfg, kwargs: ConfigKwargs) -> None:
    # One mean per input channel (3 for images; the detector checks that there are 3).
    kwargs.add(
        "in_channels", "MODEL.PIXEL_MEAN", cfg.MODEL.PIXEL_MEAN, converted=len(cfg.MODEL.PIXEL_MEAN)
    )


def _freeze_at(cfg, kwargs: ConfigKwargs) -> None:
    kwargs.add("freeze_at", "MODEL.BACKBONE.FREEZE_AT", cfg.MODEL.BACKBONE.FREEZE_AT)


# ---------------------------------------------------------------------------------- backbones
def _resnet_kwargs(cfg) -> ConfigKwargs:
    """The ResNet of MODEL.RESNETS, shared by the C4 and FPN backbones."""
    r = cfg.MODEL.RESNETS
    kwargs = resnets_kwargs(cfg)
    kwargs.add("residual", "MODEL.RESNETS.PLAIN", r.PLAIN, converted=not r.PLAIN)
    depth, stem = kwargs["depth"], kwargs["stem_out_channels"]
    if depth in RESNET_DEPTHS and isinstance(stem, int):  # else the builder's check reports it
        expected = res2_channels(depth, stem)
        if r.RES2_OUT_CHANNELS != expected:
            reject_value(
                "MODEL.RESNETS.RES2_OUT_CHANNELS",
                r.RES2_OUT_CHANNELS,
                f"depth {depth} with STEM_OUT_CHANNELS {stem} has res2 width {expected} (set "
                f"RES2_OUT_CHANNELS {expected}, e.g. 64 for ResNet-18/34)",
            )
    _freeze_at(cfg, kwargs)
    _input_channels(cfg, kwargs)
    return kwargs


def resnet_c4_kwargs(cfg) -> ConfigKwargs:
    """``build_resnet`` kwargs of the C4 backbone: MODEL.RESNETS (OUT_FEATURES ["res4"] for the
    paper's detector, whose res5 runs in the box head), frozen up to MODEL.BACKBONE.FREEZE_AT."""
    r = cfg.MODEL.RESNETS
    kwargs = _resnet_kwargs(cfg)
    kwargs.add("out_features", "MODEL.RESNETS.OUT_FEATURES", r.OUT_FEATURES)
    kwargs.add("res5_dilation", "MODEL.RESNETS.RES5_DILATION", r.RES5_DILATION)
    return kwargs


def resnet_fpn_kwargs(cfg) -> ConfigKwargs:
    """``build_resnet_fpn`` kwargs: the ResNet of MODEL.RESNETS giving MODEL.FPN.IN_FEATURES,
    and the pyramid's MODEL.FPN.OUT_CHANNELS / NORM."""
    if cfg.MODEL.RESNETS.RES5_DILATION != 1:
        reject_value(
            "MODEL.RESNETS.RES5_DILATION",
            cfg.MODEL.RESNETS.RES5_DILATION,
            "FPN needs res5 at stride 32 (RES5_DILATION 1)",
        )
    fpn = cfg.MODEL.FPN
    kwargs = _resnet_kwargs(cfg)
    kwargs.add("in_features", "MODEL.FPN.IN_FEATURES", fpn.IN_FEATURES)
    kwargs.add("out_channels", "MODEL.FPN.OUT_CHANNELS", fpn.OUT_CHANNELS)
    kwargs.add("fpn_norm", "MODEL.FPN.NORM", fpn.NORM)
    return kwargs


def vgg_backbone_kwargs(cfg, *, width: float = 1.0) -> ConfigKwargs:
    """``VGG`` kwargs in backbone mode: "vgg_conv5" (conv5_3, stride 16; pool5 is replaced by
    RoI pooling), MODEL.VGG.DEPTH / NORM, frozen up to MODEL.BACKBONE.FREEZE_AT, at ``width``."""
    kwargs = ConfigKwargs(out_features=("vgg_conv5",))
    kwargs.add("depth", "MODEL.VGG.DEPTH", cfg.MODEL.VGG.DEPTH)
    kwargs.add("norm", "MODEL.VGG.NORM", cfg.MODEL.VGG.NORM)
    _freeze_at(cfg, kwargs)
    _input_channels(cfg, kwargs)
    if width != 1.0:
        kwargs["width"] = width
    return kwargs


# The C4 backbone's res5, as Res5ROIHeads' box head: the backbone's block options.
RES5_HEAD = RegistryEntry("Res5ROIHeads", build=build_res5_head, check=check_res5_head_arguments)
_RES5_SHARED = (
    "depth",
    "shortcut",
    "stride_in_1x1",
    "norm",
    "zero_init_residual",
    "groups",
    "width_per_group",
    "residual",
)


def c4_res5_head(backbone: ModelDescription) -> ModelDescription:
    """The res5 stage of the C4 backbone ``backbone``, as the box head: the same block options,
    its first block at stride 2 (Appendix A), on res4."""
    if backbone["res5_dilation"] != 1:
        reject_value(
            backbone.key_of("res5_dilation") or "res5_dilation",
            backbone["res5_dilation"],
            "Res5ROIHeads runs res5 with stride 2 on the RoIs (RES5_DILATION 1)",
        )
    kwargs = ConfigKwargs({a: backbone[a] for a in _RES5_SHARED})
    kwargs.sources.update({a: backbone.sources[a] for a in _RES5_SHARED if a in backbone.sources})
    kwargs["in_channels"] = res2_channels(backbone["depth"], backbone["stem_out_channels"]) * 4
    kwargs["first_stride"] = 2
    # The shared options were checked with the backbone's.
    return ModelDescription.of(ROI_HEADS.key, RES5_HEAD, kwargs, check=False)


def res5_head_of(backbone: ModelDescription, roi_heads: str) -> ModelDescription:
    """The description of the res5 stage ``backbone`` lends the RoI heads ``roi_heads`` (the
    value of MODEL.ROI_HEADS.NAME) as their box head; ConfigError if it has none."""
    if backbone.entry.res5_head is None:
        # The paper's C4 head (Appendix A): res5 of the same ResNet runs on RoIs pooled from
        # res4; FPN and VGG backbones have no res5 to spare.
        reject_value(
            "MODEL.ROI_HEADS.NAME",
            roi_heads,
            f"the res5 box head needs a ResNet C4 backbone (MODEL.BACKBONE.NAME is "
            f"{backbone.name!r}; use StandardROIHeads)",
        )
    return backbone.entry.res5_head(backbone)


def _any_fc_dim(backbone: ModelDescription) -> Dict[str, Any]:
    return {}


def _classifier_fc_dim(backbone: ModelDescription) -> Dict[str, Any]:
    # The reproduction demo loads its classifier's fc6/fc7 into the box head.
    return {"fc_dim": vgg_widths(backbone.get("width", 1.0))[1]}


# ------------------------------------------------------------------------------ detector heads
def _per_feature(key: str, values: Sequence, features: Sequence[str]) -> Tuple[tuple, ...]:
    """detectron2's broadcast rule: one list for all features, or one list per feature."""
    values = [tuple(v) for v in values]
    if len(values) == 1:
        return tuple(values * len(features))
    if len(values) != len(features):
        reject_value(key, values, f"give one list, or one list per RPN.IN_FEATURES {features}")
    return tuple(values)


def _two_thresholds(key: str, values) -> Tuple[float, float]:
    values = list(values)
    if len(values) == 1:
        values = values * 2
    if len(values) != 2:
        reject_value(key, values, "give [iou] or [background_below, foreground_from] in [0, 1]")
    return values[0], values[1]


def rpn_kwargs(cfg, backbone: ModelDescription) -> ConfigKwargs:
    """``build_rpn`` kwargs: MODEL.RPN, MODEL.ANCHOR_GENERATOR and
    MODEL.PROPOSAL_GENERATOR.MIN_SIZE."""
    rpn, anchors = cfg.MODEL.RPN, cfg.MODEL.ANCHOR_GENERATOR
    kwargs = ConfigKwargs()
    features = kwargs.add("in_features", "MODEL.RPN.IN_FEATURES", rpn.IN_FEATURES)
    for argument, leaf in (("sizes", "SIZES"), ("aspect_ratios", "ASPECT_RATIOS")):
        key = f"MODEL.ANCHOR_GENERATOR.{leaf}"
        value = anchors[leaf]
        kwargs.add(argument, key, value, converted=_per_feature(key, value, features))
    if not rpn.CONV_DIMS or any(d != -1 for d in rpn.CONV_DIMS):
        reject_value(
            "MODEL.RPN.CONV_DIMS", rpn.CONV_DIMS, "only -1 (same width as the input) is supported"
        )
    kwargs.add("conv_depth", "MODEL.RPN.CONV_DIMS", rpn.CONV_DIMS, converted=len(rpn.CONV_DIMS))
    key = "MODEL.RPN.IOU_THRESHOLDS"
    kwargs.add(
        "iou_thresholds",
        key,
        rpn.IOU_THRESHOLDS,
        converted=_two_thresholds(key, rpn.IOU_THRESHOLDS),
    )
    for argument, leaf in (
        ("batch_size_per_image", "BATCH_SIZE_PER_IMAGE"),
        ("positive_fraction", "POSITIVE_FRACTION"),
        ("pre_nms_topk_train", "PRE_NMS_TOPK_TRAIN"),
        ("pre_nms_topk_test", "PRE_NMS_TOPK_TEST"),
        ("post_nms_topk_train", "POST_NMS_TOPK_TRAIN"),
        ("post_nms_topk_test", "POST_NMS_TOPK_TEST"),
        ("nms_thresh", "NMS_THRESH"),
    ):
        kwargs.add(argument, f"MODEL.RPN.{leaf}", rpn[leaf])
    kwargs.add(
        "min_size", "MODEL.PROPOSAL_GENERATOR.MIN_SIZE", cfg.MODEL.PROPOSAL_GENERATOR.MIN_SIZE
    )
    return kwargs


def _roi_heads_kwargs(cfg) -> ConfigKwargs:
    """The RoI heads' keys both Res5ROIHeads and StandardROIHeads read, and the mask head's
    description with MODEL.MASK_ON."""
    heads, box = cfg.MODEL.ROI_HEADS, cfg.MODEL.ROI_BOX_HEAD
    kwargs = ConfigKwargs()
    kwargs.add("in_features", "MODEL.ROI_HEADS.IN_FEATURES", heads.IN_FEATURES)
    kwargs.add("num_classes", "MODEL.ROI_HEADS.NUM_CLASSES", heads.NUM_CLASSES)
    kwargs.add("pooler_type", "MODEL.ROI_BOX_HEAD.POOLER_TYPE", box.POOLER_TYPE)
    kwargs.add(
        "pooler_sampling_ratio",
        "MODEL.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO",
        box.POOLER_SAMPLING_RATIO,
    )
    key = "MODEL.ROI_HEADS.IOU_THRESHOLDS"
    kwargs.add(
        "iou_thresholds",
        key,
        heads.IOU_THRESHOLDS,
        converted=_two_thresholds(key, heads.IOU_THRESHOLDS),
    )
    for argument, leaf in (
        ("batch_size_per_image", "BATCH_SIZE_PER_IMAGE"),
        ("positive_fraction", "POSITIVE_FRACTION"),
        ("score_thresh", "SCORE_THRESH_TEST"),
        ("nms_thresh", "NMS_THRESH_TEST"),
        ("detections_per_image", "DETECTIONS_PER_IMAGE"),
    ):
        kwargs.add(argument, f"MODEL.ROI_HEADS.{leaf}", heads[leaf])
    kwargs.add("bbox_reg_weights", "MODEL.ROI_BOX_HEAD.BBOX_REG_WEIGHTS", box.BBOX_REG_WEIGHTS)
    require_one_of("MODEL.MASK_ON", cfg.MODEL.MASK_ON, (False, True))
    kwargs["mask_head"] = MASK_HEADS.describe(cfg) if cfg.MODEL.MASK_ON else None
    return kwargs


def standard_roi_heads_kwargs(cfg, backbone: ModelDescription) -> ConfigKwargs:
    """``build_standard_roi_heads`` kwargs: the RoI heads' keys and the description of the box
    head MODEL.ROI_BOX_HEAD.NAME selects."""
    kwargs = _roi_heads_kwargs(cfg)
    kwargs["box_head"] = BOX_HEADS.describe(cfg, backbone)
    return kwargs


def res5_roi_heads_kwargs(cfg, backbone: ModelDescription) -> ConfigKwargs:
    """``build_res5_roi_heads`` kwargs: the RoI heads' keys, the box pooler's resolution and the
    res5 stage the backbone lends (its entry's ``res5_head``)."""
    res5 = res5_head_of(backbone, cfg.MODEL.ROI_HEADS.NAME)
    kwargs = _roi_heads_kwargs(cfg)
    if list(kwargs["in_features"]) != ["res4"]:
        reject_value(
            "MODEL.ROI_HEADS.IN_FEATURES",
            list(kwargs["in_features"]),
            "Res5ROIHeads pools from ['res4']",
        )
    box = cfg.MODEL.ROI_BOX_HEAD
    kwargs.add("pooler_resolution", "MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION", box.POOLER_RESOLUTION)
    kwargs["res5"] = res5
    return kwargs


def conv_fc_head_kwargs(cfg, backbone: ModelDescription) -> ConfigKwargs:
    """``FastRCNNConvFCHead`` kwargs (its ``in_channels`` come from the pooled features)."""
    box = cfg.MODEL.ROI_BOX_HEAD
    kwargs = ConfigKwargs()
    kwargs.add("pooler_resolution", "MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION", box.POOLER_RESOLUTION)
    kwargs.add("num_fc", "MODEL.ROI_BOX_HEAD.NUM_FC", box.NUM_FC)
    kwargs.add("fc_dim", "MODEL.ROI_BOX_HEAD.FC_DIM", box.FC_DIM)
    return kwargs


def vgg_fc_head_kwargs(cfg, backbone: ModelDescription) -> ConfigKwargs:
    """``VGGFCHead`` kwargs: VGG's fc6/fc7 as the box head, on a backbone whose entry has them
    (``fc_head``), with the arguments that entry fixes."""
    box = cfg.MODEL.ROI_BOX_HEAD
    if backbone.entry.fc_head is None:
        reject_value(
            "MODEL.ROI_BOX_HEAD.NAME",
            box.NAME,
            f"VGG's fc6/fc7 head needs a VGG backbone, not {backbone.name!r}",
        )
    kwargs = ConfigKwargs()
    kwargs.add("pooler_resolution", "MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION", box.POOLER_RESOLUTION)
    kwargs.add("fc_dim", "MODEL.ROI_BOX_HEAD.FC_DIM", box.FC_DIM)
    for argument, value in backbone.entry.fc_head(backbone).items():
        if kwargs[argument] != value:
            key = kwargs.sources[argument][0]
            reject_value(
                key,
                kwargs[argument],
                f"{backbone.name}'s fc6/fc7 are {value} wide (set {key.rsplit('.', 1)[1]} {value}) "
                "so that its classifier's weights load into the box head",
            )
    return kwargs


def mask_head_kwargs(cfg) -> ConfigKwargs:
    """``build_mask_branch`` kwargs: MODEL.ROI_MASK_HEAD (detectron2's keys). Res5ROIHeads pools
    the mask RoIs as the box RoIs, so its POOLER_* keys do not apply there."""
    mask = cfg.MODEL.ROI_MASK_HEAD
    kwargs = ConfigKwargs()
    for argument, leaf in (
        ("pooler_type", "POOLER_TYPE"),
        ("pooler_resolution", "POOLER_RESOLUTION"),
        ("pooler_sampling_ratio", "POOLER_SAMPLING_RATIO"),
        ("num_conv", "NUM_CONV"),
        ("conv_dim", "CONV_DIM"),
        ("norm", "NORM"),
        ("class_agnostic", "CLS_AGNOSTIC_MASK"),
    ):
        kwargs.add(argument, f"MODEL.ROI_MASK_HEAD.{leaf}", mask[leaf])
    return kwargs


# ----------------------------------------------------------------------------- meta-architectures
def generalized_rcnn_kwargs(cfg) -> ConfigKwargs:
    """``build_generalized_rcnn`` kwargs: the input (INPUT.FORMAT, MODEL.PIXEL_MEAN / STD), the
    descriptions of the backbone, the proposal generator and the RoI heads, the sampling seed
    (SEED; SEED < 0, an unseeded run, samples from the global RNG) and MODEL.DEVICE."""
    m = cfg.MODEL
    kwargs = ConfigKwargs()
    kwargs.add("input_format", "INPUT.FORMAT", cfg.INPUT.FORMAT)
    kwargs.add("pixel_mean", "MODEL.PIXEL_MEAN", m.PIXEL_MEAN)
    kwargs.add("pixel_std", "MODEL.PIXEL_STD", m.PIXEL_STD)
    # Per-image seeded fg/bg sampling whenever the run is seeded, so that a batch split over
    # processes draws as one process does (docs/reproducibility.md).
    kwargs.add("sampling_seed", "SEED", cfg.SEED, converted=cfg.SEED if cfg.SEED >= 0 else None)
    kwargs.add("device", "MODEL.DEVICE", m.DEVICE)
    backbone = BACKBONES.describe(cfg)
    kwargs["backbone"] = backbone
    kwargs["proposal_generator"] = PROPOSAL_GENERATORS.describe(cfg, backbone)
    kwargs["roi_heads"] = ROI_HEADS.describe(cfg, backbone)
    return kwargs


def image_classifier_kwargs(cfg) -> ConfigKwargs:
    """``build_image_classifier`` kwargs: the description of the network MODEL.CLASSIFIER.ARCH
    selects, MODEL.CLASSIFIER.LABEL_SMOOTHING, SOLVER.CHANNELS_LAST and MODEL.DEVICE."""
    kwargs = ConfigKwargs(net=CLASSIFIERS.describe(cfg))
    kwargs.add(
        "label_smoothing", "MODEL.CLASSIFIER.LABEL_SMOOTHING", cfg.MODEL.CLASSIFIER.LABEL_SMOOTHING
    )
    channels_last = cfg.SOLVER.CHANNELS_LAST
    kwargs.add(
        "channels_last", "SOLVER.CHANNELS_LAST", channels_last, converted=bool(channels_last)
    )
    kwargs.add("device", "MODEL.DEVICE", cfg.MODEL.DEVICE)
    return kwargs


def _check_image_classifier_arguments(*, label_smoothing: float = 0.0, **_) -> None:
    check_label_smoothing(label_smoothing)


# -------------------------------------------------------------------------------- classifiers
_FROZEN_BN = (
    "FrozenBN has no trainable scale/shift and fixed statistics, so a classifier cannot be "
    "pretrained with it; use 'BN' (the paper), 'SyncBN' or 'GN'"
)


def _classifier_kwargs(cfg, kwargs: ConfigKwargs, norm_key: str) -> ConfigKwargs:
    """The norm (not FrozenBN) and MODEL.CLASSIFIER.NUM_CLASSES, which every classifier takes."""
    if kwargs["norm"] == "FrozenBN":
        reject_value(norm_key, kwargs["norm"], _FROZEN_BN)
    kwargs.add("num_classes", "MODEL.CLASSIFIER.NUM_CLASSES", cfg.MODEL.CLASSIFIER.NUM_CLASSES)
    return kwargs


def _reject_plain(cfg) -> None:
    if cfg.MODEL.RESNETS.PLAIN:
        reject_value(
            "MODEL.RESNETS.PLAIN",
            cfg.MODEL.RESNETS.PLAIN,
            "PLAIN applies to detection backbones; for classification name the plain net in "
            "MODEL.CLASSIFIER.ARCH (e.g. 'plain34', 'plain56_cifar'), not "
            f"{cfg.MODEL.CLASSIFIER.ARCH!r} + PLAIN",
        )


def resnet_classifier_kwargs(cfg, *, overrides: Sequence[str]) -> ConfigKwargs:
    """``create_model`` overrides of a ResNet / CIFAR net of the zoo: MODEL.RESNETS.NORM and, of
    SHORTCUT, STRIDE_IN_1X1 and ZERO_INIT_RESIDUAL, those the net takes (``overrides``: a plain
    net, whose point is having no shortcuts, takes no SHORTCUT); MODEL.CLASSIFIER.NUM_CLASSES."""
    _reject_plain(cfg)
    arguments = [
        a for a in ("norm", "shortcut", "stride_in_1x1", "zero_init_residual") if a in overrides
    ]
    return _classifier_kwargs(cfg, resnets_kwargs(cfg, arguments), "MODEL.RESNETS.NORM")


def vgg_classifier_kwargs(
    cfg, *, overrides: Sequence[str] = (), depth_from_config: bool = False, width: float = 1.0
) -> ConfigKwargs:
    """VGG classifier kwargs: MODEL.VGG.NORM, MODEL.CLASSIFIER.NUM_CLASSES and, where the name
    does not fix it, MODEL.VGG.DEPTH; at ``width``."""
    _reject_plain(cfg)
    kwargs = ConfigKwargs()
    if depth_from_config:
        kwargs.add("depth", "MODEL.VGG.DEPTH", cfg.MODEL.VGG.DEPTH)
    kwargs.add("norm", "MODEL.VGG.NORM", cfg.MODEL.VGG.NORM)
    if width != 1.0:
        kwargs["width"] = width
    return _classifier_kwargs(cfg, kwargs, "MODEL.VGG.NORM")


# ------------------------------------------------------------------------------ entry points
def describe_model(cfg, *, meta_architecture: Optional[str] = None) -> ModelDescription:
    """The description of the model ``cfg`` describes: the MODEL.META_ARCHITECTURE entry and its
    parts, each with its keyword arguments, read from the config once and checked. Raises
    ConfigError naming the key of the first setting that does not fit.

    Args:
        cfg: the config.
        meta_architecture: the MODEL.META_ARCHITECTURE the caller can run; another one raises.
    """
    if meta_architecture is not None and cfg.MODEL.META_ARCHITECTURE != meta_architecture:
        reject_value(
            "MODEL.META_ARCHITECTURE",
            cfg.MODEL.META_ARCHITECTURE,
            f"this needs {meta_architecture!r}",
        )
    return META_ARCHITECTURES.describe(cfg)


def describe_backbone(cfg, *, name: Optional[str] = None) -> ModelDescription:
    """The description of the backbone MODEL.BACKBONE.NAME (or ``name``) selects."""
    return BACKBONES.describe(cfg, name=name)


def build_model(cfg) -> nn.Module:
    """The model the config describes (``describe_model(cfg).build()``), on MODEL.DEVICE: the
    Faster R-CNN (Mask R-CNN with MODEL.MASK_ON) for MODEL.META_ARCHITECTURE
    "GeneralizedRCNN", the ImageClassifier for "ImageClassifier".

    Does not load MODEL.WEIGHTS (the trainer / checkpointer does), so that a resumed run is not
    overwritten.
    """
    return describe_model(cfg).build()


def build_backbone(cfg) -> Backbone:
    """The backbone named by MODEL.BACKBONE.NAME (an entry of the backbone registry), e.g.
    ResNet C4 with outputs MODEL.RESNETS.OUT_FEATURES, ResNet-FPN (p2..p6 on
    MODEL.FPN.IN_FEATURES) or VGG (vgg_conv5, stride 16), frozen up to
    MODEL.BACKBONE.FREEZE_AT."""
    return describe_backbone(cfg).build()


def build_classifier(cfg) -> ImageClassifier:
    """``build_model`` for a classifier's config (MODEL.META_ARCHITECTURE "ImageClassifier"):
    the network MODEL.CLASSIFIER.ARCH names, wrapped in ImageClassifier, on MODEL.DEVICE."""
    return describe_model(cfg, meta_architecture="ImageClassifier").build()


# ---------------------------------------------------------------------- the built-in entries
META_ARCHITECTURES.register(
    "GeneralizedRCNN",
    build=build_generalized_rcnn,
    from_config=generalized_rcnn_kwargs,
    check=check_generalized_rcnn_arguments,
)
META_ARCHITECTURES.register(
    "ImageClassifier",
    build=build_image_classifier,
    from_config=image_classifier_kwargs,
    check=_check_image_classifier_arguments,
)

# The paper's C4 detector (Sec. 4.3, Appendix A): conv1..res4 shared, res5 in the box head.
BACKBONES.register(
    "build_resnet_backbone",
    d2_name="build_resnet_det_backbone",
    build=build_resnet,
    from_config=resnet_c4_kwargs,
    check=check_resnet_arguments,
    res5_head=c4_res5_head,
)
BACKBONES.register(
    "build_resnet_fpn_backbone",
    d2_name="build_resnet_det_fpn_backbone",
    build=build_resnet_fpn,
    from_config=resnet_fpn_kwargs,
    check=check_resnet_fpn_arguments,
)
# The original Faster R-CNN backbone (conv5_3 at stride 16), the paper's baseline (Table 7/8).
BACKBONES.register(
    "build_vgg_backbone",
    d2_name="build_vgg16_backbone",
    build=VGG,
    from_config=vgg_backbone_kwargs,
    check=check_vgg_arguments,
    fc_head=_any_fc_dim,
)
# The reproduction demo's VGG-16 at a quarter width (configs/reproduce_demo/).
BACKBONES.register(
    "build_vgg16_quarter_backbone",
    build=VGG,
    from_config=partial(vgg_backbone_kwargs, width=QUARTER_WIDTH),
    check=check_vgg_arguments,
    fc_head=_classifier_fc_dim,
)

PROPOSAL_GENERATORS.register(
    "RPN", build=build_rpn, from_config=rpn_kwargs, check=check_rpn_arguments
)
ROI_HEADS.register(
    "Res5ROIHeads",
    d2_name="ResNetDetRes5ROIHeads",
    build=build_res5_roi_heads,
    from_config=res5_roi_heads_kwargs,
    check=check_roi_heads_arguments,
)
ROI_HEADS.register(
    "StandardROIHeads",
    build=build_standard_roi_heads,
    from_config=standard_roi_heads_kwargs,
    check=check_roi_heads_arguments,
)
BOX_HEADS.register(
    "FastRCNNConvFCHead",
    build=FastRCNNConvFCHead,
    from_config=conv_fc_head_kwargs,
    check=check_conv_fc_head_arguments,
)
BOX_HEADS.register(
    "VGGFCHead",
    build=VGGFCHead,
    from_config=vgg_fc_head_kwargs,
    check=check_vgg_fc_head_arguments,
)
MASK_HEADS.register(
    "MaskRCNNConvUpsampleHead",
    build=build_mask_branch,
    from_config=mask_head_kwargs,
    check=check_mask_head_arguments,
)


# Every create_model name, in the zoo's order: its family says which keys configure it.
for _family, _kwargs in (
    (IMAGENET_RESNETS, resnet_classifier_kwargs),
    (VGGS, vgg_classifier_kwargs),
    (CIFAR_RESNETS, resnet_classifier_kwargs),
):
    for _name, _model in _family.items():
        CLASSIFIERS.register(
            _name,
            build=partial(create_model, _name),
            from_config=partial(_kwargs, overrides=_model.overrides),
            check=partial(check_model_arguments, _name),
        )
del _family, _kwargs, _name, _model
# The reproduction demo's VGG-16 at a quarter width; its depth is MODEL.VGG.DEPTH, as the
# backbone's.
CLASSIFIERS.register(
    "vgg16_quarter",
    build=VGG,
    from_config=partial(vgg_classifier_kwargs, depth_from_config=True, width=QUARTER_WIDTH),
    check=check_vgg_arguments,
)
