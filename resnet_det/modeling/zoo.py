"""Model names -> constructor kwargs: ``create_model(name, **overrides)``, ``list_models()``."""

import difflib
from typing import Any, Callable, Dict, List, Tuple

from torch import nn

from ..utils.errors import UserError
from .cifar import CifarResNet
from .resnet import RESNET_DEPTHS, build_resnet
from .vgg import VGG, VGG_DEPTHS


class UnknownModelError(UserError, ValueError):
    """create_model got a name that list_models() does not have (a user's input)."""


class ModelArgumentError(UserError, ValueError):
    """create_model got an override its model does not take (a user's input)."""


__all__ = ["MODEL_SPECS", "create_model", "list_models"]

_IMAGENET_OVERRIDES = (
    "shortcut",
    "stride_in_1x1",
    "norm",
    "zero_init_residual",
    "num_classes",
    "groups",
    "width_per_group",
    "in_channels",
    "out_features",
    "res5_dilation",
    "freeze_at",
)
_CIFAR_OVERRIDES = (
    "shortcut",
    "stride_in_1x1",
    "norm",
    "zero_init_residual",
    "num_classes",
    "in_channels",
    "out_features",
    "freeze_at",
)
_VGG_OVERRIDES = ("norm", "num_classes", "in_channels", "out_features", "freeze_at")


def _specs() -> Dict[str, Tuple[Callable[..., nn.Module], Dict[str, Any], Tuple[str, ...]]]:
    specs = {}
    for depth in RESNET_DEPTHS:
        specs[f"resnet{depth}"] = (
            build_resnet,
            dict(depth=depth, num_classes=1000),
            _IMAGENET_OVERRIDES,
        )
    for depth in (d for d in RESNET_DEPTHS if d <= 152):
        # Sec. 4.1 "Plain Networks": the same layers without shortcuts (the paper's depths).
        specs[f"plain{depth}"] = (
            build_resnet,
            dict(depth=depth, num_classes=1000, residual=False),
            tuple(o for o in _IMAGENET_OVERRIDES if o != "shortcut"),
        )
    for name, depth, groups, width in (
        ("resnext50_32x4d", 50, 32, 4),
        ("resnext101_32x8d", 101, 32, 8),
        ("wide_resnet50_2", 50, 1, 128),
        ("wide_resnet101_2", 101, 1, 128),
    ):
        specs[name] = (
            build_resnet,
            dict(depth=depth, num_classes=1000, groups=groups, width_per_group=width),
            _IMAGENET_OVERRIDES,
        )
    for depth in VGG_DEPTHS:
        specs[f"vgg{depth}"] = (VGG, dict(depth=depth, num_classes=1000), _VGG_OVERRIDES)
    for depth in (20, 32, 44, 56, 110, 1202):
        specs[f"resnet{depth}_cifar"] = (
            CifarResNet,
            dict(depth=depth, num_classes=10),
            _CIFAR_OVERRIDES,
        )
    for depth in (20, 32, 44, 56, 110):
        specs[f"plain{depth}_cifar"] = (
            CifarResNet,
            dict(depth=depth, num_classes=10, residual=False),
            tuple(o for o in _CIFAR_OVERRIDES if o != "shortcut"),
        )
    specs["preact_resnet110_cifar"] = (
        CifarResNet,
        dict(depth=110, num_classes=10, preact=True),
        _CIFAR_OVERRIDES,
    )
    # 1001 = 9n+2 with n=111 pre-activation bottleneck blocks per stage (He et al. 2016); the
    # authors' code (and configs/cifar10/preact_resnet1001.yaml) puts a block's stride in its
    # first 1x1 conv.
    specs["preact_resnet1001_cifar"] = (
        CifarResNet,
        dict(depth=1001, num_classes=10, preact=True, bottleneck=True, stride_in_1x1=True),
        _CIFAR_OVERRIDES,
    )
    return specs


MODEL_SPECS = _specs()


def list_models() -> List[str]:
    """All model names ``create_model`` accepts, in a stable order."""
    return list(MODEL_SPECS)


def create_model(name: str, **overrides) -> nn.Module:
    """Build the classifier ``name`` (see ``list_models()``) with random He-initialized weights.

    Args:
        name: e.g. "resnet50", "plain34", "resnet110_cifar", "vgg16".
        **overrides: keyword-only settings: shortcut ("A"/"B"/"C"), stride_in_1x1, norm
            ("BN"/"FrozenBN"/"SyncBN"/"GN"/"none"), zero_init_residual, num_classes (None
            gives a backbone returning features), groups, width_per_group, in_channels;
            also out_features, res5_dilation, freeze_at. ImageNet ResNets default to the
            paper's layout (shortcut "B", stride_in_1x1=True); torchvision's weights need
            stride_in_1x1=False.
    """
    if name not in MODEL_SPECS:
        close = difflib.get_close_matches(str(name), list(MODEL_SPECS), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownModelError(
            f"resnet_det: unknown model name={name!r}{hint} (resnet_det.list_models() lists all "
            f"{len(MODEL_SPECS)} names)"
        )
    builder, kwargs, allowed = MODEL_SPECS[name]
    for key in overrides:
        if key not in allowed:
            why = (
                "the name fixes it"
                if key in ("depth", "residual", "preact", "bottleneck")
                else "plain nets have no shortcuts"
                if key == "shortcut"
                else "it does not apply to this model"
            )
            raise ModelArgumentError(
                f"resnet_det: create_model({name!r}) does not take override {key}=...; {why}. "
                f"Overrides for {name}: {', '.join(allowed)}"
            )
    return builder(**{**kwargs, **overrides})
