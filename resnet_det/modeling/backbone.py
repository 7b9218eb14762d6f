"""The backbone contract shared by ResNet, the CIFAR nets, VGG and FPN (docs/internals.md):
``Backbone``, the ``ShapeSpec`` of each named feature, and ``freeze_module``, what a backbone's
``freeze(freeze_at)`` does to each frozen part."""

from dataclasses import dataclass
from typing import Dict, List, Optional

from torch import nn

from .layers import convert_frozen_batchnorm

__all__ = ["Backbone", "ShapeSpec", "freeze_module"]


@dataclass(frozen=True)
class ShapeSpec:
    """Channels and stride (relative to the input image) of one named feature map.

    ``ShapeSpec(channels, stride)`` positionally; height/width are optional extras, as in
    detectron2's ShapeSpec, which consumers may build by keyword.
    """

    channels: Optional[int] = None
    stride: Optional[int] = None
    height: Optional[int] = None
    width: Optional[int] = None


def freeze_module(module: nn.Module) -> nn.Module:
    """Stop ``module``'s parameters from requiring grad and turn its BatchNorms into
    FrozenBatchNorm2d (the paper fixes BN statistics when fine-tuning for detection,
    Appendix A). Returns the module (a new one only if ``module`` itself is a BatchNorm)."""
    for p in module.parameters():
        p.requires_grad_(False)
    return convert_frozen_batchnorm(module)


class Backbone(nn.Module):
    """Base class: ``forward(x)`` returns {name: Tensor} for the names in ``out_features``.

    Subclasses fill ``self._out_features`` (list of names), ``self._out_feature_channels``
    and ``self._out_feature_strides`` (name -> int).
    """

    def __init__(self):
        super().__init__()
        self._out_features: List[str] = []
        self._out_feature_channels: Dict[str, int] = {}
        self._out_feature_strides: Dict[str, int] = {}

    @property
    def size_divisibility(self) -> int:
        """Input sides must be a multiple of this (0 = no constraint); FPN overrides it."""
        return 0

    @property
    def padding_constraints(self) -> Dict[str, int]:
        return {}

    @property
    def out_features(self) -> List[str]:
        return list(self._out_features)

    def output_shape(self) -> Dict[str, ShapeSpec]:
        """{name: ShapeSpec(channels, stride)} for each feature ``forward`` returns."""
        return {
            name: ShapeSpec(
                channels=self._out_feature_channels[name], stride=self._out_feature_strides[name]
            )
            for name in self._out_features
        }
