"""The box heads of the paper's two detectors, in detectron2's registries.

- ``ResNetDetRes5ROIHeads`` (ROI_HEADS_REGISTRY): detectron2's Res5ROIHeads (C4: RoI pooling
  on res4, then res5 and global average pooling, He et al. 2015 Appendix A) with *our* res5, so
  the backbone's block options (shortcut A/B/C, plain, norm, stride_in_1x1, any depth) reach the
  head too; detectron2's own version always builds 3 bottleneck blocks with projection
  shortcuts. With MODEL.MASK_ON, Res5ROIHeads' mask head (detectron2's, built from
  MODEL.ROI_MASK_HEAD) runs on the same res5 features, as in detectron2's C4 Mask R-CNN.
- ``VGGFCHead`` (ROI_BOX_HEAD_REGISTRY): VGG's fc6/fc7 (4096, ReLU, dropout) on 512x7x7 RoIPool
  features (Ren et al., Faster R-CNN), named fc6/fc7 so VGG ImageNet weights load into it.
"""

import torch
from detectron2.config import configurable
from detectron2.layers import ShapeSpec as D2ShapeSpec
from detectron2.modeling import ROI_HEADS_REGISTRY
from detectron2.modeling.roi_heads import ROI_BOX_HEAD_REGISTRY, Res5ROIHeads

from ..modeling.build import res5_head_of
from ..modeling.detection.box_heads import VGGFCHead as _VGGFCHead
from ..modeling.registry import BACKBONES, BOX_HEADS
from ..utils.errors import ConfigError
from .config import reject_deformable

__all__ = ["ResNetDetRes5ROIHeads", "VGGFCHead"]


@ROI_HEADS_REGISTRY.register()
class ResNetDetRes5ROIHeads(Res5ROIHeads):
    """Res5ROIHeads whose res5 is the one the built-in engine's Res5ROIHeads builds: the res5
    stage of the ResNet C4 backbone MODEL.RESNETS describes (the same options as the backbone,
    ``resnet_det.modeling.build_res5_head``). Constructor: Res5ROIHeads'."""

    @classmethod
    def _build_res5_block(cls, cfg):
        reject_deformable(cfg)
        backbone = BACKBONES.describe(cfg, name="build_resnet_backbone")
        res5 = res5_head_of(backbone, cfg.MODEL.ROI_HEADS.NAME).build()
        return res5, res5.out_channels


@ROI_BOX_HEAD_REGISTRY.register()
class VGGFCHead(_VGGFCHead):
    """resnet_det's VGG fc6/fc7 head with detectron2's construction from a config.

    Args:
        in_channels: channels of the pooled feature (512 for conv5_3).
        pooler_resolution: side of the pooled feature (7, VGG's pool5 size).
        fc_dim: width of fc6 and fc7 (4096).
        dropout: dropout after each fc in training (0.5, as VGG / Fast R-CNN).
    """

    @configurable
    def __init__(
        self,
        *,
        in_channels: int = 512,
        pooler_resolution: int = 7,
        fc_dim: int = 4096,
        dropout: float = 0.5,
    ):
        super().__init__(
            in_channels=in_channels,
            pooler_resolution=pooler_resolution,
            fc_dim=fc_dim,
            dropout=dropout,
        )

    @classmethod
    def from_config(cls, cfg, input_shape: D2ShapeSpec) -> dict:
        # The built-in engine's description of the head, on the backbone's (whose entry says
        # whether it has fc6/fc7 and which widths they fix).
        head = BOX_HEADS.describe(cfg, BACKBONES.describe(cfg), name="VGGFCHead")
        res = head["pooler_resolution"]
        if (input_shape.height, input_shape.width) not in ((res, res), (None, None)):
            raise ConfigError(
                f"config MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION={res!r}: the pooler gives "
                f"{input_shape.height}x{input_shape.width} features"
            )
        return dict(in_channels=input_shape.channels, **head.kwargs)

    @property
    @torch.jit.unused  # not for TorchScript (scripting_with_instances compiles properties)
    def output_shape(self) -> D2ShapeSpec:
        """What detectron2's FastRCNNOutputLayers is built from."""
        return D2ShapeSpec(channels=self.out_channels)
