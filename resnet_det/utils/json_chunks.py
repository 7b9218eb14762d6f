"""A large JSON object read member by member, with its big arrays in chunks of elements.

A COCO annotation file is one object whose "images" and "annotations" arrays hold nearly all of
its bytes. Parsed whole, every number in it is a Python object at the same time (about 2.5 GB
for COCO 2017 train); read here, such an array comes as lists of consecutive elements, about
``chunk_bytes`` of text each, which the caller turns into compact arrays before the next chunk
is parsed.

Values are parsed by orjson. A chunk of an array is cut after a "}" that a "," and a "{" (or
the closing "]") follow, and accepted only if "[" + the chunk + "]" parses: JSON is read left to
right without going back, so that happens exactly when the "}" closed an element of the array
(a "}" inside a string or inside an element leaves the text unbalanced). Where this reading
cannot give what Python's json module gives, :class:`NotStreamable` is raised and the caller
parses the document whole with the json module, which then gives the same values and the same
errors as ever: a number orjson refuses (NaN, Infinity, beyond float's range), a lone UTF-16
surrogate, a byte-order mark, invalid UTF-8, a key met twice at the top level, an array whose
first element is not an object, or text that would need many trial cuts. (Later elements that
are not objects come through as they are; the readers report such entries themselves.)
"""

import re
from typing import Any, Iterator, List, Tuple

import orjson

__all__ = ["NotStreamable", "ChunkedArray", "iter_members", "loads"]

_WS = re.compile(rb"[ \t\n\r]*")
# A "}" ending an element, then "," and the next element's "{"; or then the array's "]".
_NEXT_ELEMENT = re.compile(rb"\}[ \t\n\r]*,[ \t\n\r]*(?=\{)")
_ARRAY_END = re.compile(rb"\}[ \t\n\r]*\]")
_SCALAR = re.compile(rb"-?[0-9][0-9.eE+-]*|true|false|null")
# Trial cuts tried for one value before giving up on streaming it.
_MAX_TRIES = 64


class NotStreamable(Exception):
    """The document cannot be read here exactly as the json module reads it (module docstring);
    parse it whole instead."""


def loads(text) -> Any:
    """orjson.loads, its errors raised as NotStreamable."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as e:
        raise NotStreamable(str(e)) from None


def _ws(raw, pos: int) -> int:
    return _WS.match(raw, pos).end()


def _string_end(raw, pos: int) -> int:
    """Index just past the string starting at ``raw[pos] == '"'``."""
    i = pos + 1
    while True:
        i = raw.find(b'"', i)
        if i < 0:
            raise NotStreamable("unterminated string")
        backslashes = 0
        while raw[i - 1 - backslashes] == 0x5C:
            backslashes += 1
        if backslashes % 2 == 0:
            return i + 1
        i += 1


def _value(raw, pos: int) -> Tuple[Any, int]:
    """The value starting at ``pos`` and the index just past it (a small value: each trial
    parses from ``pos``)."""
    c = raw[pos : pos + 1]
    if c == b'"':
        end = _string_end(raw, pos)
        return loads(raw[pos:end]), end
    if c in (b"{", b"["):
        close = b"}" if c == b"{" else b"]"
        end = pos
        for _ in range(_MAX_TRIES):
            end = raw.find(close, end + 1)
            if end < 0:
                break
            try:
                return orjson.loads(raw[pos : end + 1]), end + 1
            except orjson.JSONDecodeError:
                continue
        raise NotStreamable(f"no end found for the value at byte {pos}")
    m = _SCALAR.match(raw, pos)
    if m is None:
        raise NotStreamable(f"unexpected byte at {pos}")
    return loads(m.group()), m.end()


class ChunkedArray:
    """The elements of one top-level array, iterated as lists of consecutive elements.

    Iterate it (once) before asking :func:`iter_members` for the next member.
    """

    def __init__(self, raw, start: int, chunk_bytes: int) -> None:
        self._raw = raw
        self._pos = start  # just past "["
        self._chunk_bytes = chunk_bytes
        self.end = -1  # just past "]", once iterated

    def __iter__(self) -> Iterator[List[Any]]:
        raw = self._raw
        pos = _ws(raw, self._pos)
        if raw[pos : pos + 1] == b"]":
            self.end = pos + 1
            return
        if raw[pos : pos + 1] != b"{":
            raise NotStreamable(f"array element at byte {pos} is not an object")
        while True:
            chunk, pos, closed = self._chunk(pos)
            yield chunk
            if closed:
                self.end = pos
                return

    def _chunk(self, start: int) -> Tuple[List[Any], int, bool]:
        """The elements from ``start`` (an element's "{") to a cut about ``chunk_bytes``
        further; the index where the next chunk starts (or just past "]"); whether the array
        ended."""
        raw = self._raw
        search = start + self._chunk_bytes  # where element cuts are looked for
        array_from = start  # where the array's end is looked for
        for _ in range(_MAX_TRIES):
            nxt = _NEXT_ELEMENT.search(raw, search)
            # The array's end before that cut comes first (searched within the chunk only, so
            # that the whole array is scanned once, not once per chunk).
            bound = nxt.start() + 1 if nxt is not None else len(raw)
            end = _ARRAY_END.search(raw, array_from, bound)
            cut = end if end is not None else nxt
            if cut is None:
                break
            try:
                elements = orjson.loads(b"[" + raw[start : cut.start() + 1] + b"]")
            except orjson.JSONDecodeError:  # the "}" was inside a string or an element
                if cut is end:
                    array_from = cut.end()
                else:
                    search = cut.end()
                continue
            if cut is end:
                return elements, cut.end(), True
            return elements, cut.end(), False
        raise NotStreamable(f"no element boundary found after byte {start}")


def iter_members(raw, chunked: Tuple[str, ...], chunk_bytes: int) -> Iterator[Tuple[str, Any]]:
    """The (key, value) members of the JSON object ``raw`` (bytes) in file order; the value of a
    key in ``chunked`` that is a non-empty array of objects comes as a :class:`ChunkedArray`,
    to be iterated before the next member is asked for.

    Raises:
        NotStreamable: see the module docstring (the caller parses ``raw`` whole).
    """
    pos = _ws(raw, 0)
    if raw[pos : pos + 1] != b"{":
        raise NotStreamable("not an object")
    pos = _ws(raw, pos + 1)
    seen = set()
    if raw[pos : pos + 1] == b"}":
        pos += 1
    else:
        while True:
            if raw[pos : pos + 1] != b'"':
                raise NotStreamable(f"expected a key at byte {pos}")
            key_end = _string_end(raw, pos)
            key = loads(raw[pos:key_end])
            if key in seen:
                raise NotStreamable(f"key {key!r} given twice")
            seen.add(key)
            pos = _ws(raw, key_end)
            if raw[pos : pos + 1] != b":":
                raise NotStreamable(f"expected ':' at byte {pos}")
            pos = _ws(raw, pos + 1)
            if key in chunked and raw[pos : pos + 1] == b"[":
                array = ChunkedArray(raw, pos + 1, chunk_bytes)
                yield key, array
                if array.end < 0:
                    raise NotStreamable(f"array {key!r} was not read to its end")
                pos = array.end
            else:
                value, pos = _value(raw, pos)
                yield key, value
            pos = _ws(raw, pos)
            c = raw[pos : pos + 1]
            pos += 1
            if c == b"}":
                break
            if c != b",":
                raise NotStreamable(f"expected ',' or '}}' at byte {pos - 1}")
            pos = _ws(raw, pos)
    if _ws(raw, pos) != len(raw):
        raise NotStreamable(f"extra data after byte {pos}")
