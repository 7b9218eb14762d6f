"""cfg -> detector: the only place that reads the detection heads' config keys.

``build_backbone(cfg)`` builds the backbone MODEL.BACKBONE.NAME selects in the backbone registry
(resnet_det.modeling.registry, which also maps MODEL.RESNETS / MODEL.VGG / MODEL.FPN to its
keyword arguments); ``build_model(cfg)`` assembles the Faster R-CNN (Mask R-CNN with
MODEL.MASK_ON) around it (resnet_det.modeling.detection). ``check_detector_cfg(cfg)`` is every
check that needs no built module; ``validate_cfg`` runs it before a run starts.
"""

import logging
from typing import List, Sequence

import torch
from torch import nn
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.models.detection.rpn import RegionProposalNetwork, RPNHead

from ..config.errors import ConfigError, reject_value, require_one_of, require_valid
from .backbone import Backbone
from .backbone_kwargs import res5_head_kwargs
from .detection.box_heads import FastRCNNConvFCHead, Res5BoxHead, VGGFCHead
from .detection.mask_heads import MaskPredictor, Res5MaskHead, build_mask_convs
from .detection.poolers import POOLER_TYPES, RoIPooler
from .detection.rcnn import GeneralizedRCNN
from .detection.sampling import SeededBalancedSampler
from .norm import check_norm
from .registry import BACKBONES, ModelSpec
from .resnet import build_res5_head

__all__ = [
    "build_backbone",
    "build_model",
    "check_detector_cfg",
    "ROI_HEADS",
    "BOX_HEADS",
    "MASK_HEADS",
]

logger = logging.getLogger(__name__)

ROI_HEADS = ("Res5ROIHeads", "StandardROIHeads")
BOX_HEADS = ("FastRCNNConvFCHead", "VGGFCHead")
MASK_HEADS = ("MaskRCNNConvUpsampleHead",)


def build_backbone(cfg) -> Backbone:
    """The backbone named by MODEL.BACKBONE.NAME (an entry of the backbone registry), e.g.
    ResNet C4 with outputs MODEL.RESNETS.OUT_FEATURES, ResNet-FPN (p2..p6 on
    MODEL.FPN.IN_FEATURES) or VGG (vgg_conv5, stride 16), frozen up to
    MODEL.BACKBONE.FREEZE_AT."""
    return BACKBONES.build(cfg)


