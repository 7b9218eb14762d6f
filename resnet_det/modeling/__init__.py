"""Models: the ResNet/plain/ResNeXt/Wide/CIFAR/VGG nets, the backbone contract, the detector,
the model registries and the description of a model that a config resolves to.

    description = describe_model(cfg)   # read and checked once (resnet_det.modeling.build)
    model = description.build()          # = build_model(cfg)

The networks take typed keyword arguments and never read the config; the config -> kwargs
functions of the registry entries (resnet_det.modeling.build) are the only readers of the
model's keys.
"""

from .backbone import Backbone, ShapeSpec
from .build import (
    build_backbone,
    build_classifier,
    build_model,
    describe_backbone,
    describe_model,
)
from .cifar import (
    CifarResNet,
    CifarStem,
    PreActBasicBlock,
    PreActBottleneckBlock,
    build_cifar_resnet,
)
from .layers import Conv2dNorm, FrozenBatchNorm2d, convert_frozen_batchnorm, get_norm
from .registry import ModelDescription
from .resnet import (
    BasicBlock,
    BasicStem,
    BottleneckBlock,
    ResNet,
    ShortcutA,
    build_res5_head,
    build_resnet,
    make_shortcut,
    make_stage,
)
from .vgg import VGG, build_vgg, build_vgg16_quarter
from .zoo import create_model, list_models

__all__ = [
    "Backbone",
    "ShapeSpec",
    "BasicBlock",
    "BottleneckBlock",
    "PreActBasicBlock",
    "PreActBottleneckBlock",
    "ShortcutA",
    "make_shortcut",
    "make_stage",
    "BasicStem",
    "CifarStem",
    "ResNet",
    "build_resnet",
    "build_res5_head",
    "CifarResNet",
    "build_cifar_resnet",
    "VGG",
    "build_vgg",
    "build_vgg16_quarter",
    "Conv2dNorm",
    "FrozenBatchNorm2d",
    "convert_frozen_batchnorm",
    "get_norm",
    "create_model",
    "list_models",
    "ModelDescription",
    "describe_model",
    "describe_backbone",
    "build_model",
    "build_backbone",
    "build_classifier",
]
