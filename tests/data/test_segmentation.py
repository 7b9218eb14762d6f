import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rle_helpers import compressed_rle, rectangle_mask, uncompressed_rle

from resnet_det.data.segmentation import (
    check_segmentation,
    normalize_segmentation,
    polygons_accepted,
    rles_accepted,
)
from resnet_det.utils.rle import compressed_rle_totals

H, W = 30, 40


def test_compressed_counts_are_decoded_as_pycocotools_encodes():
    rng = np.random.default_rng(0)
    masks = [(rng.random((H, W)) < 0.1 * (k % 10)).astype(np.uint8) for k in range(20)]
    assert list(compressed_rle_totals([compressed_rle(m)["counts"] for m in masks])) == [H * W] * 20
    # Not the encoding: a character outside '0'..'o', a string ending inside a number
    # ('0' + 0x20 continues), a negative run (sign bit on the first count).
    assert list(compressed_rle_totals(["0~", "P", "@", "4", ""])) == [-1, -1, -1, 4, 0]
    # ... and the reader's check refuses such a string, naming the encoding.
    problem = check_segmentation({"size": [H, W], "counts": "P"}, H, W)
    assert problem is not None and "compressed" in problem[0]


@pytest.mark.parametrize(
    "segm",
    [
        [[1, 1, 10, 1, 10, 10]],
        [[1.5, 1, 10, 1, 10, 10, 1, 10], [20, 20, 30, 20, 25, 28]],
        "rle",
        "uncompressed",
    ],
)
def test_usable_masks_pass(segm):
    m = rectangle_mask(5, 10, 5, 20, H, W)
    segm = (
        {"rle": compressed_rle(m), "uncompressed": uncompressed_rle(m)}.get(segm, segm)
        if isinstance(segm, str)
        else segm
    )
    assert check_segmentation(segm, H, W) is None


@pytest.mark.parametrize(
    "segm, iscrowd, words",
    [
        ([[1, 1, 10, 1]], 0, "polygon 0 of 4 numbers (2 points)"),
        ([[1, 1, 10, 1, 10, 10, 3]], 0, "7 numbers (3 points and a stray number)"),
        ([[1, 1, 10, 1, 10, float("nan")]], 0, "not a list of finite numbers"),
        ([[1, 1, 10, 1, 10, "a"]], 0, "not a list of finite numbers"),
        ([[1, 1, 10, 1, 10, True]], 0, "not a list of finite numbers"),
        ([[1, 1, 10, 1, 10, 10], 5], 0, "polygon 1 that is not a list"),
        ([], 0, "empty polygon list"),
        ([[1, 1, 10, 1, 10, 1e9]], 0, "far outside its 40x30 image"),
        ([[1, 1, 10, 1, 10, 10]], 1, "crowd region (iscrowd 1) whose 'segmentation' is polygons"),
        ({"size": [H + 1, W], "counts": "0"}, 0, f"RLE mask of size [{H + 1}, {W}]"),
        ({"size": [H, W]}, 0, "'counts' is NoneType"),
        ({"size": "30x40", "counts": "0"}, 0, "'size' is '30x40'"),
        ({"size": [H, W], "counts": [1, -2]}, 0, "neither a list of non-negative ints"),
        ({"size": [H, W], "counts": [5, 6]}, 0, f"cover 11 pixels, not the {H * W}"),
        ({"size": [H, W], "counts": "0~"}, 0, "not pycocotools' compressed encoding"),
        ("polygon", 0, "of type str"),
        (7, 0, "of type int"),
    ],
)
def test_unusable_masks_say_what_is_wrong(segm, iscrowd, words):
    bad = check_segmentation(segm, H, W, iscrowd)
    assert bad is not None and words in bad[0], bad
    assert bad[1]  # a fix


def test_crowd_rle_passes_and_normal_form():
    m = rectangle_mask(0, 30, 0, 10, H, W)
    assert check_segmentation(compressed_rle(m), H, W, iscrowd=1) is None
    # Uncompressed RLE becomes the compressed string pycocotools writes; polygons floats.
    assert normalize_segmentation(uncompressed_rle(m), H, W) == compressed_rle(m)
    assert normalize_segmentation([[1, 2, 3, 4, 5, 6]], H, W) == [[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]]
    with_bytes = dict(compressed_rle(m), counts=compressed_rle(m)["counts"].encode())
    assert check_segmentation(with_bytes, H, W) is None
    assert normalize_segmentation(with_bytes, H, W) == compressed_rle(m)


