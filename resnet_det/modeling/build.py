"""cfg -> detector: the only place that reads the detection model's config keys.

``build_backbone(cfg)`` maps MODEL.BACKBONE / MODEL.RESNETS / MODEL.VGG / MODEL.FPN to the
keyword arguments of ``build_resnet`` / ``build_vgg`` / ``FPNBackbone``; ``build_model(cfg)``
assembles the Faster R-CNN (resnet_det.modeling.detection) and checks that the settings fit
together, naming the offending key.
"""
import logging
from typing import List, Sequence

import torch
from torch import nn
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.models.detection.rpn import RegionProposalNetwork, RPNHead

from ..config import ConfigError
from ..config import reject_value as _fail
from .backbone import Backbone
from .detection.box_heads import FastRCNNConvFCHead, Res5BoxHead, VGGFCHead
from .detection.fpn import FPNBackbone
from .detection.poolers import POOLER_TYPES, RoIPooler
from .detection.rcnn import GeneralizedRCNN
from .detection.sampling import SeededBalancedSampler
from .resnet import RESNET_DEPTHS, build_res5_head, build_resnet
from .vgg import VGG_DEPTHS, build_vgg

__all__ = ["build_backbone", "build_model", "BACKBONE_NAMES"]

logger = logging.getLogger(__name__)

# Our builder names, and the detectron2-plugin names accepted as aliases (defaults.py).
_RESNET_NAMES = ("build_resnet_backbone", "build_resnet_det_backbone")
_FPN_NAMES = ("build_resnet_fpn_backbone", "build_resnet_det_fpn_backbone")
_VGG_NAMES = ("build_vgg_backbone", "build_vgg16_backbone")
BACKBONE_NAMES = _RESNET_NAMES + _FPN_NAMES + _VGG_NAMES
_ROI_HEADS = ("Res5ROIHeads", "StandardROIHeads")
_BOX_HEADS = ("FastRCNNConvFCHead", "VGGFCHead")


def _resnet_kwargs(cfg) -> dict:
    r = cfg.MODEL.RESNETS
    if r.DEPTH not in RESNET_DEPTHS:
        _fail("MODEL.RESNETS.DEPTH", r.DEPTH, f"choose one of {sorted(RESNET_DEPTHS)}")
    bottleneck = r.DEPTH >= 50
    expected_res2 = r.STEM_OUT_CHANNELS * (4 if bottleneck else 1)
    if r.RES2_OUT_CHANNELS != expected_res2:
        _fail(
            "MODEL.RESNETS.RES2_OUT_CHANNELS", r.RES2_OUT_CHANNELS,
            f"depth {r.DEPTH} with STEM_OUT_CHANNELS {r.STEM_OUT_CHANNELS} has res2 width "
            f"{expected_res2} (set RES2_OUT_CHANNELS {expected_res2}, e.g. 64 for ResNet-18/34)",
        )
    if not bottleneck and (r.NUM_GROUPS != 1 or r.WIDTH_PER_GROUP != 64):
        _fail("MODEL.RESNETS.NUM_GROUPS", r.NUM_GROUPS,
              f"grouped / wide blocks need DEPTH >= 50 (DEPTH is {r.DEPTH}, WIDTH_PER_GROUP {r.WIDTH_PER_GROUP})")
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


def build_backbone(cfg) -> Backbone:
    """The backbone named by MODEL.BACKBONE.NAME, frozen up to MODEL.BACKBONE.FREEZE_AT.

    ResNet (C4): outputs MODEL.RESNETS.OUT_FEATURES. ResNet-FPN: FPNBackbone on
    MODEL.FPN.IN_FEATURES (p2..p6). VGG: vgg_conv5 (conv5_3, stride 16).
    """
    name = cfg.MODEL.BACKBONE.NAME
    freeze_at = cfg.MODEL.BACKBONE.FREEZE_AT
    try:
        if name in _RESNET_NAMES:
            r = cfg.MODEL.RESNETS
            if r.RES5_DILATION not in (1, 2):
                _fail("MODEL.RESNETS.RES5_DILATION", r.RES5_DILATION, "must be 1 or 2")
            return build_resnet(
                out_features=list(r.OUT_FEATURES), res5_dilation=r.RES5_DILATION,
                freeze_at=freeze_at, **_resnet_kwargs(cfg),
            )
        if name in _FPN_NAMES:
            if cfg.MODEL.RESNETS.RES5_DILATION != 1:
                _fail("MODEL.RESNETS.RES5_DILATION", cfg.MODEL.RESNETS.RES5_DILATION,
                      "FPN needs res5 at stride 32 (RES5_DILATION 1)")
            in_features = list(cfg.MODEL.FPN.IN_FEATURES)
            bottom_up = build_resnet(out_features=in_features, freeze_at=freeze_at, **_resnet_kwargs(cfg))
            return FPNBackbone(
                bottom_up=bottom_up, in_features=in_features,
                out_channels=cfg.MODEL.FPN.OUT_CHANNELS, norm=cfg.MODEL.FPN.NORM,
            )
        if name in _VGG_NAMES:
            if cfg.MODEL.VGG.DEPTH not in VGG_DEPTHS:
                _fail("MODEL.VGG.DEPTH", cfg.MODEL.VGG.DEPTH, f"choose one of {sorted(VGG_DEPTHS)}")
            return build_vgg(depth=cfg.MODEL.VGG.DEPTH, norm=cfg.MODEL.VGG.NORM,
                             out_features=["vgg_conv5"], freeze_at=freeze_at)
    except ConfigError:
        raise
    except ValueError as e:  # the builders name the argument; add the config section
        raise ConfigError(f"config MODEL.BACKBONE.NAME={name!r} (MODEL.RESNETS / MODEL.VGG / "
                          f"MODEL.BACKBONE.FREEZE_AT): {e}") from e
    _fail("MODEL.BACKBONE.NAME", name, f"choose one of {list(BACKBONE_NAMES)}")


