"""COCO instance masks ("segmentation"): the checks a reader applies. The masks of one image
while it is transformed are resnet_det.data.detection.instance_masks.InstanceMasks.

pycocotools' C code trusts its input: an RLE whose counts add up to more than its size is
written past the end of the mask, a compressed counts string that ends inside a number is read
past its end, and a polygon of two points is taken for a box. So nothing reaches it that
:func:`check_segmentation` has not accepted.

Accepted (docs/datasets.md "Instance masks"):

- polygons: a non-empty list of polygons, each a flat list ``[x1, y1, x2, y2, ...]`` of at
  least 3 points (an even count of 6 or more finite numbers) in continuous pixel coordinates,
  each within the image enlarged by its own width/height on every side;
- RLE: ``{"size": [height, width], "counts": ...}`` with the image's height and width, counts
  either a list of non-negative ints (uncompressed) or pycocotools' compressed string, adding
  up to height * width.

A crowd region (``iscrowd`` 1) must be RLE, as COCO gives it: polygons on a crowd region are
refused (they are an object's outline, so the crowd flag or the mask is wrong).
"""

import math
from itertools import chain
from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np
from pycocotools import mask as mask_util

from ..utils.rle import compressed_rle_totals

__all__ = ["check_segmentation", "polygons_accepted", "rles_accepted", "normalize_segmentation"]


def _is_number(v: Any) -> bool:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    try:
        return math.isfinite(float(v))
    except OverflowError:  # an int beyond float's range
        return False


def _finite_numbers(values: Any) -> bool:
    """Whether ``values`` is a list of finite numbers (bools are not numbers here)."""
    if not isinstance(values, list):
        return False
    # The common case, fast (COCO's train json has about 20M coordinates): plain ints and
    # floats whose sum is finite are all finite; the others are looked at one by one.
    if all(type(v) is float or type(v) is int for v in values):
        try:
            if math.isfinite(sum(values)):
                return True
        except OverflowError:  # an int beyond float's range
            pass
    return all(_is_number(v) for v in values)


def _check_rle(segm: dict, height: int, width: int) -> Optional[Tuple[str, str]]:
    size, counts = segm.get("size"), segm.get("counts")
    if not (
        isinstance(size, (list, tuple))
        and len(size) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in size)
    ):
        return (
            f"has an RLE mask whose 'size' is {size!r:.60}, not [height, width]",
            "give the RLE's 'size' as [height, width] of its image",
        )
    if list(size) != [height, width]:
        return (
            f"has an RLE mask of size {size} ([height, width]) on an image of "
            f"{height}x{width} (height x width)",
            "encode the mask at its image's size, or correct the image's height/width",
        )
    if isinstance(counts, bytes):  # as pycocotools.mask.encode returns it (in-memory dicts)
        counts = counts.decode("latin-1")
    if isinstance(counts, str):
        total = int(compressed_rle_totals([counts])[0])
        if total < 0:
            return (
                "has an RLE mask whose 'counts' string is not pycocotools' compressed "
                f"encoding ({counts!r:.40})",
                "re-encode it with pycocotools.mask.encode",
            )
    elif isinstance(counts, list) and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in counts
    ):
        total = sum(counts)
    else:
        return (
            f"has an RLE mask whose 'counts' is {type(counts).__name__} {counts!r:.40}, "
            f"neither a list of non-negative ints nor a compressed string",
            "re-encode it with pycocotools.mask.encode",
        )
    if total != height * width:
        return (
            f"has an RLE mask whose runs cover {total} pixels, not the {height * width} "
            f"of its {height}x{width} size",
            "re-encode it with pycocotools.mask.encode",
        )
    return None


def _check_polygons(segm: list, height: int, width: int) -> Optional[Tuple[str, str]]:
    fix = "give each polygon as [x1, y1, x2, y2, ...] with at least 3 points"
    if not segm:
        return "has an empty polygon list as 'segmentation'", fix + ", or leave 'segmentation' out"
    for j, poly in enumerate(segm):
        if not _finite_numbers(poly):
            return (f"has polygon {j} that is not a list of finite numbers: {poly!r:.60}", fix)
        if len(poly) < 6 or len(poly) % 2:
            return (
                f"has polygon {j} of {len(poly)} numbers ({len(poly) // 2} points"
                f"{' and a stray number' if len(poly) % 2 else ''}); a polygon needs at least "
                f"3 points (6 numbers)",
                fix + " (remove the polygon if it is a stray one)",
            )
        xs, ys = poly[0::2], poly[1::2]
        if min(xs) < -width or max(xs) > 2 * width or min(ys) < -height or max(ys) > 2 * height:
            return (
                f"has polygon {j} reaching ({min(xs):.6g}..{max(xs):.6g}, "
                f"{min(ys):.6g}..{max(ys):.6g}), far outside its {width}x{height} image "
                f"(width x height)",
                "give the polygon in its image's pixel coordinates",
            )
    return None


