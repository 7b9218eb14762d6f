"""resnet_det's backbones in detectron2's BACKBONE_REGISTRY.

Every entry of resnet_det's backbone registry (resnet_det.modeling.registry.BACKBONES) is
registered here under its plugin name (``d2_name``, else its name), also the ones registered
after this module is imported, so a new backbone is one entry for both engines. It is built
from the entry's description of the config (``BACKBONES.describe``), with ``in_channels`` from
detectron2's input shape.

Our ResNet and VGG already follow detectron2's backbone contract (forward -> {name: feature},
output_shape, size_divisibility) and detectron2's parameter names (docs/internals.md), so the
plugin builds a subclass that adds only detectron2's base class and ShapeSpec type
(``ResNetDetBackbone``, ``VGGDetBackbone``; for another class-built entry, one made the same
way): no state is added or renamed, so checkpoints of detectron2's R-50/R-101 models and of ours
load into each other. The FPN variant puts detectron2's own FPN on our bottom-up ResNet, so its
names are detectron2's too (backbone.bottom_up.res2..., backbone.fpn_lateral2...).
"""

from typing import Callable, Dict

from detectron2.layers import ShapeSpec as D2ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY
from detectron2.modeling import Backbone as D2Backbone
from detectron2.modeling.backbone.fpn import FPN, LastLevelMaxPool

from ..modeling.registry import BACKBONES, RegistryEntry
from ..modeling.resnet import ResNet, build_resnet
from ..modeling.vgg import VGG
from ..utils.errors import ConfigError
from .config import reject_deformable

__all__ = [
    "ResNetDetBackbone",
    "VGGDetBackbone",
    "detectron2_class",
    "build_resnet_det_backbone",
    "build_resnet_det_fpn_backbone",
    "register_in_detectron2",
]


class _D2Shapes:
    """output_shape() with detectron2's ShapeSpec (its FPN / RPN / heads read it)."""

    def output_shape(self) -> Dict[str, D2ShapeSpec]:
        return {
            name: D2ShapeSpec(channels=s.channels, stride=s.stride)
            for name, s in super().output_shape().items()
        }


class ResNetDetBackbone(_D2Shapes, ResNet, D2Backbone):
    """resnet_det's ResNet (any depth, shortcut A/B/C, plain, norm) as a detectron2 Backbone.

    Built by ``build_resnet_det_backbone`` (``build_resnet(resnet_class=ResNetDetBackbone)``);
    the constructor is ResNet's (see its Args).
    """


class VGGDetBackbone(_D2Shapes, VGG, D2Backbone):
    """resnet_det's VGG-16/19 (vgg_conv5: conv5_3 after ReLU, stride 16) as a detectron2
    Backbone. Built by ``build_vgg16_backbone``; the constructor is VGG's (see its Args)."""


_D2_CLASSES: Dict[type, type] = {ResNet: ResNetDetBackbone, VGG: VGGDetBackbone}


def detectron2_class(cls: type) -> type:
    """``cls`` (one of our Backbone classes) with detectron2's Backbone base class and
    ShapeSpec type added: same constructor, same parameters and names (made once per class)."""
    if cls not in _D2_CLASSES:
        _D2_CLASSES[cls] = type(
            f"{cls.__name__}D2",
            (_D2Shapes, cls, D2Backbone),
            {"__module__": __name__, "__doc__": f"{cls.__name__} as a detectron2 Backbone."},
        )
    return _D2_CLASSES[cls]


def build_resnet_det_backbone(cfg, input_shape: D2ShapeSpec) -> ResNetDetBackbone:
    """resnet_det's ResNet with outputs MODEL.RESNETS.OUT_FEATURES (["res4"] for the paper's
    C4 detector, whose res5 runs in the RoI head), frozen up to MODEL.BACKBONE.FREEZE_AT."""
    reject_deformable(cfg)
    return BACKBONES.describe(cfg, name="build_resnet_backbone").build(
        build=_resnet_det, in_channels=input_shape.channels
    )


def _resnet_det(**kwargs) -> ResNetDetBackbone:
    return build_resnet(resnet_class=ResNetDetBackbone, **kwargs)


def build_resnet_det_fpn_backbone(cfg, input_shape: D2ShapeSpec) -> FPN:
    """detectron2's FPN (p2..p6, LastLevelMaxPool) on resnet_det's ResNet giving
    MODEL.FPN.IN_FEATURES, as the built-in engine's FPN backbone."""
    reject_deformable(cfg)

    def fpn(*, in_features, out_channels, fpn_norm, **resnet_kwargs) -> FPN:
        bottom_up = _resnet_det(out_features=list(in_features), **resnet_kwargs)
        return FPN(
            bottom_up=bottom_up,
            in_features=list(in_features),
            out_channels=out_channels,
            norm=fpn_norm,
            top_block=LastLevelMaxPool(),
            fuse_type=cfg.MODEL.FPN.FUSE_TYPE,
        )

    return BACKBONES.describe(cfg, name="build_resnet_fpn_backbone").build(
        build=fpn, in_channels=input_shape.channels
    )


# Entries whose plugin builder is not "the entry's class with detectron2's base added".
_PLUGIN_BUILDERS: Dict[str, Callable] = {
    "build_resnet_backbone": build_resnet_det_backbone,
    "build_resnet_fpn_backbone": build_resnet_det_fpn_backbone,
}


def _class_builder(name: str) -> Callable:
    def build(cfg, input_shape: D2ShapeSpec) -> D2Backbone:
        description = BACKBONES.describe(cfg, name=name)  # now: the entry may have changed
        if not isinstance(description.entry.build, type):
            raise ConfigError(
                f"config MODEL.BACKBONE.NAME={name!r}: its registry builder "
                f"{description.entry.build!r} is a function; the detectron2 plugin builds class "
                "entries (it adds detectron2's Backbone base to the class) or needs a builder in "
                "resnet_det.d2.backbone"
            )
        return description.build(
            build=detectron2_class(description.entry.build), in_channels=input_shape.channels
        )

    build.__doc__ = f"resnet_det's backbone registry entry {name!r}, as a detectron2 Backbone."
    return build


def register_in_detectron2(entry: RegistryEntry) -> None:
    """Register the backbone registry entry ``entry`` in detectron2's BACKBONE_REGISTRY under
    its plugin name (idempotent; a name detectron2 itself uses raises)."""
    d2_name = entry.d2_name or entry.name
    builder = _PLUGIN_BUILDERS.get(entry.name) or _class_builder(entry.name)
    if d2_name in BACKBONE_REGISTRY:
        if getattr(BACKBONE_REGISTRY.get(d2_name), "__module__", None) == __name__:
            return  # ours already (this module imported again, or the entry re-registered)
        raise ConfigError(
            f"backbone registry entry {entry.name!r}: detectron2 already has a backbone named "
            f"{d2_name!r}; register it with d2_name=<another name> for the detectron2 plugin"
        )
    builder.__name__ = builder.__qualname__ = d2_name
    BACKBONE_REGISTRY.register(builder)


BACKBONES.subscribe(register_in_detectron2)
# The plugin names, as module attributes (documented names of the plugin).
build_vgg16_backbone = BACKBONE_REGISTRY.get("build_vgg16_backbone")
