"""The results file's checks in bulk (results_file.check_results) against its rules entry by
entry: the same entries accepted with the same values, the same first bad entry named with
the same message, and the JSON read as the json module reads it."""

import copy
import json
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resnet_det.evaluation.results_file import (
    _check_all_or_no_masks,
    _columns_in_bulk,
    _columns_one_by_one,
    _parse_json,
    _validate_entry,
    check_results,
    read_results_file,
)
from resnet_det.utils.errors import DataError

BOX_ENTRY = {"image_id": 1, "category_id": 3, "bbox": [1.0, 2.0, 10.5, 4.0], "score": 0.9}
MASK_ENTRY = {
    "image_id": "000005",
    "category_id": 7,
    "bbox": [0, 0, 1, 1],
    "score": 0.1,
    "segmentation": {"size": [4, 5], "counts": "0l0"},
}
# Values of every kind a JSON document (or a caller's list) can put where a number, an id, a
# box, a size or a run list belongs.
ODD_VALUES = [
    None,
    True,
    False,
    0,
    -1,
    7,
    2**70,
    10**400,
    -(10**400),
    1.5,
    -0.0,
    -2.5,
    math.nan,
    math.inf,
    -math.inf,
    "x",
    "000005",
    "",
    [],
    [1, 2, 3],
    [0, 0, 5, 5],
    [0, 0, -5, 5],
    [0, 0, 5, math.nan],
    [0, 0, 5, True],
    [0, 0, 5, "5"],
    (0, 0, 5, 5),
    {},
    {"size": [4, 5]},
    np.float64(2.5),
    np.int64(3),
    Fraction(1, 3),
]
# Values more likely at each key: near misses of a valid value.
NEAR = {
    "bbox": [[0, 0, -5, 5], [0, 0, 5, -0.5], [0, 0, 5, 1e400], [0, 0, 5], [0, 0, 5, 5, 5]],
    "score": [math.nan, -math.inf, 2**1100, "0.5", 1],
    "image_id": [1.0, "1", True],
    "category_id": [3.0, "3", -3, 2**70],
    "size": [[4, 0], [-4, 5], [4], [4, 5.0], [True, 5], [2**70, 5], [4, 5, 6], (4, 5)],
    "counts": ["0l0", "", "~", [20], [-1, 21], [20.0], [True], [2**70], (20,)],
}
KEYS = ["image_id", "category_id", "bbox", "score", "segmentation", "extra"]
SEGM_KEYS = ["size", "counts", "extra"]


def _rules(entries, source):
    """The reference: every entry checked by the rules, then the masks all-or-none."""
    for i, entry in enumerate(entries):
        _validate_entry(i, entry, source)
    _check_all_or_no_masks(entries, source)
    return _columns_one_by_one(entries, source)


def _outcome(fn, entries):
    try:
        return fn(copy.deepcopy(entries), "results.json")
    except DataError as e:
        return str(e)


def _same_columns(a, b):
    assert a.image_ids == b.image_ids and type(a.image_ids) is type(b.image_ids)
    assert a.category_ids == b.category_ids
    np.testing.assert_array_equal(a.boxes, b.boxes)  # NaN rows (no "bbox") equal too
    np.testing.assert_array_equal(a.scores, b.scores)
    assert a.boxes.dtype == b.boxes.dtype == a.scores.dtype == np.float64
    assert a.segmentations == b.segmentations


@st.composite
def _entries(draw):
    base = draw(st.sampled_from([BOX_ENTRY, MASK_ENTRY]))
    entries = [copy.deepcopy(base) for _ in range(draw(st.integers(0, 5)))]
    for _ in range(draw(st.integers(0, 4))):
        if not entries:
            break
        entry = entries[draw(st.integers(0, len(entries) - 1))]
        target, keys = entry, KEYS
        if isinstance(entry.get("segmentation"), dict) and draw(st.booleans()):
            target, keys = entry["segmentation"], SEGM_KEYS
        key = draw(st.sampled_from(keys))
        action = draw(st.integers(0, 3))
        if action == 0:
            target.pop(key, None)
        else:
            values = NEAR.get(key, []) if action < 3 and key in NEAR else ODD_VALUES
            target[key] = copy.deepcopy(draw(st.sampled_from(values)))
    if entries and draw(st.integers(0, 5)) == 0:
        entries[draw(st.integers(0, len(entries) - 1))] = draw(st.sampled_from(ODD_VALUES))
    return entries


