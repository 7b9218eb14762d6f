"""A restricted unpickler for .pkl weight files (MSRA / Detectron / detectron2 model zoo).

``pickle.load`` runs whatever callables a file names, so a weights file could run code. These
files only ever hold numpy arrays in dicts, so only the globals needed to rebuild arrays are
allowed; anything else (os.system, builtins.eval, torch classes, ...) raises
:class:`WeightsFileError` (a pickle.UnpicklingError and a resnet_det user error) naming the global.
"""

import importlib
import io
import os
import pickle
from typing import Any, BinaryIO, Union

from .errors import WeightsError

__all__ = ["safe_load", "safe_loads", "RestrictedUnpickler", "ALLOWED_GLOBALS", "WeightsFileError"]


class WeightsFileError(WeightsError, pickle.UnpicklingError):
    """A weights file that cannot be read safely: it names code to run, or is no readable
    pickle / plain torch file. Also a pickle.UnpicklingError, which is what callers of a
    loader naturally catch."""


# (module, name) pairs; numpy 2 moved numpy.core to numpy._core, both spellings occur in files.
ALLOWED_GLOBALS = frozenset(
    [
        (mod, name)
        for core in ("numpy.core", "numpy._core")
        for mod, name in (
            (f"{core}.multiarray", "_reconstruct"),  # ndarray.__reduce__
            (f"{core}.multiarray", "scalar"),  # numpy scalars (np.float32(1.0))
            (f"{core}.numeric", "_frombuffer"),  # ndarray.__reduce_ex__(5)
        )
    ]
    + [
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("collections", "OrderedDict"),
        ("_codecs", "encode"),
    ]  # bytes in protocol-2 pickles from Python 3
)


def _latin1_encode(obj, encoding="latin1", errors="strict"):
    """``_codecs.encode`` limited to latin-1, the only use protocol-2 pickles make of it."""
    if encoding.lower().replace("_", "-") not in ("latin1", "latin-1", "iso-8859-1"):
        raise WeightsFileError(
            f"resnet_det: refusing _codecs.encode with encoding {encoding!r} in a weights file"
        )
    return obj.encode(encoding, errors)


def _resolve(module: str, name: str) -> Any:
    if (module, name) == ("_codecs", "encode"):
        return _latin1_encode
    # Files written under numpy 1 name numpy.core, under numpy 2 numpy._core; import whichever
    # this numpy has without touching the deprecated alias.
    candidates = [module]
    if module.startswith("numpy.core."):
        candidates.insert(0, "numpy._core." + module[len("numpy.core.") :])
    elif module.startswith("numpy._core."):
        candidates.append("numpy.core." + module[len("numpy._core.") :])
    for candidate in candidates:
        try:
            return getattr(importlib.import_module(candidate), name)
        except (ImportError, AttributeError):
            continue
    raise WeightsFileError(f"resnet_det: cannot find allowed global {module}.{name}")


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only ``ALLOWED_GLOBALS`` (numpy arrays, plain containers)."""

    def __init__(self, file: BinaryIO, *, source: str = "<bytes>", **kwargs):
        super().__init__(file, **kwargs)
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in ALLOWED_GLOBALS:
            return _resolve(module, name)
        raise WeightsFileError(
            f"resnet_det: refusing to load global '{module}.{name}' from {self._source}: "
            "weights .pkl files may hold only numpy arrays and plain containers"
        )

    def persistent_load(self, pid):
        raise WeightsFileError(
            f"resnet_det: refusing persistent id {pid!r} in {self._source} (not a plain pickle)"
        )


def safe_load(path: Union[str, os.PathLike]) -> Any:
    """Unpickle ``path`` allowing only numpy arrays and plain containers/scalars.

    Python 2 pickles (the MSRA / Detectron releases) are read with encoding="latin1".
    """
    with open(path, "rb") as f:
        return _load(
            RestrictedUnpickler(f, source=os.fspath(path), encoding="latin1"), os.fspath(path)
        )


def safe_loads(data: bytes, source: str = "<bytes>") -> Any:
    """``safe_load`` for bytes."""
    return _load(RestrictedUnpickler(io.BytesIO(data), source=source, encoding="latin1"), source)


def _load(unpickler: RestrictedUnpickler, source: str) -> Any:
    try:
        return unpickler.load()
    except WeightsFileError:
        raise
    except (pickle.UnpicklingError, EOFError) as e:  # truncated or not a pickle at all
        raise WeightsFileError(
            f"resnet_det: {source} is not a readable .pkl weights file: {e}"
        ) from e
