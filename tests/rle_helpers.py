"""Masks and their COCO RLE encodings for the tests (importable by name: tests/ is on pytest's
path)."""

import numpy as np
from pycocotools import mask as mask_util


def rectangle_mask(y0, y1, x0, x1, h, w):
    """A uint8 [h, w] mask, 1 on rows y0..y1-1 and columns x0..x1-1."""
    m = np.zeros((h, w), np.uint8)
    m[y0:y1, x0:x1] = 1
    return m


def compressed_rle(mask):
    """pycocotools' compressed RLE of a mask, "counts" a str as JSON annotations hold it."""
    r = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": list(r["size"]), "counts": r["counts"].decode("ascii")}


def uncompressed_rle(mask):
    """COCO's uncompressed RLE of a mask: run lengths in column-major order, from a 0 run."""
    flat = mask.astype(np.uint8).flatten(order="F")
    bounds = np.r_[0, np.flatnonzero(np.diff(flat)) + 1, flat.size]
    counts = np.diff(bounds).tolist()
    return {"size": list(mask.shape), "counts": ([0] if flat[0] else []) + counts}
