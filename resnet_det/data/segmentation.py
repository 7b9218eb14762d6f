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
from typing import Any, List, Optional, Tuple, Union

from pycocotools import mask as mask_util

from ..utils.rle import compressed_rle_totals

__all__ = ["check_segmentation", "normalize_segmentation"]


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
