"""Dataset dicts as JSON records in one flat buffer, each turned into a dict when it is asked for.

A Python list of dataset dicts costs several times its data in objects, and forked loader
workers copy its pages as they touch reference counts; detectron2's
``DatasetFromList(serialize=True)`` keeps pickles in one numpy buffer instead. Here the records
are JSON, so that the buffer can also be a file that processes map read-only: the dataset cache
(resnet_det.data.dataset_cache) writes one, and all the processes of a machine that map it
share one copy in the page cache, their loader workers included. A record is parsed by orjson
(by the json module if it holds an integer beyond 64 bits) and by nothing else: a file cannot
make it run code.

Besides the records, each holds a few numbers the loaders filter and group by without parsing
every record (:data:`COLUMNS`).

File layout (all integers little-endian): the records one after another; the record offsets
(int64, count + 1, from 0); each column (int64, count); one byte per record, 1 where the record
is to be read by the json module; then the header (JSON: the format, the count, where each part
is, the sha256 of everything before the header, and the writer's metadata), its length (uint64),
its own sha256 and the 8 magic bytes. Everything is checked when the file is opened; a file that
fails a check raises :class:`SerializedFileError`.
"""

import collections.abc
import hashlib
import io
import json
import mmap
import os
import struct
from typing import IO, Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import orjson

__all__ = [
    "COLUMNS",
    "is_object",
    "record_columns",
    "SerializedDicts",
    "SerializedWriter",
    "SerializedFileError",
    "open_serialized",
    "open_buffer",
]

_MAGIC = b"RDDICTS1"
_FORMAT = 1
_TRAILER = struct.Struct("<Q32s8s")  # header length, the header's sha256, magic
_MAX_HEADER = 64 << 20

# Per record: the image's height and width (-1 if absent), its objects (non-crowd annotations:
# what a detector trains on) and those of them without a "segmentation".
COLUMNS = ("height", "width", "num_objects", "num_unmasked")


class SerializedFileError(ValueError):
    """A file that is not a serialized dataset written by :class:`SerializedWriter`, or one
    damaged since (the message says what is wrong)."""


def is_object(annotation: dict) -> bool:
    """Whether an annotation is an object the detector trains on (not a crowd region)."""
    return not annotation.get("iscrowd", 0)


def record_columns(d: dict) -> Tuple[int, int, int, int]:
    """The :data:`COLUMNS` of one dataset dict."""
    objects = [a for a in d.get("annotations", ()) if is_object(a)]
    height, width = d.get("height", -1), d.get("width", -1)
    return (
        height if type(height) is int else -1,
        width if type(width) is int else -1,
        len(objects),
        sum(a.get("segmentation") is None for a in objects),
    )


class _Store:
    """One buffer of records (a file's or one built in memory)."""

    def __init__(
        self,
        data: np.ndarray,
        offsets: np.ndarray,
        columns: Dict[str, np.ndarray],
        json_codec: np.ndarray,
        *,
        root: str = "",
        path: Optional[str] = None,
        token: str = "",
    ) -> None:
        self.data, self.offsets, self.columns, self.json_codec = data, offsets, columns, json_codec
        self.root, self.path, self.token = root, path, token
        self.any_json = bool(json_codec.any())

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def record(self, i: int) -> dict:
        raw = self.data[self.offsets[i] : self.offsets[i + 1]]
        if self.any_json and self.json_codec[i]:
            d = json.loads(raw.tobytes())
        else:
            d = orjson.loads(memoryview(raw))
        if self.root and "file_name" in d:
            d["file_name"] = os.path.join(self.root, d["file_name"])
        return d

    def with_root(self, root: str) -> "_Store":
        return _Store(
            self.data,
            self.offsets,
            self.columns,
            self.json_codec,
            root=root,
            path=self.path,
            token=self.token,
        )

    def __reduce__(self):
        # A file's store travels as its path (another process maps the same file); one built in
        # memory travels as its arrays.
        if self.path is not None:
            return (_reopen_store, (self.path, self.token, self.root))
        return (
            _Store,
            (self.data, self.offsets, self.columns, self.json_codec),
            {"root": self.root, "path": None, "token": self.token, "any_json": self.any_json},
        )

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__dict__.update(state)