def _per_feature(key: str, values: Sequence, features: List[str]) -> List[tuple]:
    """detectron2's broadcast rule: one list for all features, or one list per feature."""
    values = [tuple(v) for v in values]
    if len(values) == 1:
        return values * len(features)
    if len(values) != len(features):
        _fail(key, values, f"give one list, or one list per RPN.IN_FEATURES {features}")
    return values


def _build_rpn(cfg, shapes) -> RegionProposalNetwork:
    rpn_cfg = cfg.MODEL.RPN
    in_features = list(rpn_cfg.IN_FEATURES)
    missing = [f for f in in_features if f not in shapes]
    if missing:
        _fail("MODEL.RPN.IN_FEATURES", in_features, f"the backbone outputs only {list(shapes)}")
    channels = {shapes[f].channels for f in in_features}
    if len(channels) != 1:
        _fail("MODEL.RPN.IN_FEATURES", in_features, "the shared RPN head needs equal channels on every feature")
    sizes = _per_feature("MODEL.ANCHOR_GENERATOR.SIZES", cfg.MODEL.ANCHOR_GENERATOR.SIZES, in_features)
    ratios = _per_feature("MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS", cfg.MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS, in_features)
    anchors = AnchorGenerator(sizes=tuple(sizes), aspect_ratios=tuple(ratios))
    per_loc = set(anchors.num_anchors_per_location())
    if len(per_loc) != 1:
        _fail("MODEL.ANCHOR_GENERATOR.SIZES", cfg.MODEL.ANCHOR_GENERATOR.SIZES,
              "the shared RPN head needs the same number of anchors on every feature")
    if any(d != -1 for d in rpn_cfg.CONV_DIMS) or not rpn_cfg.CONV_DIMS:
        _fail("MODEL.RPN.CONV_DIMS", rpn_cfg.CONV_DIMS, "only -1 (same width as the input) is supported")
    head = RPNHead(channels.pop(), per_loc.pop(), conv_depth=len(rpn_cfg.CONV_DIMS))
    bg, fg = _two_thresholds("MODEL.RPN.IOU_THRESHOLDS", rpn_cfg.IOU_THRESHOLDS)
    rpn = RegionProposalNetwork(
        anchors, head,
        fg_iou_thresh=fg, bg_iou_thresh=bg,
        batch_size_per_image=rpn_cfg.BATCH_SIZE_PER_IMAGE,
        positive_fraction=rpn_cfg.POSITIVE_FRACTION,
        pre_nms_top_n=dict(training=rpn_cfg.PRE_NMS_TOPK_TRAIN, testing=rpn_cfg.PRE_NMS_TOPK_TEST),
        post_nms_top_n=dict(training=rpn_cfg.POST_NMS_TOPK_TRAIN, testing=rpn_cfg.POST_NMS_TOPK_TEST),
        nms_thresh=rpn_cfg.NMS_THRESH,
    )
    rpn.fg_bg_sampler = SeededBalancedSampler(rpn_cfg.BATCH_SIZE_PER_IMAGE, rpn_cfg.POSITIVE_FRACTION)
    return rpn


def _two_thresholds(key: str, values) -> tuple:
    values = list(values)
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or not 0.0 <= values[0] <= values[1] <= 1.0:
        _fail(key, values, "give [iou] or [background_below, foreground_from] in [0, 1]")
    return values[0], values[1]


