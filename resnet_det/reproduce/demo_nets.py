"""The demo chain's VGG-style network: VGG-16's layout at a quarter of its widths.

The paper's baseline, VGG-16, has 138M parameters (103M of them in fc6) and 15.3 GFLOPs per
224 px image: pretraining and fine-tuning it is out of reach of the demo's few CPU minutes,
and its checkpoints alone would take gigabytes. The demo keeps what makes it the VGG-16
Faster R-CNN of Ren et al. (13 3x3 convs in 5 blocks, conv5_3 at stride 16 shared with the
RPN, 7x7 RoI pooling, fc6 and fc7 initialised from the classifier) at widths 16-128 and
fc6/fc7 of 256: 2.6M parameters.

``NarrowVGG`` is VGG at other widths, with VGG's forward, freezing and parameter names
(vgg_block{k}.conv{k}_{j}, fc6, fc7, fc8), so the checkpoint, conversion and MODEL.WEIGHTS
code paths are those of the real VGG-16. It is registered as the classifier ``vgg16_quarter``
(MODEL.CLASSIFIER.ARCH) and the detector backbone ``build_vgg16_quarter_backbone``
(MODEL.BACKBONE.NAME, with the VGGFCHead box head) by :func:`register_demo_nets`.
"""

from typing import Any, Dict, Sequence

from ..config.errors import reject_value, require_one_of, require_valid
from ..modeling.backbone_kwargs import vgg_backbone_kwargs
from ..modeling.checks import check_num_classes
from ..modeling.norm import check_norm
from ..modeling.registry import BACKBONES, CLASSIFIERS
from ..modeling.vgg import VGG, VGG_CHANNELS, VGG_DEPTHS

__all__ = [
    "NarrowVGG",
    "QUARTER_CHANNELS",
    "QUARTER_FC_DIM",
    "CLASSIFIER_NAME",
    "BACKBONE_NAME",
    "register_demo_nets",
]

QUARTER_CHANNELS = tuple(c // 4 for c in VGG_CHANNELS)  # (16, 32, 64, 128, 128)
QUARTER_FC_DIM = 4096 // 16  # 256: fc6 sees 16 times fewer inputs (a quarter of the channels)
CLASSIFIER_NAME = "vgg16_quarter"
BACKBONE_NAME = "build_vgg16_quarter_backbone"


class NarrowVGG(VGG):
    """VGG (16 or 19 layers) at the demo's widths: VGG with other defaults for ``channels``
    and ``fc_dim``.

    Args:
        channels: output channels of the 5 conv blocks (a quarter of VGG's).
        fc_dim: width of fc6 and fc7 (256).
        **kwargs: the other VGG arguments (depth, num_classes, out_features, norm, in_channels,
            dropout, freeze_at).
    """

    def __init__(
        self,
        *,
        channels: Sequence[int] = QUARTER_CHANNELS,
        fc_dim: int = QUARTER_FC_DIM,
        **kwargs: Any,
    ):
        super().__init__(channels=channels, fc_dim=fc_dim, **kwargs)


def _classifier_kwargs(cfg) -> Dict[str, Any]:
    """MODEL.CLASSIFIER.NUM_CLASSES and MODEL.VGG.DEPTH / NORM, as for VGG-16."""
    v = cfg.MODEL.VGG
    if v.NORM == "FrozenBN":
        reject_value(
            "MODEL.VGG.NORM",
            v.NORM,
            "a classifier cannot be pretrained with frozen norms; use 'BN'",
        )
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
        reject_value(
            "MODEL.ROI_BOX_HEAD.FC_DIM",
            fc_dim,
            f"{BACKBONE_NAME}'s fc6/fc7 are {QUARTER_FC_DIM} wide (set FC_DIM {QUARTER_FC_DIM})",
        )
    return vgg_backbone_kwargs(cfg)


def register_demo_nets() -> None:
    """Register ``vgg16_quarter`` (classifier) and ``build_vgg16_quarter_backbone`` (detector
    backbone, VGGFCHead box head) once; later calls do nothing."""
    if CLASSIFIER_NAME not in CLASSIFIERS:
        CLASSIFIERS.register(CLASSIFIER_NAME, build=NarrowVGG, from_config=_classifier_kwargs)
    if BACKBONE_NAME not in BACKBONES:
        BACKBONES.register(
            BACKBONE_NAME, build=NarrowVGG, from_config=_backbone_kwargs, vgg_head=True
        )