def _reopen_store(path: str, token: str, root: str) -> _Store:
    store = _open_store(path, verify=False)
    if store.token != token:
        raise SerializedFileError(
            f"{path}: the serialized dataset file was replaced while in use (rebuilt for a "
            f"changed source); restart the run"
        )
    return store.with_root(root)


class SerializedDicts(collections.abc.Sequence):
    """A read-only sequence of dataset dicts stored as JSON records (module docstring).

    Indexing parses one record into a fresh dict (changing it changes nothing stored);
    slicing, :meth:`subset` and :func:`concat` give views that share the buffers. It compares
    equal to a list holding the same dicts, and ``+`` with a list gives a list. ``file_name``
    entries are stored relative to a root joined on access (so one file serves any image
    folder).
    """

    def __init__(self, stores: Sequence[_Store], index: Optional[np.ndarray] = None) -> None:
        self._stores = list(stores)
        self._bases = np.cumsum([0] + [len(s) for s in self._stores], dtype=np.int64)
        self._index = None if index is None else np.asarray(index, dtype=np.int64)

    # -- construction
    @classmethod
    def from_dicts(cls, dicts: Iterable[dict], root: str = "") -> "SerializedDicts":
        """In memory, from dataset dicts holding JSON values only (TypeError otherwise: a tuple
        would come back a list, so only lists, dicts, str, int, float, bool and None go)."""
        buffer = io.BytesIO()
        writer = SerializedWriter(buffer)
        for d in dicts:
            _check_json_values(d)
            writer.add(d, record_columns(d))
        writer.finish({})
        return open_buffer(buffer.getbuffer())[0].with_root(root)

    def with_root(self, root: str) -> "SerializedDicts":
        """The same records with ``file_name`` joined to ``root``."""
        return SerializedDicts([s.with_root(root) for s in self._stores], self._index)

    # -- the sequence
    def __len__(self) -> int:
        return int(self._bases[-1]) if self._index is None else len(self._index)

    def _locate(self, i: int) -> Tuple[_Store, int]:
        g = i if self._index is None else int(self._index[i])
        if len(self._stores) == 1:
            return self._stores[0], g
        k = int(np.searchsorted(self._bases, g, side="right")) - 1
        return self._stores[k], g - int(self._bases[k])

    def __getitem__(self, i: Union[int, slice]):
        if isinstance(i, slice):
            return self.subset(np.arange(len(self), dtype=np.int64)[i])
        n = len(self)
        i = int(i)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"dataset index {i} out of range ({n} records)")
        store, j = self._locate(i)
        return store.record(j)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __eq__(self, other: Any) -> bool:
        if not isinstance(other, (list, tuple, SerializedDicts)):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    __hash__ = None  # type: ignore[assignment]

    def __add__(self, other: Any) -> List[dict]:
        """A list of these dicts and ``other``'s (as a list + list gives)."""
        if not isinstance(other, (list, tuple, SerializedDicts)):
            return NotImplemented
        return list(self) + list(other)

    def __radd__(self, other: Any) -> List[dict]:
        if not isinstance(other, (list, tuple)):
            return NotImplemented
        return list(other) + list(self)

    def __repr__(self) -> str:
        paths = [s.path for s in self._stores if s.path]
        where = f" from {', '.join(paths)}" if paths else ""
        return f"SerializedDicts({len(self)} records{where})"

    # -- views
    def subset(self, indices: Sequence[int]) -> "SerializedDicts":
        """The records at ``indices`` (in that order), sharing the buffers."""
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if len(indices) and (indices.min() < 0 or indices.max() >= len(self)):
            raise IndexError(f"subset: index out of range ({len(self)} records)")
        base = np.arange(len(self), dtype=np.int64) if self._index is None else self._index
        return SerializedDicts(self._stores, base[indices])

    def column(self, name: str) -> np.ndarray:
        """One of :data:`COLUMNS` for every record, as an int64 array."""
        if name not in COLUMNS:
            raise KeyError(f"unknown column {name!r}; columns: {COLUMNS}")
        full = np.concatenate([s.columns[name] for s in self._stores])
        return full if self._index is None else full[self._index]

    @property
    def paths(self) -> List[str]:
        """The files the records are mapped from (empty for records built in memory)."""
        return [s.path for s in self._stores if s.path]


