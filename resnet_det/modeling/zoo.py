"""The model zoo: names -> a constructor and its fixed keyword arguments,
``create_model(name, **overrides)`` and ``list_models()``."""

import difflib
from typing import Any, Callable, Dict, List, NamedTuple, Tuple

from torch import nn

from ..utils.errors import UserError
from .cifar import CifarResNet, check_cifar_resnet_arguments
from .resnet import RESNET_DEPTHS, build_resnet, check_resnet_arguments
from .vgg import VGG, VGG_DEPTHS, check_vgg_arguments


class UnknownModelError(UserError, ValueError):
    """create_model got a name that list_models() does not have (a user's input)."""


class ModelArgumentError(UserError, ValueError):
    """create_model got an override its model does not take (a user's input)."""


__all__ = [
    "ZooModel",
    "ZOO",
    "IMAGENET_RESNETS",
    "VGGS",
    "CIFAR_RESNETS",
    "create_model",
    "check_model_arguments",
    "list_models",
]


class ZooModel(NamedTuple):
    """One name of the zoo.

    Attributes:
        build: the constructor.
        kwargs: its arguments that the name fixes (depth, num_classes, ...).
        overrides: the arguments ``create_model`` lets a caller set.
        check: the constructor's own argument check (same arguments), which builds nothing.
    """

    build: Callable[..., nn.Module]
    kwargs: Dict[str, Any]
    overrides: Tuple[str, ...]
    check: Callable[..., None]


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


def _resnet(**kwargs) -> ZooModel:
    return ZooModel(build_resnet, kwargs, _IMAGENET_OVERRIDES, check_resnet_arguments)


def _cifar(**kwargs) -> ZooModel:
    return ZooModel(CifarResNet, kwargs, _CIFAR_OVERRIDES, check_cifar_resnet_arguments)


def _without_shortcut(model: ZooModel) -> ZooModel:
    return model._replace(overrides=tuple(o for o in model.overrides if o != "shortcut"))


def _imagenet_resnets() -> Dict[str, ZooModel]:
    zoo = {f"resnet{depth}": _resnet(depth=depth, num_classes=1000) for depth in RESNET_DEPTHS}
    for depth in (d for d in RESNET_DEPTHS if d <= 152):
        # Sec. 4.1 "Plain Networks": the same layers without shortcuts (the paper's depths).
        zoo[f"plain{depth}"] = _without_shortcut(
            _resnet(depth=depth, num_classes=1000, residual=False)
        )
    for name, depth, groups, width in (
        ("resnext50_32x4d", 50, 32, 4),
        ("resnext101_32x8d", 101, 32, 8),
        ("wide_resnet50_2", 50, 1, 128),
        ("wide_resnet101_2", 101, 1, 128),
    ):
        zoo[name] = _resnet(depth=depth, num_classes=1000, groups=groups, width_per_group=width)
    return zoo


def _cifar_resnets() -> Dict[str, ZooModel]:
    zoo = {
        f"resnet{depth}_cifar": _cifar(depth=depth, num_classes=10)
        for depth in (20, 32, 44, 56, 110, 1202)
    }
    for depth in (20, 32, 44, 56, 110):
        zoo[f"plain{depth}_cifar"] = _without_shortcut(
            _cifar(depth=depth, num_classes=10, residual=False)
        )
    zoo["preact_resnet110_cifar"] = _cifar(depth=110, num_classes=10, preact=True)
    # 1001 = 9n+2 with n=111 pre-activation bottleneck blocks per stage (He et al. 2016); the
    # authors' code (and configs/cifar10/preact_resnet1001.yaml) puts a block's stride in its
    # first 1x1 conv.
    zoo["preact_resnet1001_cifar"] = _cifar(
        depth=1001, num_classes=10, preact=True, bottleneck=True, stride_in_1x1=True
    )
    return zoo


# The zoo by family: the ResNets of Table 1 and their plain / ResNeXt / wide variants, VGG, and
# the CIFAR-10 nets of Sec. 4.2 (MODEL.RESNETS configures the ResNets, MODEL.VGG the VGGs).
IMAGENET_RESNETS = _imagenet_resnets()
VGGS = {
    f"vgg{depth}": ZooModel(
        VGG, dict(depth=depth, num_classes=1000), _VGG_OVERRIDES, check_vgg_arguments
    )
    for depth in VGG_DEPTHS
}
CIFAR_RESNETS = _cifar_resnets()
ZOO: Dict[str, ZooModel] = {**IMAGENET_RESNETS, **VGGS, **CIFAR_RESNETS}


def list_models() -> List[str]:
    """All model names ``create_model`` accepts, in a stable order."""
    return list(ZOO)


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
    model = _check_overrides(name, overrides)
    return model.build(**{**model.kwargs, **overrides})


def check_model_arguments(name: str, **overrides) -> None:
    """Raise as ``create_model(name, **overrides)`` would, without building anything."""
    model = _check_overrides(name, overrides)
    model.check(**{**model.kwargs, **overrides})


def _check_overrides(name: str, overrides: Dict[str, Any]) -> ZooModel:
    if name not in ZOO:
        close = difflib.get_close_matches(str(name), list(ZOO), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownModelError(
            f"resnet_det: unknown model name={name!r}{hint} (resnet_det.list_models() lists all "
            f"{len(ZOO)} names)"
        )
    model = ZOO[name]
    for key in overrides:
        if key not in model.overrides:
            why = (
                "the name fixes it"
                if key in ("depth", "residual", "preact", "bottleneck")
                else "plain nets have no shortcuts"
                if key == "shortcut"
                else "it does not apply to this model"
            )
            raise ModelArgumentError(
                f"resnet_det: create_model({name!r}) does not take override {key}=...; {why}. "
                f"Overrides for {name}: {', '.join(model.overrides)}"
            )
    return model
