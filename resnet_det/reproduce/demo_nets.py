"""The demo chain's VGG-style network: VGG-16's layout at a quarter of its widths.

The paper's baseline, VGG-16, has 138M parameters (103M of them in fc6) and 15.3 GFLOPs per
224 px image: pretraining and fine-tuning it is out of reach of the demo's few CPU minutes,
and its checkpoints alone would take gigabytes. The demo keeps what makes it the VGG-16
Faster R-CNN of Ren et al. (13 3x3 convs in 5 blocks, conv5_3 at stride 16 shared with the
RPN, 7x7 RoI pooling, fc6 and fc7 initialised from the classifier) at widths 16-128 and
fc6/fc7 of 256: 2.6M parameters.

``NarrowVGG`` reuses VGG's forward, freezing and parameter names (vgg_block{k}.conv{k}_{j},
fc6, fc7, fc8), so the checkpoint, conversion and MODEL.WEIGHTS code paths are those of the
real VGG-16. It is registered as the classifier ``vgg16_quarter`` (MODEL.CLASSIFIER.ARCH) and
the detector backbone ``build_vgg16_quarter_backbone`` (MODEL.BACKBONE.NAME, with the
VGGFCHead box head) by :func:`register_demo_nets`.
"""
from collections import OrderedDict
from typing import Any, Dict, Optional, Sequence

from torch import nn

from ..config.errors import reject_value, require_one_of, require_valid
from ..modeling.backbone import Backbone
from ..modeling.backbone_kwargs import vgg_backbone_kwargs
from ..modeling.checks import check_num_classes, check_positive_int, resolve_out_features
from ..modeling.layers import make_conv
from ..modeling.norm import NormArg, check_norm
from ..modeling.registry import BACKBONES, CLASSIFIERS
from ..modeling.vgg import FEATURE_NAMES, VGG, VGG_CHANNELS, VGG_DEPTHS

__all__ = ["NarrowVGG", "QUARTER_CHANNELS", "QUARTER_FC_DIM", "CLASSIFIER_NAME", "BACKBONE_NAME",
           "register_demo_nets"]

QUARTER_CHANNELS = tuple(c // 4 for c in VGG_CHANNELS)  # (16, 32, 64, 128, 128)
QUARTER_FC_DIM = 4096 // 16  # 256: fc6 sees 16 times fewer inputs (a quarter of the channels)
CLASSIFIER_NAME = "vgg16_quarter"
BACKBONE_NAME = "build_vgg16_quarter_backbone"


class NarrowVGG(VGG):
    """VGG (16 or 19 layers) with the widths given instead of VGG's 64-512 and 4096.

    Args:
        depth: 16 or 19 (the number of convs per block, as VGG).
        channels: output channels of the 5 conv blocks.
        fc_dim: width of fc6 and fc7.
        num_classes, out_features, norm, in_channels, dropout, freeze_at: as VGG.
    """

    def __init__(self, *, depth: int = 16, channels: Sequence[int] = QUARTER_CHANNELS,
                 fc_dim: int = QUARTER_FC_DIM, num_classes: Optional[int] = None,
                 out_features: Optional[Sequence[str]] = None, norm: NormArg = "none",
                 in_channels: int = 3, dropout: float = 0.5, freeze_at: int = 0):
        # VGG.__init__ builds VGG's own widths; the layers are built here, under VGG's names,
        # and VGG's forward() and freeze() run on them unchanged.
        Backbone.__init__(self)
        if depth not in VGG_DEPTHS:
            raise ValueError(f"resnet_det: depth={depth!r} is not a VGG depth; choose one of {sorted(VGG_DEPTHS)}")
        if len(channels) != len(VGG_CHANNELS):
            raise ValueError(f"resnet_det: channels={list(channels)!r} needs one width per conv block (5)")
        for name, value in [("in_channels", in_channels), ("fc_dim", fc_dim)] + [
                (f"channels[{i}]", c) for i, c in enumerate(channels)]:
            check_positive_int(name, value)
        check_norm(norm)
        check_num_classes(num_classes)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"resnet_det: dropout={dropout!r} must be in [0, 1)")
        self.depth = depth
        self.num_classes = num_classes
        self._out_features = resolve_out_features(out_features, FEATURE_NAMES, num_classes)
        num_blocks = 5 if num_classes is not None else max(FEATURE_NAMES.index(f) for f in self._out_features) + 1
        self.block_names = []
        ch = in_channels
        for k in range(1, num_blocks + 1):
            layers = OrderedDict()
            if k > 1:
                layers[f"pool{k - 1}"] = nn.MaxPool2d(kernel_size=2, stride=2)
            for j in range(1, VGG_DEPTHS[depth][k - 1] + 1):
                layers[f"conv{k}_{j}"] = make_conv(ch, channels[k - 1], 3, norm=norm, bias=True)
                layers[f"relu{k}_{j}"] = nn.ReLU(inplace=True)
                ch = channels[k - 1]
            self.add_module(f"vgg_block{k}", nn.Sequential(layers))
            self.block_names.append(f"vgg_block{k}")
            self._out_feature_channels[FEATURE_NAMES[k - 1]] = ch
            self._out_feature_strides[FEATURE_NAMES[k - 1]] = 2 ** (k - 1)
        if num_classes is not None:
            self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
            self.fc6 = nn.Linear(ch * 7 * 7, fc_dim)
            self.fc7 = nn.Linear(fc_dim, fc_dim)
            self.fc8 = nn.Linear(fc_dim, num_classes)
            self.dropout = nn.Dropout(dropout)
            # VGG's N(0, 0.01) with the std scaled by sqrt(VGG-16's fan-in / this fan-in), so each
            # fc layer multiplies the signal's scale as VGG-16's does; plain 0.01 on 16x fewer
            # inputs would shrink the logits (and the gradients below them) ~30-fold.
            for fc, full_fan_in in ((self.fc6, VGG_CHANNELS[-1] * 49), (self.fc7, 4096), (self.fc8, 4096)):
                nn.init.normal_(fc.weight, 0, 0.01 * (full_fan_in / fc.in_features) ** 0.5)
                nn.init.zeros_(fc.bias)
        self.freeze(freeze_at)


