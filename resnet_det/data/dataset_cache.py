"""The parsed-dataset cache: a reader's result kept in a file and found again by its source's
content, mapped by every process that reads the same source.

A reader's result is a serialized dataset (resnet_det.data.serialized). For a large source (a
COCO annotation file of at least :data:`MIN_BYTES`) it is written once to a cache file; later
reads hash the source, check the cache file's own sha256 (a damaged cache is parsed again,
never trusted) and map it (COCO 2017 train: docs/benchmarks.md). All the
processes that read the same source map the same file, so the processes of one machine (the
ranks of a run and their loader workers) share one copy of the dataset in the page cache.

Key: the reader's kind and version, the source's size and the sha256 of its content. The
source's modification time is recorded too but decides nothing: a source touched, or copied with
the same bytes, reuses the cache (one log line says so); a source changed in any byte is parsed
again, whatever its time says.

Where (docs/datasets.md "Dataset cache"): in the folder ``$RESNET_DET_CACHE`` if it is set
("off" turns the cache off); else next to the source (``<source>.resnet_det.cache``) if its
folder is writable; else in ``$XDG_CACHE_HOME/resnet_det`` (``~/.cache/resnet_det``), which a
log line names. Without any writable place the source is parsed in memory, with a warning.

Several processes: the first to take the cache's lock (``<cache>.lock``, flock) parses the
source and writes the cache; the others wait for the lock, then map what it wrote: one parse per
machine (per file system, for a shared one). The file is written atomically
(resnet_det.utils.file_io), so no process ever maps half of one.

A cache file is data, never code: a header parsed as JSON, numpy arrays of fixed types, JSON
records (no pickle). One that is damaged, truncated, of another format, modified since it was
written (its sha256) or whose reader metadata is malformed is named in a warning and the source
is parsed again.
"""

import contextlib
import hashlib
import io
import logging
import os
import time
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

from ..utils.file_io import atomic_open
from .serialized import (
    SerializedDicts,
    SerializedFileError,
    SerializedWriter,
    open_buffer,
    open_serialized,
)

try:
    import fcntl
except ImportError:  # not POSIX: no lock, each process may parse (the writes stay atomic)
    fcntl = None

__all__ = ["CACHE_ENV", "MIN_BYTES", "cache_file_for", "read_cached", "sha256_file"]

logger = logging.getLogger(__name__)

CACHE_ENV = "RESNET_DET_CACHE"
# Sources smaller than this are parsed every time (faster than a file's round trip).
MIN_BYTES = 8 << 20
_SUFFIX = ".resnet_det.cache"
_OFF = ("off", "0", "none", "false", "no")

# build(writer) -> (the reader's metadata, sha256 hex of the bytes it parsed, their size)
Build = Callable[[SerializedWriter], Tuple[Dict[str, Any], str, int]]


def sha256_file(path: str) -> str:
    """The sha256 of a file's content (hex), read in 16 MB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(16 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _tagged(folder: str, source: str) -> str:
    # One folder serves many sources: the name keeps the source's name and its absolute path's
    # hash, so that two sources of the same name do not share a file.
    tag = hashlib.sha256(os.path.abspath(source).encode("utf-8", "surrogatepass")).hexdigest()
    return os.path.join(folder, f"{os.path.basename(source)}-{tag[:12]}{_SUFFIX}")


def cache_file_for(source: str) -> Optional[str]:
    """Where the cache of ``source`` goes (module docstring), or None if the cache is off."""
    env = os.environ.get(CACHE_ENV, "").strip()
    if env.lower() in _OFF:
        return None
    if env:
        return _tagged(os.path.expanduser(env), source)
    here = os.path.dirname(os.path.abspath(source))
    if os.access(here, os.W_OK):
        return os.path.join(here, os.path.basename(source) + _SUFFIX)
    home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = os.path.join(home, "resnet_det")
    logger.info(
        "%s: its folder is not writable; its dataset cache goes to %s (set %s to choose)",
        source,
        folder,
        CACHE_ENV,
    )
    return _tagged(folder, source)


@contextlib.contextmanager
def _locked(lock_path: str) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_path`` (created) while the body runs."""
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                logger.info("Waiting for another process to write %s", lock_path[: -len(".lock")])
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError as e:  # a file system without locks
                logger.warning(
                    "%s: no lock (%s); processes may parse the source each", lock_path, e
                )
        yield
    finally:
        os.close(fd)


