"""The backbone contract shared by ResNet, the CIFAR nets and VGG (docs/internals.md), and
``freeze_module``, what their ``freeze(freeze_at)`` does to each frozen part."""

from typing import Dict, List

from torch import nn

from .norm import convert_frozen_batchnorm
from .shape_spec import ShapeSpec

__all__ = ["Backbone", "freeze_module"]


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