def check_detector_cfg(cfg) -> ModelSpec:
    """Check the detector's settings that can be decided without building it (the backbone's
    through its registry entry; the heads' and how they fit the backbone here), raising
    ConfigError naming the key. Returns the backbone's registry entry."""
    m = cfg.MODEL
    if m.META_ARCHITECTURE != "GeneralizedRCNN":
        reject_value(
            "MODEL.META_ARCHITECTURE",
            m.META_ARCHITECTURE,
            "build_model builds the detector 'GeneralizedRCNN' (classifiers: "
            "resnet_det.modeling.classifier)",
        )
    if m.PROPOSAL_GENERATOR.NAME != "RPN":
        reject_value(
            "MODEL.PROPOSAL_GENERATOR.NAME", m.PROPOSAL_GENERATOR.NAME, "only 'RPN' is supported"
        )
    require_one_of("INPUT.FORMAT", cfg.INPUT.FORMAT, ("BGR", "RGB"))
    for key in ("PIXEL_MEAN", "PIXEL_STD"):
        values = getattr(m, key)
        if len(values) != 3 or (key == "PIXEL_STD" and min(values) <= 0):
            reject_value(
                f"MODEL.{key}", values, "needs 3 values in INPUT.FORMAT channel order (std > 0)"
            )
    spec = BACKBONES.lookup(cfg)
    spec.from_config(cfg)
    heads, box = m.ROI_HEADS, m.ROI_BOX_HEAD
    require_one_of("MODEL.ROI_HEADS.NAME", heads.NAME, ROI_HEADS)
    if not isinstance(heads.NUM_CLASSES, int) or heads.NUM_CLASSES < 1:
        reject_value("MODEL.ROI_HEADS.NUM_CLASSES", heads.NUM_CLASSES, "must be a positive int")
    require_one_of("MODEL.ROI_BOX_HEAD.POOLER_TYPE", box.POOLER_TYPE, POOLER_TYPES)
    if len(box.BBOX_REG_WEIGHTS) != 4:
        reject_value(
            "MODEL.ROI_BOX_HEAD.BBOX_REG_WEIGHTS",
            box.BBOX_REG_WEIGHTS,
            "needs 4 values (dx, dy, dw, dh)",
        )
    if heads.NAME == "Res5ROIHeads":
        # The paper's C4 head (Appendix A): res5 of the same ResNet runs on RoIs pooled from
        # res4; FPN and VGG backbones have no res5 to spare.
        if not spec.res5_head:
            reject_value(
                "MODEL.ROI_HEADS.NAME",
                heads.NAME,
                f"the res5 box head needs a ResNet C4 backbone (MODEL.BACKBONE.NAME is "
                f"{spec.name!r}; use StandardROIHeads)",
            )
        if list(heads.IN_FEATURES) != ["res4"]:
            reject_value(
                "MODEL.ROI_HEADS.IN_FEATURES",
                list(heads.IN_FEATURES),
                "Res5ROIHeads pools from ['res4']",
            )
        res5_head_kwargs(cfg)
    elif box.NAME == "VGGFCHead":
        if not spec.vgg_head:
            reject_value(
                "MODEL.ROI_BOX_HEAD.NAME",
                box.NAME,
                f"VGG's fc6/fc7 head needs a VGG backbone, not {spec.name!r}",
            )
        if box.POOLER_RESOLUTION != 7:
            reject_value(
                "MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION",
                box.POOLER_RESOLUTION,
                "VGG's fc6 takes 7x7 pooled features (pool5's size)",
            )
    else:
        require_one_of("MODEL.ROI_BOX_HEAD.NAME", box.NAME, BOX_HEADS)
    require_one_of("MODEL.MASK_ON", m.MASK_ON, (False, True))
    if m.MASK_ON:
        _check_mask_cfg(cfg)
    return spec


def _check_mask_cfg(cfg) -> None:
    """MODEL.ROI_MASK_HEAD (detectron2's keys) for MODEL.MASK_ON; every ROI_HEADS.NAME and
    backbone takes a mask head (C4: on res5, as Res5ROIHeads; FPN and VGG: convs on the pooled
    RoI features of ROI_HEADS.IN_FEATURES, as StandardROIHeads)."""
    mask = cfg.MODEL.ROI_MASK_HEAD
    require_one_of("MODEL.ROI_MASK_HEAD.NAME", mask.NAME, MASK_HEADS)
    require_one_of("MODEL.ROI_MASK_HEAD.POOLER_TYPE", mask.POOLER_TYPE, POOLER_TYPES)
    for key, low in (
        ("POOLER_RESOLUTION", 1),
        ("POOLER_SAMPLING_RATIO", 0),
        ("NUM_CONV", 0),
        ("CONV_DIM", 1),
    ):
        value = getattr(mask, key)
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            reject_value(f"MODEL.ROI_MASK_HEAD.{key}", value, f"must be an int >= {low}")
    require_valid("MODEL.ROI_MASK_HEAD.NORM", mask.NORM, check_norm)
    require_one_of("MODEL.ROI_MASK_HEAD.CLS_AGNOSTIC_MASK", mask.CLS_AGNOSTIC_MASK, (False, True))


def _per_feature(key: str, values: Sequence, features: List[str]) -> List[tuple]:
    """detectron2's broadcast rule: one list for all features, or one list per feature."""
    values = [tuple(v) for v in values]
    if len(values) == 1:
        return values * len(features)
    if len(values) != len(features):
        reject_value(key, values, f"give one list, or one list per RPN.IN_FEATURES {features}")
    return values


