"""The model registries: every name a config can select, with its builder and the one function
that turns the config into the builder's keyword arguments.

- ``BACKBONES``: detector backbones, selected by MODEL.BACKBONE.NAME (the built-in ResNet C4,
  ResNet-FPN and VGG entries are at the end of this module).
- ``CLASSIFIERS``: pretraining networks, selected by MODEL.CLASSIFIER.ARCH (every name of the
  model zoo, ``resnet_det.list_models()``).

The detector builder (modeling/build.py), the classifier builder (modeling/classifier.py),
config validation (``validate_cfg``) and the detectron2 plugin (resnet_det.d2) all go through
these, so a new backbone is one ``BACKBONES.register(...)`` call (docs/internals.md, "Adding a
backbone").
"""

import difflib
import importlib
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from torch import nn

from ..config.errors import ConfigError, reject_value
from .backbone_kwargs import (
    classifier_kwargs,
    resnet_backbone_kwargs,
    resnet_fpn_kwargs,
    vgg_backbone_kwargs,
)
from .detection.fpn import build_resnet_fpn
from .resnet import build_resnet
from .vgg import VGG
from .zoo import MODEL_SPECS, create_model

__all__ = ["ModelSpec", "ModelRegistry", "BACKBONES", "CLASSIFIERS"]

KwargsFromConfig = Callable[[Any], Dict[str, Any]]


@dataclass(frozen=True)
class ModelSpec:
    """One registry entry.

    Args:
        name: the config value that selects it.
        build: keyword arguments -> the network (a function, or the Backbone class itself).
            A detector backbone takes ``in_channels`` (image channels) and follows the backbone
            contract of docs/internals.md (forward -> {name: feature}, output_shape()).
        from_config: cfg -> ``build``'s keyword arguments. The only code that reads the
            entry's config keys; it checks their values and combinations without building
            anything and raises :class:`ConfigError` naming the key.
        d2_name: the name under which resnet_det.d2 registers it in detectron2's
            BACKBONE_REGISTRY, when ``name`` is taken there by detectron2's own builder; the
            built-in engine accepts both names.
        res5_head: a ResNet C4 backbone whose res5 (described by MODEL.RESNETS) can run on
            the RoIs as the box head (Res5ROIHeads, the paper's Appendix A).
        vgg_head: a VGG backbone whose fc6/fc7 can be the box head (VGGFCHead).
    """

    name: str
    build: Callable[..., nn.Module]
    from_config: KwargsFromConfig
    d2_name: Optional[str] = None
    res5_head: bool = False
    vgg_head: bool = False

    @property
    def names(self) -> Tuple[str, ...]:
        """The names that select this entry: ``name``, then ``d2_name`` if any."""
        return (self.name,) + ((self.d2_name,) if self.d2_name else ())