def _check_same_decision(entries):
    expected = _outcome(_rules, entries)
    got = _outcome(check_results, entries)
    if isinstance(expected, str):
        assert got == expected, entries
    else:
        _same_columns(got, expected)
    # Whatever the bulk pass vouches for on its own, the rules accept with the same values.
    bulk = _outcome(_columns_in_bulk, entries)
    if bulk is not None:
        assert not isinstance(expected, str), (entries, expected)
        _same_columns(bulk, expected)


_POP = object()


def test_every_single_change_is_decided_as_the_rules_decide():
    cases = 0
    for base in (BOX_ENTRY, MASK_ENTRY):
        places = [(None, key) for key in KEYS]
        if "segmentation" in base:
            places += [("segmentation", key) for key in SEGM_KEYS]
        for parent, key in places:
            for value in [_POP] + NEAR.get(key, []) + ODD_VALUES:
                entries = [copy.deepcopy(base) for _ in range(3)]
                target = entries[1] if parent is None else entries[1][parent]
                if value is _POP:
                    target.pop(key, None)
                else:
                    target[key] = copy.deepcopy(value)
                _check_same_decision(entries)
                cases += 1
    assert cases > 500


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_entries())
def test_several_changes_are_decided_as_the_rules_decide(entries):
    _check_same_decision(entries)


def test_bulk_pass_vouches_for_the_plain_cases():
    boxes = [dict(BOX_ENTRY, image_id=i, bbox=[i, 2, 3, 4 + i]) for i in range(50)]
    masks = [dict(MASK_ENTRY) for _ in range(3)] + [
        {k: v for k, v in MASK_ENTRY.items() if k != "bbox"}
    ]
    masks[1] = dict(MASK_ENTRY, segmentation={"size": [4, 5], "counts": [3, 17]})
    for entries in (boxes, masks, []):
        bulk = _columns_in_bulk(entries, "r.json")
        assert bulk is not None  # no fallback to the rules for ordinary files
        _same_columns(bulk, _rules(entries, "r.json"))
    assert np.isnan(_columns_in_bulk(masks, "r.json").boxes[3]).all()


def test_first_bad_entry_is_named_whatever_else_is_wrong_later(tmp_path):
    entries = [dict(BOX_ENTRY) for _ in range(6)]
    entries[2] = dict(BOX_ENTRY, score=math.inf)
    entries[4] = dict(BOX_ENTRY, bbox=[1, 2, 3])
    path = tmp_path / "r.json"
    path.write_text(json.dumps(entries))  # writes Infinity, which the json module reads
    with pytest.raises(DataError, match=rf"^{path}: entry 2 has score inf; expected a finite"):
        read_results_file(str(path))


@pytest.mark.parametrize(
    "raw",
    [
        b'[{"a": NaN, "b": Infinity, "c": -Infinity}]',
        b"[12345678901234567890123456789, -1e400, 1e400, 0.1, 5e-324, -0.0]",
        "[1, 2.5]".encode("utf-16"),
        b'\xef\xbb\xbf[{"x": 1}]',
        b'["\\ud800", "\\u00e9", "\xc3\xa9"]',
        b'{"a": 1, "a": 2}',
        b"[0.30000000000000004, 1.7976931348623157e308, 2.2250738585072014e-308]",
    ],
)
def test_json_is_read_as_the_json_module_reads_it(raw):
    expected = json.loads(raw)
    got = _parse_json(raw)
    assert json.dumps(got) == json.dumps(expected)
    assert [type(v) for v in got] == [type(v) for v in expected] if isinstance(got, list) else True


@pytest.mark.parametrize("raw", [b"[1, 2", b"[1,]", b"\xff[]", b"[01]", b""])
def test_invalid_json_gets_the_json_modules_error(raw):
    with pytest.raises(ValueError) as expected:
        json.loads(raw)
    with pytest.raises(ValueError) as got:
        _parse_json(raw)
    assert str(got.value) == str(expected.value)
