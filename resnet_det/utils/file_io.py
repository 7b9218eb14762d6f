"""Atomic file writes: a crash or a full disk never leaves a half-written checkpoint/config.

Everything is written to a temporary file in the destination folder (same file system, so
os.replace is atomic on POSIX and Windows) and only then renamed over the final name.
"""

import contextlib
import json
import os
import tempfile
from typing import IO, Any, Callable, Iterator, Optional

import orjson

__all__ = ["atomic_open", "atomic_write_text", "atomic_write_json", "atomic_torch_save"]


_UMASK = None


def _umask() -> int:
    """The process's umask, read once (os.umask can only be read by setting it)."""
    global _UMASK
    if _UMASK is None:
        _UMASK = os.umask(0o022)
        os.umask(_UMASK)
    return _UMASK


@contextlib.contextmanager
def atomic_open(path: str, mode: str = "w") -> Iterator[IO]:
    """Open a temporary file next to ``path``; on success it replaces ``path`` atomically.

    Args:
        path: final destination.
        mode: "w" (text) or "wb" (binary).
    If the body raises, the temporary file is removed and ``path`` is left untouched.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open: mode must be 'w' or 'wb', got {mode!r} (path {path})")
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            if hasattr(os, "fchmod"):  # mkstemp makes the file 0600: give a new file's usual mode
                os.fchmod(f.fileno(), 0o666 & ~_umask())
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def atomic_write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_open(path, "w") as f:
        f.write(text)


def atomic_write_json(path: str, obj: Any, **dump_kwargs: Any) -> None:
    """``json.dump(obj)`` to ``path`` atomically (``dump_kwargs`` go to json.dump).

    Without ``dump_kwargs`` the text is orjson's, made in C in one piece (json.dump writes a
    file piece by piece through the json module's Python encoder, slow on a results list of
    200,000 detections), wherever it reads back as json.dump's would: orjson writes NaN and
    infinities as null and refuses what json.dump converts (non-string keys, numpy floats,
    ints over 64 bits), so an object whose text would hold a null, or that orjson refuses, is
    written by json.dump. Dataclasses and datetimes, which orjson would write and json.dump
    refuses, go to json.dump too, and raise its TypeError as before.
    """
    data = None
    if not dump_kwargs:
        with contextlib.suppress(TypeError):  # orjson.JSONEncodeError is a TypeError
            data = orjson.dumps(
                obj,
                option=orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME,
            )
        if data is not None and b"null" in data:
            data = None
    if data is not None:
        with atomic_open(path, "wb") as f:
            f.write(data)
        return
    with atomic_open(path, "w") as f:
        json.dump(obj, f, **dump_kwargs)


def atomic_torch_save(obj, path: str, *, save_fn: Optional[Callable] = None) -> None:
    """``torch.save`` ``obj`` to ``path`` atomically (``save_fn`` is replaceable for tests).

    torch is imported here, not by the module: resnet_det.config writes config.yaml with this
    module and must stay importable without torch.
    """
    if save_fn is None:
        import torch

        save_fn = torch.save
    with atomic_open(path, "wb") as f:
        save_fn(obj, f)