def concat(parts: Sequence[SerializedDicts]) -> SerializedDicts:
    """The records of ``parts`` one after another, sharing their buffers."""
    stores: List[_Store] = []
    indices = []
    for part in parts:
        local = np.arange(len(part), dtype=np.int64) if part._index is None else part._index
        indices.append(local + sum(len(s) for s in stores))
        stores.extend(part._stores)
    index = np.concatenate(indices) if indices else np.zeros(0, np.int64)
    identity = len(index) == sum(len(s) for s in stores) and np.array_equal(
        index, np.arange(len(index))
    )
    return SerializedDicts(stores, None if identity else index)


def _check_json_values(obj: Any) -> None:
    if obj is None or type(obj) in (str, int, float, bool):
        return
    if type(obj) is list:
        for v in obj:
            _check_json_values(v)
    elif type(obj) is dict:
        for k, v in obj.items():
            if type(k) is not str:
                raise TypeError(f"dataset dict key {k!r} is not a str")
            _check_json_values(v)
    else:
        raise TypeError(f"{type(obj).__name__} value {obj!r:.60} is not a JSON value")


class SerializedWriter:
    """Writes records to a binary file object in the layout of the module docstring.

    Args:
        f: the file (opened "wb"; e.g. resnet_det.utils.file_io.atomic_open's).
    """

    def __init__(self, f: IO[bytes]) -> None:
        self._f = f
        self._hash = hashlib.sha256()
        self._pos = 0
        self._offsets = [0]
        self._columns: List[Tuple[int, ...]] = []
        self._json: List[int] = []

    def _write(self, b) -> None:
        self._f.write(b)
        self._hash.update(b)
        self._pos += len(b)

    def add(self, record: Union[dict, bytes], columns: Tuple[int, int, int, int]) -> None:
        """Append one record (a dict, or its JSON text as bytes) with its :data:`COLUMNS`."""
        use_json = False
        if not isinstance(record, bytes):
            try:
                record = orjson.dumps(record)
            except TypeError:  # an int beyond 64 bits, a str with a lone surrogate
                record, use_json = json.dumps(record, allow_nan=True).encode("ascii"), True
        self.add_bytes(record, columns, use_json)

    def add_bytes(self, record: bytes, columns: Tuple[int, ...], use_json: bool = False) -> None:
        """Append one record given as JSON text; ``use_json``: it must be read by the json
        module (it holds an integer orjson would read as a float)."""
        self._write(record)
        self._offsets.append(self._pos)
        self._columns.append(columns)
        self._json.append(1 if use_json else 0)

    @property
    def count(self) -> int:
        return len(self._json)

    def finish(self, meta: Dict[str, Any]) -> Dict[str, Any]:
        """Write the offsets, columns and header (``meta``: any JSON the reader wants back);
        returns the header."""
        data_bytes = self._pos
        pad = -self._pos % 8
        self._write(b"\0" * pad)
        parts: Dict[str, int] = {}
        parts["offsets"] = self._pos
        self._write(np.asarray(self._offsets, dtype="<i8").tobytes())
        cols = np.asarray(self._columns, dtype="<i8").reshape(-1, len(COLUMNS))
        for j, name in enumerate(COLUMNS):
            parts[name] = self._pos
            self._write(np.ascontiguousarray(cols[:, j]).tobytes())
        parts["json_codec"] = self._pos
        self._write(np.asarray(self._json, dtype=np.uint8).tobytes())
        header = {
            "format": _FORMAT,
            "count": self.count,
            "data_bytes": data_bytes,
            "parts": parts,
            "payload_bytes": self._pos,
            "sha256": self._hash.hexdigest(),
            "meta": meta,
        }
        text = json.dumps(header, allow_nan=True).encode("ascii")
        self._f.write(text)
        self._f.write(_TRAILER.pack(len(text), hashlib.sha256(text).digest(), _MAGIC))
        return header


def _fail(where: str, what: str) -> SerializedFileError:
    return SerializedFileError(f"{where}: {what}")


