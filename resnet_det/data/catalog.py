"""The one dataset registry: DatasetCatalog and MetadataCatalog (detectron2's names).

Detection and classification sets register here alike. A dataset is a function returning a
list of dataset dicts (docs/internals.md), or a SerializedDicts holding them (the COCO reader's:
resnet_det.data.serialized); the function runs on every ``DatasetCatalog.get`` so nothing heavy
is kept in memory between uses. Metadata is a small attribute namespace per
dataset name; ``evaluator_type`` ("coco", "voc" or "classification") says which task's dicts
the function returns. The built-in names are in docs/datasets.md.
"""

import difflib
import inspect
import logging
import threading
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from ..utils.errors import DataError, UserKeyError
from .serialized import SerializedDicts

__all__ = ["DatasetCatalog", "MetadataCatalog", "Metadata", "Lazy", "common_thing_classes"]

logger = logging.getLogger(__name__)


def _close_names(name: str, candidates: List[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=5, cutoff=0.5)
    if close:
        return "did you mean: " + ", ".join(repr(c) for c in close) + "?"
    return "registered: " + (", ".join(sorted(candidates)) if candidates else "(none)")


def _accepted(func: Callable, options: Dict[str, Any]) -> Dict[str, Any]:
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):  # builtins without a signature take no options
        return {}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return dict(options)
    return {k: v for k, v in options.items() if k in params}


class _DatasetCatalog:
    """name -> function returning list[dict]. One process-wide instance: ``DatasetCatalog``."""

    def __init__(self) -> None:
        self._funcs: Dict[str, Callable[[], List[dict]]] = {}
        self._lock = threading.Lock()

    def register(self, name: str, func: Callable[..., List[dict]]) -> None:
        """Register ``func`` (returns a list of dataset dicts, or a SerializedDicts) under
        ``name``.

        ``func`` is called with no arguments, or with the reading options of
        :meth:`get` that its signature names (e.g. ``on_bad_image`` for a folder scan).
        Registering a name twice raises, because silently replacing a dataset would make a
        config train on something other than what it names.
        """
        if not isinstance(name, str) or not name:
            raise TypeError(f"DatasetCatalog.register: name must be a non-empty str, got {name!r}")
        if not callable(func):
            raise TypeError(
                f"DatasetCatalog.register({name!r}): func must be callable, got {type(func)}"
            )
        with self._lock:
            if name in self._funcs:
                raise ValueError(f"DatasetCatalog: dataset {name!r} is already registered")
            self._funcs[name] = func

    def get(self, name: str, **options: Any) -> Union[List[dict], SerializedDicts]:
        """Call the function registered under ``name`` and return its dicts.

        Args:
            name: a registered dataset name.
            **options: reading options (e.g. ``on_bad_image="skip"``), passed to the
                function for those its signature names. An option a reader does not take
                does not apply to it: an in-memory set has no unreadable folder to skip.

        Raises:
            UserKeyError: ``name`` is not registered (the message lists close names).
        """
        try:
            func = self._funcs[name]
        except KeyError:
            raise UserKeyError(
                f"DatasetCatalog: dataset {name!r} is not registered; "
                + _close_names(name, list(self._funcs))
            ) from None
        dicts = func(**_accepted(func, options)) if options else func()
        if not isinstance(dicts, (list, SerializedDicts)):
            raise TypeError(
                f"DatasetCatalog: the function registered for {name!r} returned "
                f"{type(dicts).__name__}, expected a list of dicts (or a SerializedDicts)"
            )
        return dicts

    def list(self) -> List[str]:
        """Registered dataset names, sorted."""
        return sorted(self._funcs)

    def remove(self, name: str) -> None:
        """Unregister ``name`` (its metadata stays in MetadataCatalog)."""
        with self._lock:
            if name not in self._funcs:
                raise KeyError(f"DatasetCatalog.remove: {name!r} is not registered")
            del self._funcs[name]

    def __contains__(self, name: str) -> bool:
        return name in self._funcs


class Lazy:
    """A metadata value computed on every access, e.g. a path under RESNET_DET_DATASETS
    (read when used, not when the package is imported)."""

    def __init__(self, func: Callable[[], Any]) -> None:
        self.func = func

    def __repr__(self) -> str:
        return f"Lazy({getattr(self.func, '__name__', self.func)!r})"


class Metadata:
    """Attribute namespace for one dataset's metadata (thing_classes, evaluator_type, ...).

    Setting an existing attribute to a different value raises: two parts of the code
    disagreeing on, say, the class list is a bug to surface, not to overwrite.
    """

    def __init__(self, name: str) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "_values", {})

    def __getattr__(self, key: str) -> Any:
        values = object.__getattribute__(self, "_values")
        if key in values:
            value = values[key]
            return value.func() if isinstance(value, Lazy) else value
        raise AttributeError(
            f"Metadata of dataset {self.name!r} has no attribute {key!r}; "
            f"available: {sorted(values)}"
        )

    def __setattr__(self, key: str, value: Any) -> None:
        if key == "name":
            raise AttributeError("Metadata.name is read-only")
        values = self._values
        if key in values and not isinstance(values[key], Lazy):
            old = values[key]
            if old != value:
                raise ValueError(
                    f"Metadata of dataset {self.name!r}: attribute {key!r} is already set to "
                    f"{old!r}; refusing to change it to {value!r}"
                )
        values[key] = value

    def set(self, **kwargs: Any) -> "Metadata":
        """Set several attributes; returns self."""
        for k, v in kwargs.items():
            setattr(self, k, v)
        return self

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return getattr(self, key)
        except AttributeError:
            return default

    def as_dict(self) -> Dict[str, Any]:
        """All attributes, lazy ones resolved."""
        return {k: getattr(self, k) for k in self._values}

    def __contains__(self, key: str) -> bool:
        return key in self._values

    def __repr__(self) -> str:
        return f"Metadata(name={self.name!r}, {sorted(self._values)})"


class _MetadataCatalog:
    """name -> Metadata; ``get`` creates an empty entry on first use (as detectron2 does)."""

    def __init__(self) -> None:
        self._metas: Dict[str, Metadata] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Metadata:
        with self._lock:
            if name not in self._metas:
                self._metas[name] = Metadata(name)
            return self._metas[name]

    def list(self) -> List[str]:
        return sorted(self._metas)

    def remove(self, name: str) -> None:
        with self._lock:
            self._metas.pop(name, None)


DatasetCatalog = _DatasetCatalog()
MetadataCatalog = _MetadataCatalog()


def common_thing_classes(names: Sequence[str]) -> Optional[List[str]]:
    """The class list (metadata ``thing_classes``) shared by the datasets ``names``, or None
    if none has one; datasets without one are not checked.

    Raises:
        DataError: two datasets have different lists: trained or evaluated together, their
            labels would mean different things.
    """
    first = None
    for name in names:
        this = MetadataCatalog.get(name).get("thing_classes")
        if this is None:
            continue
        if first is None:
            first = (name, list(this))
        elif list(this) != first[1]:
            raise DataError(
                f"Datasets {first[0]!r} and {name!r} have different thing_classes: "
                f"{first[1]} vs {list(this)}"
            )
    return None if first is None else first[1]
