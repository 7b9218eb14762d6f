"""resnet_det's backbones in detectron2's BACKBONE_REGISTRY.

Our ResNet and VGG already follow detectron2's backbone contract (forward -> {name: feature},
output_shape, size_divisibility) and detectron2's parameter names (docs/internals.md), so the
plugin adds only detectron2's base class and ShapeSpec type: checkpoints of detectron2's
R-50/R-101 models and of ours load into each other without renaming. The FPN variant puts
detectron2's own FPN on our bottom-up ResNet, so its names are detectron2's too
(backbone.bottom_up.res2..., backbone.fpn_lateral2...).
"""
from typing import Dict, Type, TypeVar

from detectron2.layers import ShapeSpec as D2ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY
from detectron2.modeling import Backbone as D2Backbone
from detectron2.modeling.backbone.fpn import FPN, LastLevelMaxPool
from torch import nn

from ..config import ConfigError
from ..modeling.resnet import ResNet, build_resnet
from ..modeling.vgg import VGG, build_vgg
from .config import resnet_kwargs, vgg_kwargs

__all__ = ["ResNetDetBackbone", "VGGDetBackbone", "build_resnet_det_backbone",
           "build_resnet_det_fpn_backbone", "build_vgg16_backbone"]


class _D2Shapes:
    """output_shape() with detectron2's ShapeSpec (its FPN / RPN / heads read it)."""

    def output_shape(self) -> Dict[str, D2ShapeSpec]:
        return {name: D2ShapeSpec(channels=s.channels, stride=s.stride)
                for name, s in super().output_shape().items()}


class ResNetDetBackbone(_D2Shapes, ResNet, D2Backbone):
    """resnet_det's ResNet (any depth, shortcut A/B/C, plain, norm) as a detectron2 Backbone.

    Built by ``build_resnet_det_backbone``; the constructor is ResNet's (see its Args).
    """


class VGGDetBackbone(_D2Shapes, VGG, D2Backbone):
    """resnet_det's VGG-16/19 (vgg_conv5: conv5_3 after ReLU, stride 16) as a detectron2
    Backbone. Built by ``build_vgg16_backbone``; the constructor is VGG's (see its Args)."""


T = TypeVar("T", bound=nn.Module)


def _as_detectron2(net: nn.Module, cls: Type[T]) -> T:
    """Give ``net`` (built by our builder) the detectron2-facing subclass ``cls``.

    The subclasses add methods only, no state, so re-classing the built module is exact and
    keeps build_resnet / build_vgg the one place that assembles the networks.
    """
    base = cls.__mro__[2]  # ResNet or VGG, after _D2Shapes
    if type(net) is not base:
        raise TypeError(f"resnet_det.d2: expected a {base.__name__}, got {type(net).__name__}")
    net.__class__ = cls
    return net


def _wrap_value_error(name: str, build, **kwargs):
    try:
        return build(**kwargs)
    except ConfigError:
        raise
    except ValueError as e:  # our builders name the argument; add the config section
        raise ConfigError(f"config MODEL.BACKBONE.NAME={name!r} (MODEL.RESNETS / MODEL.VGG / "
                          f"MODEL.BACKBONE.FREEZE_AT): {e}") from e


@BACKBONE_REGISTRY.register()
def build_resnet_det_backbone(cfg, input_shape: D2ShapeSpec) -> ResNetDetBackbone:
    """resnet_det's ResNet with outputs MODEL.RESNETS.OUT_FEATURES (["res4"] for the paper's
    C4 detector, whose res5 runs in the RoI head), frozen up to MODEL.BACKBONE.FREEZE_AT."""
    kwargs = resnet_kwargs(cfg, in_channels=input_shape.channels,
                           out_features=list(cfg.MODEL.RESNETS.OUT_FEATURES))
    net = _wrap_value_error("build_resnet_det_backbone", build_resnet, **kwargs)
    return _as_detectron2(net, ResNetDetBackbone)


@BACKBONE_REGISTRY.register()
def build_resnet_det_fpn_backbone(cfg, input_shape: D2ShapeSpec) -> FPN:
    """detectron2's FPN (p2..p6, LastLevelMaxPool) on resnet_det's ResNet giving
    MODEL.FPN.IN_FEATURES, as the built-in engine's FPN backbone."""
    if cfg.MODEL.RESNETS.RES5_DILATION != 1:
        raise ConfigError(f"config MODEL.RESNETS.RES5_DILATION={cfg.MODEL.RESNETS.RES5_DILATION}: "
                          "FPN needs res5 at stride 32 (RES5_DILATION 1)")
    in_features = list(cfg.MODEL.FPN.IN_FEATURES)
    kwargs = resnet_kwargs(cfg, in_channels=input_shape.channels, out_features=in_features)
    bottom_up = _as_detectron2(
        _wrap_value_error("build_resnet_det_fpn_backbone", build_resnet, **kwargs), ResNetDetBackbone)
    return FPN(bottom_up=bottom_up, in_features=in_features, out_channels=cfg.MODEL.FPN.OUT_CHANNELS,
               norm=cfg.MODEL.FPN.NORM, top_block=LastLevelMaxPool(), fuse_type=cfg.MODEL.FPN.FUSE_TYPE)


@BACKBONE_REGISTRY.register()
def build_vgg16_backbone(cfg, input_shape: D2ShapeSpec) -> VGGDetBackbone:
    """VGG-16 (MODEL.VGG.DEPTH 19: VGG-19) giving "vgg_conv5" at stride 16, the original
    Faster R-CNN backbone (pool5 is replaced by RoI pooling)."""
    net = _wrap_value_error("build_vgg16_backbone", build_vgg,
                            **vgg_kwargs(cfg, in_channels=input_shape.channels))
    return _as_detectron2(net, VGGDetBackbone)
