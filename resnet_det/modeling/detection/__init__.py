"""Faster R-CNN and Mask R-CNN assembled from torchvision.models.detection parts
(docs/internals.md)."""

from .box_heads import FastRCNNConvFCHead, Res5BoxHead, VGGFCHead
from .fpn import FPNBackbone
from .mask_heads import MaskPredictor, Res5MaskHead, build_mask_convs
from .poolers import POOLER_TYPES, RoIPooler
from .rcnn import LOSS_NAMES, GeneralizedRCNN
from .sampling import SeededBalancedSampler, image_seed

__all__ = [
    "GeneralizedRCNN",
    "LOSS_NAMES",
    "FPNBackbone",
    "RoIPooler",
    "POOLER_TYPES",
    "Res5BoxHead",
    "VGGFCHead",
    "FastRCNNConvFCHead",
    "SeededBalancedSampler",
    "image_seed",
    "MaskPredictor",
    "Res5MaskHead",
    "build_mask_convs",
]