def _build_rpn(cfg, shapes) -> RegionProposalNetwork:
    rpn_cfg = cfg.MODEL.RPN
    in_features = list(rpn_cfg.IN_FEATURES)
    missing = [f for f in in_features if f not in shapes]
    if missing:
        reject_value(
            "MODEL.RPN.IN_FEATURES", in_features, f"the backbone outputs only {list(shapes)}"
        )
    channels = {shapes[f].channels for f in in_features}
    if len(channels) != 1:
        reject_value(
            "MODEL.RPN.IN_FEATURES",
            in_features,
            "the shared RPN head needs equal channels on every feature",
        )
    sizes = _per_feature(
        "MODEL.ANCHOR_GENERATOR.SIZES", cfg.MODEL.ANCHOR_GENERATOR.SIZES, in_features
    )
    ratios = _per_feature(
        "MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS",
        cfg.MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS,
        in_features,
    )
    anchors = AnchorGenerator(sizes=tuple(sizes), aspect_ratios=tuple(ratios))
    per_loc = set(anchors.num_anchors_per_location())
    if len(per_loc) != 1:
        reject_value(
            "MODEL.ANCHOR_GENERATOR.SIZES",
            cfg.MODEL.ANCHOR_GENERATOR.SIZES,
            "the shared RPN head needs the same number of anchors on every feature",
        )
    if any(d != -1 for d in rpn_cfg.CONV_DIMS) or not rpn_cfg.CONV_DIMS:
        reject_value(
            "MODEL.RPN.CONV_DIMS",
            rpn_cfg.CONV_DIMS,
            "only -1 (same width as the input) is supported",
        )
    head = RPNHead(channels.pop(), per_loc.pop(), conv_depth=len(rpn_cfg.CONV_DIMS))
    bg, fg = _two_thresholds("MODEL.RPN.IOU_THRESHOLDS", rpn_cfg.IOU_THRESHOLDS)
    rpn = RegionProposalNetwork(
        anchors,
        head,
        fg_iou_thresh=fg,
        bg_iou_thresh=bg,
        batch_size_per_image=rpn_cfg.BATCH_SIZE_PER_IMAGE,
        positive_fraction=rpn_cfg.POSITIVE_FRACTION,
        pre_nms_top_n=dict(training=rpn_cfg.PRE_NMS_TOPK_TRAIN, testing=rpn_cfg.PRE_NMS_TOPK_TEST),
        post_nms_top_n=dict(
            training=rpn_cfg.POST_NMS_TOPK_TRAIN, testing=rpn_cfg.POST_NMS_TOPK_TEST
        ),
        nms_thresh=rpn_cfg.NMS_THRESH,
    )
    rpn.fg_bg_sampler = SeededBalancedSampler(
        rpn_cfg.BATCH_SIZE_PER_IMAGE, rpn_cfg.POSITIVE_FRACTION
    )
    min_size = cfg.MODEL.PROPOSAL_GENERATOR.MIN_SIZE
    if not min_size >= 0:
        reject_value(
            "MODEL.PROPOSAL_GENERATOR.MIN_SIZE",
            min_size,
            "must be >= 0 (pixels of the network input)",
        )
    if min_size > 0:
        # torchvision drops proposals with a side under min_size before NMS (its own 1e-3
        # otherwise, which keeps any non-empty box, as 0 does in detectron2).
        rpn.min_size = float(min_size)
    return rpn


def _two_thresholds(key: str, values) -> tuple:
    values = list(values)
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or not 0.0 <= values[0] <= values[1] <= 1.0:
        reject_value(key, values, "give [iou] or [background_below, foreground_from] in [0, 1]")
    return values[0], values[1]