def _build_box_head(cfg, backbone_name: str, shapes, in_features: List[str]):
    heads = cfg.MODEL.ROI_HEADS
    box = cfg.MODEL.ROI_BOX_HEAD
    res = box.POOLER_RESOLUTION
    if heads.NAME == "Res5ROIHeads":
        if backbone_name not in _RESNET_NAMES:
            _fail("MODEL.ROI_HEADS.NAME", heads.NAME,
                  f"the res5 box head needs a ResNet C4 backbone (MODEL.BACKBONE.NAME is {backbone_name!r}; "
                  "use StandardROIHeads for FPN and VGG)")
        if in_features != ["res4"]:
            _fail("MODEL.ROI_HEADS.IN_FEATURES", list(heads.IN_FEATURES), "Res5ROIHeads pools from ['res4']")
        if cfg.MODEL.RESNETS.RES5_DILATION != 1:
            _fail("MODEL.RESNETS.RES5_DILATION", cfg.MODEL.RESNETS.RES5_DILATION,
                  "Res5ROIHeads runs res5 with stride 2 on the RoIs (RES5_DILATION 1)")
        kw = _resnet_kwargs(cfg)
        res5 = build_res5_head(
            depth=kw["depth"], in_channels=shapes["res4"].channels, first_stride=2,
            shortcut=kw["shortcut"], stride_in_1x1=kw["stride_in_1x1"], norm=kw["norm"],
            groups=kw["groups"], width_per_group=kw["width_per_group"],
            zero_init_residual=kw["zero_init_residual"], residual=kw["residual"],
        )
        return Res5BoxHead(res5=res5, out_channels=res5.out_channels)
    if box.NAME == "VGGFCHead":
        if backbone_name not in _VGG_NAMES:
            _fail("MODEL.ROI_BOX_HEAD.NAME", box.NAME, f"VGG's fc6/fc7 head needs a VGG backbone, not {backbone_name!r}")
        if res != 7:
            _fail("MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION", res, "VGG's fc6 takes 7x7 pooled features (pool5's size)")
        return VGGFCHead(in_channels=shapes[in_features[0]].channels, pooler_resolution=res, fc_dim=box.FC_DIM)
    if box.NAME == "FastRCNNConvFCHead":
        channels = {shapes[f].channels for f in in_features}
        if len(channels) != 1:
            _fail("MODEL.ROI_HEADS.IN_FEATURES", in_features, "pooled features need equal channels")
        return FastRCNNConvFCHead(in_channels=channels.pop(), pooler_resolution=res, num_fc=box.NUM_FC, fc_dim=box.FC_DIM)
    _fail("MODEL.ROI_BOX_HEAD.NAME", box.NAME, f"choose one of {list(_BOX_HEADS)}")


def _build_roi_heads(cfg, backbone_name: str, shapes) -> RoIHeads:
    heads = cfg.MODEL.ROI_HEADS
    box = cfg.MODEL.ROI_BOX_HEAD
    if heads.NAME not in _ROI_HEADS:
        _fail("MODEL.ROI_HEADS.NAME", heads.NAME, f"choose one of {list(_ROI_HEADS)}")
    if backbone_name in _VGG_NAMES and heads.NAME != "StandardROIHeads":
        _fail("MODEL.ROI_HEADS.NAME", heads.NAME, "a VGG backbone needs StandardROIHeads (fc6/fc7 box head)")
    if not isinstance(heads.NUM_CLASSES, int) or heads.NUM_CLASSES < 1:
        _fail("MODEL.ROI_HEADS.NUM_CLASSES", heads.NUM_CLASSES, "must be a positive int")
    if box.POOLER_TYPE not in POOLER_TYPES:
        _fail("MODEL.ROI_BOX_HEAD.POOLER_TYPE", box.POOLER_TYPE, f"choose one of {list(POOLER_TYPES)}")
    in_features = list(heads.IN_FEATURES)
    missing = [f for f in in_features if f not in shapes]
    if missing:
        _fail("MODEL.ROI_HEADS.IN_FEATURES", in_features, f"the backbone outputs only {list(shapes)}")
    if len(box.BBOX_REG_WEIGHTS) != 4:
        _fail("MODEL.ROI_BOX_HEAD.BBOX_REG_WEIGHTS", box.BBOX_REG_WEIGHTS, "needs 4 values (dx, dy, dw, dh)")
    try:
        pooler = RoIPooler(
            in_features=in_features, strides=[shapes[f].stride for f in in_features],
            output_size=box.POOLER_RESOLUTION, pooler_type=box.POOLER_TYPE,
            sampling_ratio=box.POOLER_SAMPLING_RATIO,
        )
    except ValueError as e:
        raise ConfigError(f"config MODEL.ROI_HEADS.IN_FEATURES={in_features!r}: {e}") from e
    box_head = _build_box_head(cfg, backbone_name, shapes, in_features)
    # +1: torchvision's predictor reserves class 0 for background.
    predictor = FastRCNNPredictor(box_head.out_channels, heads.NUM_CLASSES + 1)
    # detectron2 / Fast R-CNN initialisation: small Gaussians keep early training stable.
    nn.init.normal_(predictor.cls_score.weight, std=0.01)
    nn.init.normal_(predictor.bbox_pred.weight, std=0.001)
    nn.init.zeros_(predictor.cls_score.bias)
    nn.init.zeros_(predictor.bbox_pred.bias)
    bg, fg = _two_thresholds("MODEL.ROI_HEADS.IOU_THRESHOLDS", heads.IOU_THRESHOLDS)
    roi_heads = RoIHeads(
        pooler, box_head, predictor,
        fg_iou_thresh=fg, bg_iou_thresh=bg,
        batch_size_per_image=heads.BATCH_SIZE_PER_IMAGE,
        positive_fraction=heads.POSITIVE_FRACTION,
        bbox_reg_weights=tuple(float(w) for w in box.BBOX_REG_WEIGHTS),
        score_thresh=heads.SCORE_THRESH_TEST,
        nms_thresh=heads.NMS_THRESH_TEST,
        detections_per_img=heads.DETECTIONS_PER_IMAGE,
    )
    roi_heads.fg_bg_sampler = SeededBalancedSampler(heads.BATCH_SIZE_PER_IMAGE, heads.POSITIVE_FRACTION)
    return roi_heads