class ModelRegistry:
    """Names -> :class:`ModelSpec`, looked up from the config key ``key``.

    Args:
        key: the config key whose value selects an entry (named in errors).
    """

    def __init__(self, key: str):
        self.key = key
        self._specs: Dict[str, ModelSpec] = {}  # every accepted name -> its entry
        self._listeners: List[Callable[[ModelSpec], None]] = []
        # name -> "module:function" that registers it, run on the first lookup of the name
        self._providers: Dict[str, str] = {}

    def register(
        self,
        name: str,
        *,
        build: Callable[..., nn.Module],
        from_config: KwargsFromConfig,
        **options,
    ) -> ModelSpec:
        """Add an entry (see :class:`ModelSpec` for the arguments); returns it."""
        spec = ModelSpec(name=name, build=build, from_config=from_config, **options)
        taken = [n for n in spec.names if n in self._specs]
        if taken:
            raise ValueError(f"{self.key}: {taken} already registered; unregister it first")
        for n in spec.names:
            self._specs[n] = spec
        try:
            for listener in self._listeners:
                listener(spec)
        except Exception:  # e.g. the name is taken in detectron2's registry: not registered
            for n in spec.names:
                del self._specs[n]
            raise
        return spec

    def unregister(self, name: str) -> None:
        """Remove the entry ``name`` (tests register toy entries and remove them)."""
        spec = self.get(name)
        for n in spec.names:
            del self._specs[n]

    def provide(self, name: str, provider: str) -> None:
        """Let the config select ``name`` before the module that registers it is imported:
        the first lookup of ``name`` calls ``provider`` ("package.module:function"), which
        must register it (the reproduction demo's networks live in resnet_det.reproduce,
        which imports this package, so this package cannot import it up front)."""
        self._providers[name] = provider

    def subscribe(self, listener: Callable[[ModelSpec], None]) -> None:
        """Call ``listener(spec)`` for every entry, now and when one is registered later (the
        detectron2 plugin mirrors BACKBONES into detectron2's registry this way)."""
        self._listeners.append(listener)
        for spec in self:
            listener(spec)

    def __contains__(self, name: str) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[ModelSpec]:
        return iter(dict.fromkeys(self._specs.values()))  # each entry once, in order

    def names(self) -> List[str]:
        """Every accepted name, in registration order."""
        return list(self._specs)

    def get(self, name: str) -> ModelSpec:
        """The entry ``name``; ConfigError naming :attr:`key` if there is none."""
        if name not in self._specs and name in self._providers:
            module, _, function = self._providers[name].partition(":")
            getattr(importlib.import_module(module), function)()
        if name not in self._specs:
            close = difflib.get_close_matches(str(name), self.names(), n=3, cutoff=0.6)
            hint = f"did you mean {close}? " if close else ""
            reject_value(self.key, name, f"{hint}choose one of {self.names()}")
        return self._specs[name]

    def lookup(self, cfg) -> ModelSpec:
        """The entry the config selects (the value of :attr:`key` in ``cfg``)."""
        node = cfg
        for part in self.key.split("."):
            node = node[part]
        return self.get(node)

    def build(
        self,
        cfg,
        *,
        name: Optional[str] = None,
        build: Optional[Callable[..., nn.Module]] = None,
        **overrides,
    ) -> nn.Module:
        """The network the config selects: ``spec.build(**spec.from_config(cfg))``.

        Args:
            cfg: the config.
            name: build this entry instead of the one the config selects (the detectron2
                plugin's builders know their entry).
            build: build with this instead of ``spec.build`` (same keyword arguments; the
                detectron2 plugin builds its subclasses this way).
            **overrides: keyword arguments that replace the config's (the plugin's
                ``in_channels`` from detectron2's input shape).
        A ValueError of the builder becomes a ConfigError naming the entry.
        """
        spec = self.lookup(cfg) if name is None else self.get(name)
        kwargs = {**spec.from_config(cfg), **overrides}
        try:
            return (build or spec.build)(**kwargs)
        except ConfigError:
            raise
        except ValueError as e:  # the builders name the argument; add the config entry
            raise ConfigError(
                f"config {self.key}={spec.name!r} (with the keys it reads): {e}"
            ) from e


BACKBONES = ModelRegistry("MODEL.BACKBONE.NAME")
CLASSIFIERS = ModelRegistry("MODEL.CLASSIFIER.ARCH")

# The paper's C4 detector (Sec. 4.3, Appendix A): conv1..res4 shared, res5 in the box head.
BACKBONES.register(
    "build_resnet_backbone",
    d2_name="build_resnet_det_backbone",
    build=build_resnet,
    from_config=resnet_backbone_kwargs,
    res5_head=True,
)
BACKBONES.register(
    "build_resnet_fpn_backbone",
    d2_name="build_resnet_det_fpn_backbone",
    build=build_resnet_fpn,
    from_config=resnet_fpn_kwargs,
)
# The original Faster R-CNN backbone (conv5_3 at stride 16), the paper's baseline (Table 7/8).
BACKBONES.register(
    "build_vgg_backbone",
    d2_name="build_vgg16_backbone",
    build=VGG,
    from_config=vgg_backbone_kwargs,
    vgg_head=True,
)
# The reproduction demo's VGG-16 layout at a quarter width (configs/reproduce_demo/).
BACKBONES.provide(
    "build_vgg16_quarter_backbone", "resnet_det.reproduce.demo_nets:register_demo_nets"
)
CLASSIFIERS.provide("vgg16_quarter", "resnet_det.reproduce.demo_nets:register_demo_nets")

for _arch in MODEL_SPECS:
    CLASSIFIERS.register(_arch, build=partial(create_model, _arch), from_config=classifier_kwargs)
del _arch