def check_segmentation(
    segm: Any, height: int, width: int, iscrowd: int = 0
) -> Optional[Tuple[str, str]]:
    """None when ``segm`` is a usable mask of an image of ``height`` x ``width`` (module
    docstring), else (what is wrong, the fix) for the reader's error message ("annotation id 3
    (image id 1) " + what is wrong)."""
    if isinstance(segm, dict):
        return _check_rle(segm, height, width)
    if isinstance(segm, list):
        if iscrowd:
            return (
                "is a crowd region (iscrowd 1) whose 'segmentation' is polygons; COCO "
                "gives crowd regions as RLE",
                "set iscrowd 0 if it is one object, or encode the crowd region as RLE",
            )
        return _check_polygons(segm, height, width)
    return (
        f"has a 'segmentation' of type {type(segm).__name__} ({segm!r:.40}), neither "
        f"polygons (a list) nor RLE (an object with 'size' and 'counts')",
        "give polygons or an RLE object",
    )


def polygons_accepted(
    segms: Sequence[list], heights: np.ndarray, widths: np.ndarray
) -> Tuple[np.ndarray, Optional[List[Optional[list]]]]:
    """Which polygon masks :func:`check_segmentation` accepts, decided for many at once.

    A reader has millions of coordinates to check (COCO 2017 train: 860,000 masks); here they
    are checked with numpy in one pass instead of one Python loop per polygon. The answer is
    conservative: True means check_segmentation(segms[i], heights[i], widths[i]) returns None;
    False means it may not (an unusual value, e.g. a bool or a huge int, makes the whole call
    answer False), and the caller asks check_segmentation itself, one by one.

    Args:
        segms: the "segmentation" lists of non-crowd annotations.
        heights, widths: the size of each one's image.

    Returns:
        The bool array, and the accepted masks in the form normalize_segmentation gives
        (floats) where that is not the list given (it holds ints), else None.
    """
    n = len(segms)
    accepted = np.zeros(n, dtype=bool)
    if n == 0:
        return accepted, None
    num_polys = np.fromiter(map(len, segms), dtype=np.int64, count=n)
    polys = list(chain.from_iterable(segms))
    if not polys or set(map(type, polys)) != {list}:
        return accepted, None
    lengths = np.fromiter(map(len, polys), dtype=np.int64, count=len(polys))
    types = set(map(type, chain.from_iterable(polys)))
    if not types <= {int, float}:
        return accepted, None
    try:
        coords = np.fromiter(chain.from_iterable(polys), np.float64, count=int(lengths.sum()))
    except OverflowError:  # an int beyond float's range
        return accepted, None
    starts = np.cumsum(lengths) - lengths
    nonempty = np.flatnonzero(lengths > 0)
    good = (lengths >= 6) & (lengths % 2 == 0)
    if len(nonempty) == len(polys) and not (lengths % 2).any():
        # The usual case, every polygon of even length: x at the even places of ``coords``.
        at = starts[nonempty] // 2
        xs, ys = coords[0::2], coords[1::2]
        xmin, xmax = np.minimum.reduceat(xs, at), np.maximum.reduceat(xs, at)
        ymin, ymax = np.minimum.reduceat(ys, at), np.maximum.reduceat(ys, at)
        finite = np.logical_and.reduceat(np.isfinite(xs) & np.isfinite(ys), at)
    elif len(nonempty):
        at = starts[nonempty]
        owner = np.repeat(np.arange(len(polys)), lengths)
        is_x = ((np.arange(len(coords)) - starts[owner]) & 1) == 0
        inf = np.inf
        xmin = np.minimum.reduceat(np.where(is_x, coords, inf), at)
        xmax = np.maximum.reduceat(np.where(is_x, coords, -inf), at)
        ymin = np.minimum.reduceat(np.where(is_x, inf, coords), at)
        ymax = np.maximum.reduceat(np.where(is_x, -inf, coords), at)
        finite = np.logical_and.reduceat(np.isfinite(coords), at)
    if len(nonempty):
        image = np.repeat(np.arange(n), num_polys)[nonempty]
        h = np.asarray(heights, dtype=np.float64)[image]
        w = np.asarray(widths, dtype=np.float64)[image]
        # The bounds of _check_polygons, compared in float64: exact for images under 2^53 pixels.
        inside = (xmin >= -w) & (xmax <= 2 * w) & (ymin >= -h) & (ymax <= 2 * h)
        good[nonempty] &= finite & inside & (h < 2.0**53) & (w < 2.0**53)
    good[lengths == 0] = False
    image_of_poly = np.repeat(np.arange(n), num_polys)
    bad = np.bincount(image_of_poly[~good], minlength=n)
    accepted = (num_polys > 0) & (bad == 0)
    if types == {float}:
        return accepted, None
    ends = starts + lengths
    first = np.cumsum(num_polys) - num_polys
    normal: List[Optional[list]] = [None] * n
    for i in np.flatnonzero(accepted):
        p = first[i]
        normal[i] = [coords[starts[j] : ends[j]].tolist() for j in range(p, p + num_polys[i])]
    return accepted, normal