def _build_box_head(cfg, shapes, in_features: List[str]):
    box = cfg.MODEL.ROI_BOX_HEAD
    res = box.POOLER_RESOLUTION
    if cfg.MODEL.ROI_HEADS.NAME == "Res5ROIHeads":
        try:
            res5 = build_res5_head(**res5_head_kwargs(cfg))
        except ConfigError:
            raise
        except ValueError as e:  # the builder names the argument; add the config entry
            raise ConfigError(
                f"config MODEL.ROI_HEADS.NAME='Res5ROIHeads' (res5 from MODEL.RESNETS): {e}"
            ) from e
        return Res5BoxHead(res5=res5, out_channels=res5.out_channels)
    if box.NAME == "VGGFCHead":
        return VGGFCHead(
            in_channels=shapes[in_features[0]].channels, pooler_resolution=res, fc_dim=box.FC_DIM
        )
    channels = {shapes[f].channels for f in in_features}
    if len(channels) != 1:
        reject_value(
            "MODEL.ROI_HEADS.IN_FEATURES", in_features, "pooled features need equal channels"
        )
    return FastRCNNConvFCHead(
        in_channels=channels.pop(), pooler_resolution=res, num_fc=box.NUM_FC, fc_dim=box.FC_DIM
    )


def _build_mask_branch(cfg, shapes, in_features: List[str], box_head: nn.Module) -> dict:
    """RoIHeads' mask_roi_pool, mask_head and mask_predictor (Mask R-CNN, MODEL.ROI_MASK_HEAD)."""
    mask = cfg.MODEL.ROI_MASK_HEAD
    convs = dict(num_conv=mask.NUM_CONV, conv_dim=mask.CONV_DIM, norm=mask.NORM)
    if cfg.MODEL.ROI_HEADS.NAME == "Res5ROIHeads":
        # detectron2's Res5ROIHeads: the mask RoIs are pooled from res4 as the box RoIs are
        # (ROI_BOX_HEAD's pooler; ROI_MASK_HEAD.POOLER_* do not apply) and run through the box
        # head's own res5, then the deconv (14x14 masks from 14x14 RoIs).
        pool = cfg.MODEL.ROI_BOX_HEAD
        res5_channels = box_head.out_channels
        head = Res5MaskHead(
            res5=box_head.res5,
            out_channels=mask.CONV_DIM if mask.NUM_CONV else res5_channels,
            convs=build_mask_convs(in_channels=res5_channels, **convs) if mask.NUM_CONV else None,
        )
        out_channels = head.out_channels
    else:
        pool = mask
        in_channels = shapes[in_features[0]].channels
        head = build_mask_convs(in_channels=in_channels, **convs)
        out_channels = mask.CONV_DIM if mask.NUM_CONV else in_channels
    pooler = RoIPooler(
        in_features=in_features,
        strides=[shapes[f].stride for f in in_features],
        output_size=pool.POOLER_RESOLUTION,
        pooler_type=pool.POOLER_TYPE,
        sampling_ratio=pool.POOLER_SAMPLING_RATIO,
    )
    # +1: torchvision's RoIHeads picks the mask channel of the 1-based label (0 = background).
    predictor = MaskPredictor(
        in_channels=out_channels,
        conv_dim=mask.CONV_DIM,
        num_classes=cfg.MODEL.ROI_HEADS.NUM_CLASSES + 1,
        class_agnostic=mask.CLS_AGNOSTIC_MASK,
    )
    return dict(mask_roi_pool=pooler, mask_head=head, mask_predictor=predictor)