def _open(
    path: str,
    key: Dict[str, Any],
    check: Callable[[Dict[str, Any]], None],
    source: str,
    mtime_ns: int,
) -> Optional[Tuple[SerializedDicts, Dict[str, Any]]]:
    """The cache at ``path`` if it holds the parse of ``key``; None (logged) if not."""
    try:
        records, header = open_serialized(path)
        meta = header["meta"]
        stored, reader = meta["key"], meta["reader"]
        if stored != key:
            logger.info(
                "%s: changed since %s was written (size %s, sha256 %.12s... then; now %s, "
                "%.12s...): parsing it again",
                source,
                path,
                stored.get("size") if isinstance(stored, dict) else "?",
                stored.get("sha256") if isinstance(stored, dict) else "?",
                key["size"],
                key["sha256"],
            )
            return None
        check(reader)
    except FileNotFoundError:
        return None
    except (SerializedFileError, OSError, ValueError, KeyError, TypeError) as e:
        logger.warning(
            "Dataset cache %s cannot be used (%s: %s); parsing %s again",
            path,
            type(e).__name__,
            e,
            source,
        )
        return None
    if meta.get("mtime_ns") != mtime_ns:
        logger.info(
            "%s: its modified time differs from the one %s was written for, its content "
            "(sha256 %.12s...) is the same: the cached parse is used",
            source,
            path,
            key["sha256"],
        )
    return records, reader


def _identity(path: str) -> Optional[Tuple[int, int, int]]:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def _in_memory(build: Build) -> Tuple[SerializedDicts, Dict[str, Any]]:
    buffer = io.BytesIO()
    writer = SerializedWriter(buffer)
    meta, _, _ = build(writer)
    writer.finish({"reader": meta})
    return open_buffer(buffer.getbuffer())[0], meta


def read_cached(
    source: str,
    *,
    kind: str,
    version: str,
    build: Build,
    check: Callable[[Dict[str, Any]], None],
    enabled: Optional[bool] = None,
) -> Tuple[SerializedDicts, Dict[str, Any], str]:
    """The dataset parsed from ``source``: from its cache if one holds this content, else built
    (and cached).

    Args:
        source: the file parsed (a local path).
        kind, version: the reader and its version (part of the key).
        build: parses ``source`` into a SerializedWriter; returns the reader's metadata (any
            JSON), the sha256 (hex) and size of the bytes it parsed.
        check: raises ValueError if cached metadata is not what ``build`` returns (then the
            cache is damaged and the source is parsed again).
        enabled: cache this source (None: if it has at least MIN_BYTES).

    Returns:
        The records, the reader's metadata, and how they came: "cached", "built" (parsed and
        written to the cache) or "memory" (parsed, not cached).
    """
    if enabled is None:
        enabled = os.path.isfile(source) and os.path.getsize(source) >= MIN_BYTES
    path = cache_file_for(source) if enabled and os.path.isfile(source) else None
    if path is None:
        return _in_memory(build) + ("memory",)
    st = os.stat(source)
    key = {"kind": kind, "version": version, "size": st.st_size, "sha256": sha256_file(source)}
    seen = _identity(path)
    hit = _open(path, key, check, source, st.st_mtime_ns)
    if hit is not None:
        return hit + ("cached",)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        lock = _locked(path + ".lock")
        lock.__enter__()
    except OSError as e:
        logger.warning(
            "%s: cannot write its dataset cache at %s (%s); parsing it without a cache (set "
            "%s to a writable folder)",
            source,
            path,
            e,
            CACHE_ENV,
        )
        return _in_memory(build) + ("memory",)
    try:
        # Another process may have written it while this one waited for the lock.
        if _identity(path) != seen:
            hit = _open(path, key, check, source, st.st_mtime_ns)
            if hit is not None:
                return hit + ("cached",)
        start = time.perf_counter()
        try:
            with atomic_open(path, "wb") as f:
                writer = SerializedWriter(f)
                meta, digest, size = build(writer)
                # The key is that of the bytes parsed (the source may have changed since it was
                # hashed above).
                key = dict(key, sha256=digest, size=size)
                writer.finish({"key": key, "mtime_ns": st.st_mtime_ns, "reader": meta})
        except OSError as e:
            logger.warning(
                "%s: writing its dataset cache %s failed (%s); parsing it without a cache",
                source,
                path,
                e,
            )
            return _in_memory(build) + ("memory",)
        records, header = open_serialized(path, verify=False)
        logger.info(
            "%s: parsed in %.1f s and cached in %s", source, time.perf_counter() - start, path
        )
        return records, header["meta"]["reader"], "built"
    finally:
        lock.__exit__(None, None, None)