def rles_accepted(
    segms: Sequence[dict], heights: Sequence[int], widths: Sequence[int]
) -> np.ndarray:
    """Which RLE masks (dicts) :func:`check_segmentation` accepts, decided for many at once
    (a crowd region's uncompressed counts run to thousands of numbers); conservative as
    :func:`polygons_accepted` is: False means "ask check_segmentation"."""
    n = len(segms)
    accepted = np.zeros(n, dtype=bool)
    sized = [
        k
        for k, s in enumerate(segms)
        if type(s.get("size")) is list
        and len(s["size"]) == 2
        and all(type(v) is int for v in s["size"])
        and s["size"] == [heights[k], widths[k]]
    ]
    strings = [k for k in sized if type(segms[k].get("counts")) is str]
    lists = [k for k in sized if type(segms[k].get("counts")) is list]
    if strings:
        totals = compressed_rle_totals([segms[k]["counts"] for k in strings])
        for k, total in zip(strings, totals.tolist()):
            accepted[k] = total == heights[k] * widths[k]
    # Lists of ints in int64's range (others are left to check_segmentation).
    lists = [
        k
        for k in lists
        if set(map(type, segms[k]["counts"])) <= {int}
        and (
            not segms[k]["counts"]
            or -(2**63) <= min(segms[k]["counts"]) <= max(segms[k]["counts"]) < 2**63
        )
    ]
    counts = [segms[k]["counts"] for k in lists]
    lengths = np.fromiter(map(len, counts), dtype=np.int64, count=len(counts))
    values = np.fromiter(chain.from_iterable(counts), np.int64, count=int(lengths.sum()))
    owner = np.repeat(np.arange(len(lists)), lengths)
    small = np.bincount(owner[(values < 0) | (values >= 2**32)], minlength=len(lists)) == 0
    # Sums of fewer than 2^31 counts below 2^32 are exact in int64.
    totals = np.zeros(len(lists), dtype=np.int64)
    nonempty = lengths > 0
    if nonempty.any():
        totals[nonempty] = np.add.reduceat(values, (np.cumsum(lengths) - lengths)[nonempty])
    for j, k in enumerate(lists):
        accepted[k] = bool(small[j]) and int(totals[j]) == heights[k] * widths[k]
    return accepted


def normalize_segmentation(
    segm: Union[list, dict], height: int, width: int
) -> Union[List[List[float]], dict]:
    """A checked segmentation in the form dataset dicts hold: polygons as lists of floats, RLE
    as ``{"size": [h, w], "counts": str}`` (compressed; what detectron2 and pycocotools read)."""
    if isinstance(segm, list):
        return [[float(v) for v in poly] for poly in segm]
    if isinstance(segm["counts"], list):
        segm = mask_util.frPyObjects(
            {"size": [int(height), int(width)], "counts": segm["counts"]}, height, width
        )
    counts = segm["counts"]
    return {
        "size": [int(height), int(width)],
        "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts,
    }
