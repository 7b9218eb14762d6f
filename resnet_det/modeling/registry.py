"""The model registries, and the description of a model that a config resolves to.

Each registry maps the names one config key can take to a :class:`RegistryEntry`: the builder
and the one function that turns the config into the builder's keyword arguments.

=======================  =================================  ======================================
registry                 config key                         built-in entries
=======================  =================================  ======================================
``META_ARCHITECTURES``   MODEL.META_ARCHITECTURE            GeneralizedRCNN, ImageClassifier
``BACKBONES``            MODEL.BACKBONE.NAME                ResNet C4, ResNet-FPN, VGG, VGG-16/4
``PROPOSAL_GENERATORS``  MODEL.PROPOSAL_GENERATOR.NAME      RPN
``ROI_HEADS``            MODEL.ROI_HEADS.NAME               Res5ROIHeads, StandardROIHeads
``BOX_HEADS``            MODEL.ROI_BOX_HEAD.NAME            FastRCNNConvFCHead, VGGFCHead
``MASK_HEADS``           MODEL.ROI_MASK_HEAD.NAME           MaskRCNNConvUpsampleHead
``CLASSIFIERS``          MODEL.CLASSIFIER.ARCH              every create_model name, vgg16_quarter
=======================  =================================  ======================================

The built-in entries are registered by resnet_det.modeling.build, which also holds their
config -> kwargs functions. ``Registry.describe(cfg)`` gives a :class:`ModelDescription`: the
selected entry with its keyword arguments, read from the config once and checked; the detector's
is a tree of them (its backbone, proposal generator and RoI heads, and the heads' box and mask
heads), which ``describe_model`` computes once per run and everything else reads (validation,
the engine's checks, ``build_model``, the detectron2 plugin). A new backbone or head is one
``register`` call (docs/internals.md, "Adding a backbone").
"""

import difflib
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple

from ..utils.errors import ArgumentError, ConfigError, reject_value

__all__ = [
    "RegistryEntry",
    "Registry",
    "ConfigKwargs",
    "ModelDescription",
    "META_ARCHITECTURES",
    "BACKBONES",
    "PROPOSAL_GENERATORS",
    "ROI_HEADS",
    "BOX_HEADS",
    "MASK_HEADS",
    "CLASSIFIERS",
]


@dataclass(frozen=True)
class RegistryEntry:
    """One name a config key can take.

    Args:
        name: the config value that selects it.
        build: keyword arguments -> the module (a function, or the class itself). A detector
            backbone takes ``in_channels`` (image channels) and follows the backbone contract
            of docs/internals.md (forward -> {name: feature}, output_shape()); heads take the
            backbone's ``output_shape()`` as their first argument.
        from_config: the only code that reads the entry's config keys: cfg (and, for the heads
            and proposal generators, the backbone's ModelDescription) -> ``build``'s keyword
            arguments; it checks how the keys combine and raises :class:`ConfigError` naming
            the key. A :class:`ConfigKwargs` also tells which key gave each argument, so that
            the builder's own argument errors name the key too.
        check: ``build``'s own argument check (same keyword arguments, builds nothing, raises
            :class:`ArgumentError`); run once when the config is described.
        d2_name: the name of the entry in detectron2's registry, where ``name`` is taken there
            by detectron2's own builder; the built-in engine accepts both names.
        res5_head: for a backbone: ``f(backbone description)`` -> the ModelDescription of the
            res5 stage it lends Res5ROIHeads as the box head (a ResNet C4 backbone, the paper's
            Appendix A); None: the backbone has no res5 to spare.
        fc_head: for a backbone: ``f(backbone description)`` -> the VGGFCHead arguments its
            classifier's fc6/fc7 fix (``{}``: none), so that they load into the box head; None:
            the backbone has no fc6/fc7.
    """

    name: str
    build: Callable[..., Any]
    from_config: Optional[Callable[..., Mapping[str, Any]]] = None
    check: Optional[Callable[..., None]] = None
    d2_name: Optional[str] = None
    res5_head: Optional[Callable[["ModelDescription"], "ModelDescription"]] = None
    fc_head: Optional[Callable[["ModelDescription"], Dict[str, Any]]] = None

    @property
    def names(self) -> Tuple[str, ...]:
        """The names that select this entry: ``name``, then ``d2_name`` if any."""
        return (self.name,) + ((self.d2_name,) if self.d2_name else ())