def _store_from_buffer(
    buf, path: Optional[str], *, verify: bool = True
) -> Tuple[_Store, Dict[str, Any]]:
    where = path or "serialized dataset"
    size = len(buf)
    if size < _TRAILER.size:
        raise _fail(where, f"{size} bytes, too short to be a serialized dataset")
    header_len, header_sha, magic = _TRAILER.unpack_from(buf, size - _TRAILER.size)
    if magic != _MAGIC:
        raise _fail(where, "not a serialized dataset file (wrong magic bytes)")
    end = size - _TRAILER.size
    if not 0 < header_len <= min(end, _MAX_HEADER):
        raise _fail(where, f"header length {header_len} does not fit the file")
    text = bytes(buf[end - header_len : end])
    if hashlib.sha256(text).digest() != header_sha:
        raise _fail(where, "header does not match its sha256 (damaged or modified)")
    try:
        header = json.loads(text)
        count, data_bytes, payload = header["count"], header["data_bytes"], header["payload_bytes"]
        parts, digest = header["parts"], header["sha256"]
        ints = [count, data_bytes, payload] + [parts[k] for k in ("offsets", "json_codec")]
        ints += [parts[c] for c in COLUMNS]
    except (ValueError, KeyError, TypeError) as e:
        raise _fail(where, f"unreadable header ({e})") from None
    if header.get("format") != _FORMAT:
        raise _fail(where, f"format {header.get('format')!r}, expected {_FORMAT}")
    if not all(type(v) is int and v >= 0 for v in ints) or not isinstance(digest, str):
        raise _fail(where, "header fields have the wrong types")
    if payload != end - header_len:
        raise _fail(where, f"payload of {payload} bytes does not fit a {size}-byte file")
    # Each part at its place: records, pad, offsets, the columns, the codec flags.
    expect = data_bytes + (-data_bytes % 8)
    layout = [("offsets", 8 * (count + 1))] + [(c, 8 * count) for c in COLUMNS]
    layout.append(("json_codec", count))
    for name, nbytes in layout:
        if parts[name] != expect:
            raise _fail(where, f"part {name!r} at byte {parts[name]}, expected {expect}")
        expect += nbytes
    if expect != payload:
        raise _fail(where, f"parts end at byte {expect}, the payload at {payload}")
    if verify and hashlib.sha256(memoryview(buf)[:payload]).hexdigest() != digest:
        raise _fail(where, "content does not match its sha256 (damaged or modified)")

    def array(name: str, dtype: str, n: int) -> np.ndarray:
        return np.frombuffer(buf, dtype=dtype, count=n, offset=parts[name])

    offsets = array("offsets", "<i8", count + 1)
    if offsets[0] != 0 or offsets[-1] != data_bytes or (np.diff(offsets) < 0).any():
        raise _fail(where, "record offsets are not increasing from 0 to the records' end")
    codec = array("json_codec", "u1", count)
    if (codec > 1).any():
        raise _fail(where, "record codec flags other than 0 and 1")
    store = _Store(
        np.frombuffer(buf, dtype=np.uint8, count=data_bytes, offset=0),
        offsets,
        {c: array(c, "<i8", count) for c in COLUMNS},
        codec.astype(bool),
        path=path,
        token=digest,
    )
    return store, header


def open_buffer(buf) -> Tuple[SerializedDicts, Dict[str, Any]]:
    """The records SerializedWriter wrote into ``buf`` (a bytes-like object, e.g. a BytesIO's
    getbuffer()), and the header; not verified (the caller wrote it)."""
    store, header = _store_from_buffer(buf, None, verify=False)
    return SerializedDicts([store]), header


def _open_store(path: str, *, verify: bool = True) -> _Store:
    return open_serialized(path, verify=verify)[0]._stores[0]


def open_serialized(
    path: str, *, verify: bool = True, root: str = ""
) -> Tuple[SerializedDicts, Dict[str, Any]]:
    """Map the file ``path`` read-only: its records and its header (``header["meta"]`` is what
    the writer gave). ``verify``: check the sha256 of its content too (reads it all once).

    Raises:
        SerializedFileError: the file is not one, or is damaged.
        OSError: it cannot be opened.
    """
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            raise _fail(path, "empty file")
        buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    # The map closes when the last array over it goes.
    store, header = _store_from_buffer(buf, path, verify=verify)
    return SerializedDicts([store]).with_root(root), header
