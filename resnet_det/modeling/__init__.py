"""Models: stems, blocks, ResNet/plain/ResNeXt/Wide/CIFAR/VGG nets and the backbone contract.

The config side lives apart from the networks, which never read the config: the registries
in ``resnet_det.modeling.registry`` map MODEL.BACKBONE.NAME / MODEL.CLASSIFIER.ARCH to a builder
and its config -> kwargs function, and ``build_backbone(cfg)`` / ``build_model(cfg)`` live in
``resnet_det.modeling.build``; they are imported when called so that this package imports
without the config code.
"""

from .backbone import Backbone
from .blocks import (
    BasicBlock,
    BottleneckBlock,
    PreActBasicBlock,
    PreActBottleneckBlock,
    ShortcutA,
    make_shortcut,
    make_stage,
)
from .cifar import CifarResNet, build_cifar_resnet
from .layers import Conv2dNorm
from .norm import FrozenBatchNorm2d, convert_frozen_batchnorm, get_norm
from .resnet import ResNet, build_res5_head, build_resnet
from .shape_spec import ShapeSpec
from .stems import BasicStem, CifarStem
from .vgg import VGG, build_vgg
from .zoo import create_model, list_models

__all__ = [
    "Backbone",
    "BasicBlock",
    "BottleneckBlock",
    "PreActBasicBlock",
    "PreActBottleneckBlock",
    "ShortcutA",
    "make_shortcut",
    "make_stage",
    "CifarResNet",
    "build_cifar_resnet",
    "Conv2dNorm",
    "FrozenBatchNorm2d",
    "convert_frozen_batchnorm",
    "get_norm",
    "ResNet",
    "build_res5_head",
    "build_resnet",
    "ShapeSpec",
    "BasicStem",
    "CifarStem",
    "VGG",
    "build_vgg",
    "create_model",
    "list_models",
    "build_backbone",
    "build_model",
]


def build_backbone(cfg):
    """The backbone described by ``cfg`` (see resnet_det.modeling.build)."""
    from . import build

    return build.build_backbone(cfg)


def build_model(cfg):
    """The detector described by ``cfg`` (see resnet_det.modeling.build; classifiers:
    resnet_det.modeling.classifier.build_classifier)."""
    from . import build

    return build.build_model(cfg)
