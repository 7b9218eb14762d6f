"""The streamed reading of a JSON object gives what json.loads gives, or refuses (never a
different value)."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resnet_det.utils.json_chunks import ChunkedArray, NotStreamable, iter_members

# Strings full of the bytes the chunks are cut at.
_TRICKY = st.sampled_from(["},{", "}]", "}, {", '"', "\\", "}", "]", "{", "},\n{", "\\\\"])
_STRINGS = st.lists(st.one_of(_TRICKY, st.text(max_size=3)), max_size=4).map("".join)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**62), 2**62),
    st.floats(allow_nan=False, allow_infinity=False, allow_subnormal=False),
    _STRINGS,
)
_VALUES = st.recursive(
    _SCALARS,
    lambda c: st.one_of(st.lists(c, max_size=4), st.dictionaries(_STRINGS, c, max_size=4)),
    max_leaves=10,
)
_OBJECTS = st.dictionaries(_STRINGS, _VALUES, max_size=4)


def _read(text: bytes, chunk_bytes: int = 1):
    out, chunks = {}, {}
    for key, value in iter_members(text, ("images", "annotations"), chunk_bytes):
        if isinstance(value, ChunkedArray):
            parts = list(value)
            chunks[key] = len(parts)
            value = [e for part in parts for e in part]
        out[key] = value
    return out, chunks


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(
    st.lists(_OBJECTS, max_size=6),
    st.lists(_OBJECTS, max_size=6),
    st.dictionaries(_STRINGS, _VALUES, max_size=3),
    st.sampled_from([None, 1, 2]),
    st.sampled_from([1, 1, 7, 64]),
)
def test_streamed_members_equal_json_loads(images, annotations, others, indent, chunk_bytes):
    doc = dict(others, images=images, annotations=annotations)
    text = json.dumps(doc, indent=indent).encode()
    got, chunks = _read(text, chunk_bytes)
    assert got == json.loads(text)
    # Chunks of at least one byte: one element each.
    if chunk_bytes == 1:
        assert chunks.get("annotations", 0) == len(annotations)


@pytest.mark.parametrize(
    "text",
    [
        b'{"a": NaN}',  # json reads NaN, orjson does not
        b'{"a": 1e400}',  # json: inf
        b'{"a": "\\ud800"}',  # a lone surrogate
        b'\xef\xbb\xbf{"a": 1}',  # a byte-order mark
        b'{"a": 1, "a": 2}',  # a key twice
        b'{"images": [1, 2]}',  # not objects
        b'{"images": [{"id": 1}, 2]}',
        b'{"a": 1} x',
        b'{"a": 1,}',
        b"[1, 2]",
    ],
)
def test_refuses_what_it_cannot_read_as_json_does(text):
    with pytest.raises(NotStreamable):
        _read(text)


def test_big_integer_in_an_element_is_refused_or_exact():
    # orjson reads integers beyond 64 bits as floats; the reader refuses those documents by
    # its own check, this module only promises parsed values equal to orjson's.
    text = b'{"annotations": [{"id": 1}, {"id": 18446744073709551616}]}'
    got, _ = _read(text)
    assert got["annotations"][0] == {"id": 1}
    assert type(got["annotations"][1]["id"]) is float