def _build_roi_heads(cfg, shapes) -> RoIHeads:
    heads = cfg.MODEL.ROI_HEADS
    box = cfg.MODEL.ROI_BOX_HEAD
    in_features = list(heads.IN_FEATURES)
    missing = [f for f in in_features if f not in shapes]
    if missing:
        reject_value(
            "MODEL.ROI_HEADS.IN_FEATURES", in_features, f"the backbone outputs only {list(shapes)}"
        )
    try:
        pooler = RoIPooler(
            in_features=in_features,
            strides=[shapes[f].stride for f in in_features],
            output_size=box.POOLER_RESOLUTION,
            pooler_type=box.POOLER_TYPE,
            sampling_ratio=box.POOLER_SAMPLING_RATIO,
        )
    except ValueError as e:
        raise ConfigError(f"config MODEL.ROI_HEADS.IN_FEATURES={in_features!r}: {e}") from e
    box_head = _build_box_head(cfg, shapes, in_features)
    # +1: torchvision's predictor reserves class 0 for background.
    predictor = FastRCNNPredictor(box_head.out_channels, heads.NUM_CLASSES + 1)
    # detectron2 / Fast R-CNN initialisation: small Gaussians keep early training stable.
    nn.init.normal_(predictor.cls_score.weight, std=0.01)
    nn.init.normal_(predictor.bbox_pred.weight, std=0.001)
    nn.init.zeros_(predictor.cls_score.bias)
    nn.init.zeros_(predictor.bbox_pred.bias)
    bg, fg = _two_thresholds("MODEL.ROI_HEADS.IOU_THRESHOLDS", heads.IOU_THRESHOLDS)
    roi_heads = RoIHeads(
        pooler,
        box_head,
        predictor,
        fg_iou_thresh=fg,
        bg_iou_thresh=bg,
        batch_size_per_image=heads.BATCH_SIZE_PER_IMAGE,
        positive_fraction=heads.POSITIVE_FRACTION,
        bbox_reg_weights=tuple(float(w) for w in box.BBOX_REG_WEIGHTS),
        score_thresh=heads.SCORE_THRESH_TEST,
        nms_thresh=heads.NMS_THRESH_TEST,
        detections_per_img=heads.DETECTIONS_PER_IMAGE,
        **(_build_mask_branch(cfg, shapes, in_features, box_head) if cfg.MODEL.MASK_ON else {}),
    )
    roi_heads.fg_bg_sampler = SeededBalancedSampler(
        heads.BATCH_SIZE_PER_IMAGE, heads.POSITIVE_FRACTION
    )
    return roi_heads


def build_model(cfg) -> GeneralizedRCNN:
    """The Faster R-CNN (Mask R-CNN with MODEL.MASK_ON) detector the config describes, on
    MODEL.DEVICE.

    Does not load MODEL.WEIGHTS (the trainer / checkpointer does, see
    ``load_pretrained_backbone``), so that a resumed run is not overwritten.
    """
    check_detector_cfg(cfg)
    backbone = build_backbone(cfg)
    shapes = backbone.output_shape()
    rpn = _build_rpn(cfg, shapes)
    roi_heads = _build_roi_heads(cfg, shapes)
    used = list(cfg.MODEL.RPN.IN_FEATURES) + list(cfg.MODEL.ROI_HEADS.IN_FEATURES)
    # Pad to the coarsest used stride so that every feature map tiles the input exactly and
    # torchvision's anchor generator (which infers strides from sizes) gets exact strides.
    size_div = max([backbone.size_divisibility] + [shapes[f].stride for f in used])
    # Per-image seeded fg/bg sampling whenever the run is seeded, so that a batch split over
    # processes draws as one process does (docs/reproducibility.md); SEED < 0 asks for an
    # unseeded run, so the samplers use the global RNG.
    seed = cfg.SEED if cfg.SEED >= 0 else None
    model = GeneralizedRCNN(
        backbone=backbone,
        rpn=rpn,
        roi_heads=roi_heads,
        rpn_in_features=cfg.MODEL.RPN.IN_FEATURES,
        roi_in_features=cfg.MODEL.ROI_HEADS.IN_FEATURES,
        pixel_mean=cfg.MODEL.PIXEL_MEAN,
        pixel_std=cfg.MODEL.PIXEL_STD,
        input_format=cfg.INPUT.FORMAT,
        size_divisibility=size_div,
        sampling_seed=seed,
    )
    return model.to(torch.device(cfg.MODEL.DEVICE))