class ConfigKwargs(dict):
    """Keyword arguments read from a config, with the key each one came from.

    ``from_config`` functions may return a plain dict; this one lets an error of the builder
    about an argument name the config key (``ModelDescription.config_error``).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sources: Dict[str, Tuple[str, Any]] = {}

    def add(self, argument: str, key: str, value: Any, *, converted: Any = ...) -> Any:
        """Set ``argument`` to the config value ``value`` of ``key`` (or to ``converted``,
        when the argument is computed from it); returns the argument's value."""
        self[argument] = value if converted is ... else converted
        self.sources[argument] = (key, value)
        return self[argument]

    def merge(self, other: Mapping[str, Any]) -> "ConfigKwargs":
        """Add ``other``'s arguments (and their keys, if it is a ConfigKwargs); returns self."""
        self.update(other)
        self.sources.update(getattr(other, "sources", {}))
        return self


def _frozen(value: Any) -> Any:
    """Lists become tuples, dicts read-only mappings, recursively: a description is immutable."""
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, Mapping) and not isinstance(value, ModelDescription):
        return MappingProxyType({k: _frozen(v) for k, v in value.items()})
    return value


@dataclass(frozen=True)
class ModelDescription:
    """What to build for one part of a model: a registry entry and its keyword arguments, read
    from the config once and checked (a part's arguments may be descriptions of its own parts).

    Build it with :meth:`build`; read an argument with ``description["depth"]``.

    Args:
        key: the config key that selects the entry (named in errors).
        entry: the registry entry.
        kwargs: ``entry.build``'s keyword arguments (lists frozen to tuples).
        sources: argument -> (config key, config value) it was read from.
    """

    key: str
    entry: RegistryEntry
    kwargs: Mapping[str, Any]
    sources: Mapping[str, Tuple[str, Any]] = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "kwargs", _frozen(dict(self.kwargs)))
        object.__setattr__(self, "sources", MappingProxyType(dict(self.sources)))

    @classmethod
    def of(
        cls, key: str, entry: RegistryEntry, kwargs: Mapping[str, Any], *, check: bool = True
    ) -> "ModelDescription":
        """The description of ``entry`` with ``kwargs`` (a ConfigKwargs gives the sources),
        its arguments checked by ``entry.check`` unless ``check`` is False (arguments checked
        already, e.g. those a res5 head shares with its backbone)."""
        description = cls(key, entry, kwargs, getattr(kwargs, "sources", {}))
        if check and entry.check is not None:
            try:
                entry.check(**description.kwargs)
            except ConfigError:
                raise
            except ValueError as e:
                raise description.config_error(e) from e
        return description

    @property
    def name(self) -> str:
        return self.entry.name

    def __getitem__(self, argument: str) -> Any:
        return self.kwargs[argument]

    def get(self, argument: str, default: Any = None) -> Any:
        return self.kwargs.get(argument, default)

    def key_of(self, argument: str) -> Optional[str]:
        """The config key ``argument`` was read from (None: not from the config)."""
        source = self.sources.get(argument)
        return source[0] if source else None

    def config_error(self, error: ValueError) -> ConfigError:
        """``error`` of the builder as a ConfigError naming the config key: the key of the
        argument an :class:`ArgumentError` names, else the entry's own key. The one place where
        a module's argument error becomes a config error."""
        if isinstance(error, ArgumentError) and error.argument in self.sources:
            key, value = self.sources[error.argument]
            return ConfigError(f"config {key}={value!r}: {error}")
        return ConfigError(f"config {self.key}={self.name!r} (with the keys it reads): {error}")

    def build(self, *args, build: Optional[Callable[..., Any]] = None, **overrides) -> Any:
        """``entry.build(*args, **kwargs)``, or ``build`` instead with the same arguments (the
        detectron2 plugin builds its subclasses this way); ``overrides`` replace arguments
        (the plugin's ``in_channels`` from detectron2's input shape). A ValueError of the
        builder becomes a ConfigError naming the key (:meth:`config_error`)."""
        description = self
        if overrides:
            sources = {k: v for k, v in self.sources.items() if k not in overrides}
            description = ModelDescription(
                self.key, self.entry, {**self.kwargs, **overrides}, sources
            )
        try:
            return (build or self.entry.build)(*args, **description.kwargs)
        except ConfigError:
            raise
        except ValueError as e:
            raise description.config_error(e) from e