# The bulk checks a reader uses for millions of masks agree with check_segmentation, the rule:
# what they accept it accepts; on plain values (ints and floats) they accept exactly what it does.
_COORD = st.one_of(
    st.floats(-150, 150, allow_nan=False, allow_subnormal=False),
    st.integers(-150, 150),
    st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e300, -0.0, 2**70]),
)
_PLAIN_COORD = st.one_of(
    st.floats(-130, 130, allow_nan=False, allow_subnormal=False), st.integers(-130, 130)
)
_ODD = st.one_of(st.booleans(), st.none(), st.text(max_size=2), st.just([1.0]))


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(
    st.lists(
        st.lists(st.lists(st.one_of(_COORD, _COORD, _COORD, _ODD), max_size=10), max_size=3),
        min_size=1,
        max_size=6,
    ),
    st.integers(1, 60),
    st.integers(1, 60),
)
def test_polygons_accepted_only_what_the_rule_accepts(segms, height, width):
    ok, normal = polygons_accepted(segms, np.full(len(segms), height), np.full(len(segms), width))
    for i, s in enumerate(segms):
        if ok[i]:
            assert check_segmentation(s, height, width) is None
            if normal is not None:
                assert normal[i] == normalize_segmentation(s, height, width)


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(
    st.lists(st.lists(st.lists(_PLAIN_COORD, max_size=10), max_size=3), min_size=1, max_size=6),
    st.lists(st.integers(1, 60), min_size=6, max_size=6),
    st.lists(st.integers(1, 60), min_size=6, max_size=6),
)
def test_polygons_accepted_is_the_rule_on_plain_numbers(segms, heights, widths):
    h, w = heights[: len(segms)], widths[: len(segms)]
    ok, normal = polygons_accepted(segms, np.array(h), np.array(w))
    expected = [check_segmentation(s, hh, ww) is None for s, hh, ww in zip(segms, h, w)]
    assert ok.tolist() == expected
    for i, s in enumerate(segms):
        if ok[i]:
            got = s if normal is None else normal[i]
            assert got == normalize_segmentation(s, h[i], w[i])
            assert all(type(v) is float for p in got for v in p)


def test_rles_accepted_is_the_rule():
    full = compressed_rle(rectangle_mask(5, 9, 3, 30, H, W))
    cases = [
        full,
        uncompressed_rle(rectangle_mask(5, 9, 3, 30, H, W)),
        {"size": [H, W], "counts": "0"},  # covers no pixel of the image
        {"size": [W, H], "counts": full["counts"]},  # another size
        {"size": [H, W], "counts": full["counts"] + "1"},  # ends inside a number
        {"size": [H, W], "counts": [H * W - 1, 1, -1, 1]},  # a negative run
        {"size": [H, W], "counts": [H * W]},
        {"size": [H, W], "counts": [H * W, True]},  # a bool
        {"size": [H, W], "counts": [2**70]},
        {"size": [float(H), W], "counts": [H * W]},
        {"size": [H, W]},
        {"size": [H, W], "counts": []},
    ]
    ok = rles_accepted(cases, [H] * len(cases), [W] * len(cases))
    expected = [check_segmentation(c, H, W) is None for c in cases]
    assert expected[:2] == [True, True] and ok.tolist() == expected


_EVEN_POLYGON = st.lists(st.tuples(_PLAIN_COORD, _PLAIN_COORD), min_size=1, max_size=6).map(
    lambda pairs: [v for p in pairs for v in p]
)


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(st.lists(st.lists(_EVEN_POLYGON, min_size=1, max_size=3), min_size=1, max_size=6))
def test_polygons_accepted_is_the_rule_when_every_polygon_is_even(segms):
    # The pass that reads x and y at the even and odd places of all coordinates at once.
    h, w = np.full(len(segms), 50), np.full(len(segms), 60)
    ok, _ = polygons_accepted(segms, h, w)
    assert ok.tolist() == [check_segmentation(s, 50, 60) is None for s in segms]