def build_model(cfg) -> GeneralizedRCNN:
    """The Faster R-CNN detector the config describes, on MODEL.DEVICE.

    Does not load MODEL.WEIGHTS (the trainer / checkpointer does, see
    ``load_pretrained_backbone``), so that a resumed run is not overwritten.
    """
    if cfg.MODEL.META_ARCHITECTURE != "GeneralizedRCNN":
        _fail("MODEL.META_ARCHITECTURE", cfg.MODEL.META_ARCHITECTURE,
              "build_model builds the detector 'GeneralizedRCNN' (classifiers: resnet_det.modeling.classifier)")
    if cfg.MODEL.PROPOSAL_GENERATOR.NAME != "RPN":
        _fail("MODEL.PROPOSAL_GENERATOR.NAME", cfg.MODEL.PROPOSAL_GENERATOR.NAME, "only 'RPN' is supported")
    if cfg.INPUT.FORMAT not in ("BGR", "RGB"):
        _fail("INPUT.FORMAT", cfg.INPUT.FORMAT, "choose 'BGR' or 'RGB'")
    for key in ("PIXEL_MEAN", "PIXEL_STD"):
        values = getattr(cfg.MODEL, key)
        if len(values) != 3 or (key == "PIXEL_STD" and min(values) <= 0):
            _fail(f"MODEL.{key}", values, "needs 3 values in INPUT.FORMAT channel order (std > 0)")
    name = cfg.MODEL.BACKBONE.NAME
    backbone = build_backbone(cfg)
    shapes = backbone.output_shape()
    rpn = _build_rpn(cfg, shapes)
    roi_heads = _build_roi_heads(cfg, name, shapes)
    used = list(cfg.MODEL.RPN.IN_FEATURES) + list(cfg.MODEL.ROI_HEADS.IN_FEATURES)
    # Pad to the coarsest used stride so that every feature map tiles the input exactly and
    # torchvision's anchor generator (which infers strides from sizes) gets exact strides.
    size_div = max([backbone.size_divisibility] + [shapes[f].stride for f in used])
    # Per-image seeded fg/bg sampling (design.md, testing notes) whenever the run is seeded;
    # SEED < 0 asks for an unseeded run, so the samplers use the global RNG.
    seed = cfg.SEED if cfg.SEED >= 0 else None
    model = GeneralizedRCNN(
        backbone=backbone, rpn=rpn, roi_heads=roi_heads,
        rpn_in_features=cfg.MODEL.RPN.IN_FEATURES, roi_in_features=cfg.MODEL.ROI_HEADS.IN_FEATURES,
        pixel_mean=cfg.MODEL.PIXEL_MEAN, pixel_std=cfg.MODEL.PIXEL_STD, input_format=cfg.INPUT.FORMAT,
        size_divisibility=size_div, sampling_seed=seed,
    )
    return model.to(torch.device(cfg.MODEL.DEVICE))