def _classifier_kwargs(cfg) -> Dict[str, Any]:
    """MODEL.CLASSIFIER.NUM_CLASSES and MODEL.VGG.DEPTH / NORM, as for VGG-16."""
    v = cfg.MODEL.VGG
    if v.NORM == "FrozenBN":
        reject_value("MODEL.VGG.NORM", v.NORM, "a classifier cannot be pretrained with frozen norms; use 'BN'")
    require_valid("MODEL.VGG.NORM", v.NORM, check_norm)
    num_classes = cfg.MODEL.CLASSIFIER.NUM_CLASSES
    require_valid("MODEL.CLASSIFIER.NUM_CLASSES", num_classes, check_num_classes)
    require_one_of("MODEL.VGG.DEPTH", v.DEPTH, VGG_DEPTHS)
    return dict(depth=v.DEPTH, norm=v.NORM, num_classes=int(num_classes), in_channels=3)


def _backbone_kwargs(cfg) -> Dict[str, Any]:
    """VGG's backbone kwargs (vgg_conv5 at stride 16, MODEL.VGG.*, FREEZE_AT); fc6/fc7 are the
    box head's, MODEL.ROI_BOX_HEAD.FC_DIM, which must be the classifier's to load them."""
    fc_dim = cfg.MODEL.ROI_BOX_HEAD.FC_DIM
    if cfg.MODEL.ROI_BOX_HEAD.NAME == "VGGFCHead" and fc_dim != QUARTER_FC_DIM:
        reject_value("MODEL.ROI_BOX_HEAD.FC_DIM", fc_dim,
                     f"{BACKBONE_NAME}'s fc6/fc7 are {QUARTER_FC_DIM} wide (set FC_DIM {QUARTER_FC_DIM})")
    return vgg_backbone_kwargs(cfg)


def register_demo_nets() -> None:
    """Register ``vgg16_quarter`` (classifier) and ``build_vgg16_quarter_backbone`` (detector
    backbone, VGGFCHead box head) once; later calls do nothing."""
    if CLASSIFIER_NAME not in CLASSIFIERS:
        CLASSIFIERS.register(CLASSIFIER_NAME, build=NarrowVGG, from_config=_classifier_kwargs)
    if BACKBONE_NAME not in BACKBONES:
        BACKBONES.register(BACKBONE_NAME, build=NarrowVGG, from_config=_backbone_kwargs, vgg_head=True)