class Registry:
    """Names -> :class:`RegistryEntry`, selected by the config key ``key``.

    Args:
        key: the config key whose value selects an entry (named in errors).
    """

    def __init__(self, key: str):
        self.key = key
        self._entries: Dict[str, RegistryEntry] = {}  # every accepted name -> its entry
        self._listeners: List[Callable[[RegistryEntry], None]] = []

    def register(self, name: str, *, build: Callable[..., Any], **options) -> RegistryEntry:
        """Add an entry (see :class:`RegistryEntry` for the arguments); returns it."""
        entry = RegistryEntry(name=name, build=build, **options)
        taken = [n for n in entry.names if n in self._entries]
        if taken:
            raise ValueError(f"{self.key}: {taken} already registered; unregister it first")
        for n in entry.names:
            self._entries[n] = entry
        try:
            for listener in self._listeners:
                listener(entry)
        except Exception:  # e.g. the name is taken in detectron2's registry: not registered
            for n in entry.names:
                del self._entries[n]
            raise
        return entry

    def unregister(self, name: str) -> None:
        """Remove the entry ``name`` (tests register toy entries and remove them)."""
        entry = self.get(name)
        for n in entry.names:
            del self._entries[n]

    def subscribe(self, listener: Callable[[RegistryEntry], None]) -> None:
        """Call ``listener(entry)`` for every entry, now and when one is registered later (the
        detectron2 plugin mirrors BACKBONES into detectron2's registry this way)."""
        self._listeners.append(listener)
        for entry in self:
            listener(entry)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[RegistryEntry]:
        return iter(dict.fromkeys(self._entries.values()))  # each entry once, in order

    def names(self) -> List[str]:
        """Every accepted name, in registration order."""
        return list(self._entries)

    def get(self, name: str) -> RegistryEntry:
        """The entry ``name``; ConfigError naming :attr:`key` if there is none."""
        if name not in self._entries:
            close = difflib.get_close_matches(str(name), self.names(), n=3, cutoff=0.6)
            hint = f"did you mean {close}? " if close else ""
            reject_value(self.key, name, f"{hint}choose one of {self.names()}")
        return self._entries[name]

    def lookup(self, cfg) -> RegistryEntry:
        """The entry the config selects (the value of :attr:`key` in ``cfg``)."""
        node = cfg
        for part in self.key.split("."):
            node = node[part]
        return self.get(node)

    def describe(self, cfg, *context, name: Optional[str] = None) -> ModelDescription:
        """The :class:`ModelDescription` of the entry the config selects (or of ``name``):
        its keyword arguments from ``entry.from_config(cfg, *context)``, checked."""
        entry = self.lookup(cfg) if name is None else self.get(name)
        kwargs = entry.from_config(cfg, *context) if entry.from_config is not None else {}
        return ModelDescription.of(self.key, entry, kwargs)


META_ARCHITECTURES = Registry("MODEL.META_ARCHITECTURE")
BACKBONES = Registry("MODEL.BACKBONE.NAME")
PROPOSAL_GENERATORS = Registry("MODEL.PROPOSAL_GENERATOR.NAME")
ROI_HEADS = Registry("MODEL.ROI_HEADS.NAME")
BOX_HEADS = Registry("MODEL.ROI_BOX_HEAD.NAME")
MASK_HEADS = Registry("MODEL.ROI_MASK_HEAD.NAME")
CLASSIFIERS = Registry("MODEL.CLASSIFIER.ARCH")
