"""Instance masks in COCO's results format: binarising a detector's mask output, RLE encoding,
and checking the RLE masks of a results file before pycocotools sees them.

A detector's "masks" output is torchvision's: float [N, 1, H, W] probabilities pasted into the
original image. They are binarised as torchvision's COCO evaluation does (``> 0.5``) and stored
as compressed RLE (pycocotools.mask.encode) with the counts as a str, so that the entries are
plain JSON.

pycocotools' C code trusts an RLE: counts adding up to more than height * width are written
past the end of the mask, and a compressed string that ends inside a number is read past its
end. :func:`compressed_rle_totals` reads every string of a results file at numpy speed (a file
of 200,000 masks in well under a second) so that nothing unchecked reaches it.
"""
from __future__ import annotations

from typing import Any, Dict, List, Sequence

import numpy as np
import torch

__all__ = ["MASK_THRESHOLD", "binarize_masks", "encode_masks", "compressed_rle_totals", "rle_boxes"]

# torchvision's references/detection/coco_eval.py keeps mask probabilities > 0.5.
MASK_THRESHOLD = 0.5
# One compressed count takes at most 7 characters of 5 bits (runs below 2^34 pixels).
_MAX_CHARS = 7


def binarize_masks(masks: Any, *, image_size=None, where: str = "masks") -> torch.Tensor:
    """A detector's masks as a bool tensor [N, H, W] (on the masks' device).

    Args:
        masks: float probabilities [N, 1, H, W] or [N, H, W] (kept where > 0.5), or bool /
            integer masks of those shapes (kept where non-zero); a tensor or an array.
        image_size: (height, width) the masks must have (None: not checked).
        where: how errors refer to the masks (e.g. "image 12's masks").
    """
    masks = torch.as_tensor(masks)
    if masks.dim() == 4 and masks.shape[1] == 1:
        masks = masks[:, 0]
    if masks.dim() != 3:
        raise ValueError(f"{where}: expected [N, 1, H, W] or [N, H, W], got shape {tuple(masks.shape)}")
    if image_size is not None and tuple(masks.shape[-2:]) != tuple(int(v) for v in image_size):
        raise ValueError(f"{where}: masks of {tuple(masks.shape[-2:])} (height, width) for an image of "
                         f"{tuple(image_size)}; the detector must paste them into the original image")
    if masks.dtype == torch.bool:
        return masks
    if masks.is_floating_point():
        return masks > MASK_THRESHOLD
    return masks != 0


def encode_masks(masks: Any) -> List[Dict[str, Any]]:
    """Compressed RLE of each mask, ``{"size": [H, W], "counts": str}`` (JSON-ready).

    Args:
        masks: anything :func:`binarize_masks` takes.
    """
    from pycocotools import mask as mask_utils

    masks = binarize_masks(masks)
    if len(masks) == 0:
        return []
    # pycocotools wants [H, W, N] in Fortran order, which is the memory of a C-contiguous
    # [N, W, H]: one transposing copy (of bytes, after binarising) and no other.
    arr = masks.to(torch.uint8).transpose(1, 2).contiguous().cpu().numpy()
    rles = mask_utils.encode(arr.transpose(2, 1, 0))
    return [{"size": [int(v) for v in r["size"]], "counts": r["counts"].decode("ascii")} for r in rles]


def rle_boxes(rles: Sequence[Dict[str, Any]]) -> np.ndarray:
    """Tight XYWH box of each checked RLE mask (pycocotools.mask.toBbox), float64 [N, 4]."""
    from pycocotools import mask as mask_utils

    if not rles:
        return np.zeros((0, 4))
    coded = [{"size": list(r["size"]), "counts": r["counts"].encode("ascii")} for r in rles]
    return np.asarray(mask_utils.toBbox(coded), dtype=np.float64).reshape(-1, 4)


def compressed_rle_totals(counts: Sequence[str]) -> np.ndarray:
    """Pixels that each compressed RLE counts string covers (the sum of its runs), int64 [N];
    -1 where a string is not pycocotools' encoding: a character outside '0'..'o', a string
    ending inside a number, a number of more than 7 characters, a negative or >= 2^32 run.

    The decoding is pycocotools' rleFrString (maskApi.c): 5 bits a character from '0' with
    continuation bit 0x20, the last character's bit 0x10 as sign, and each count after the
    third stored as the difference to the one two before; done for all strings at once.
    """
    n = len(counts)
    totals = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return totals
    valid = np.array([isinstance(s, str) and s.isascii() for s in counts], dtype=bool)
    strings = [s if ok else "" for s, ok in zip(counts, valid)]
    lengths = np.fromiter((len(s) for s in strings), dtype=np.int64, count=n)
    if lengths.sum() == 0:
        totals[valid] = 0
        return totals
    c = np.frombuffer("".join(strings).encode("ascii"), dtype=np.uint8).astype(np.int64) - 48
    owner = np.repeat(np.arange(n), lengths)
    valid[owner[(c < 0) | (c > 63)]] = False
    c &= 0x3F
    last = np.cumsum(lengths) - 1
    nonempty = lengths > 0
    more = (c & 0x20) != 0
    valid[np.flatnonzero(nonempty)[more[last[nonempty]]]] = False  # ends inside a number
    more[last[nonempty]] = False  # so that no number runs on into the next string
    ends = np.flatnonzero(~more)  # last character of each number
    number = np.cumsum(~more) - ~more  # the number each character belongs to
    starts = np.r_[0, ends[:-1] + 1]
    k = np.arange(len(c)) - starts[number]  # character index within its number
    valid[owner[k >= _MAX_CHARS]] = False
    k = np.minimum(k, _MAX_CHARS - 1)
    x = np.bincount(number, weights=(c & 0x1F) << (5 * k)).astype(np.int64)
    sign = (c[ends] & 0x10) != 0
    x[sign] -= np.left_shift(1, 5 * (k[ends][sign] + 1))
    # The index m of each number within its string; m > 2 adds the count two before, so the
    # counts are running sums along three chains: m = 0; odd m; even m >= 2.
    num_owner = owner[ends]
    first = np.searchsorted(num_owner, np.arange(n))
    m = np.arange(len(x)) - first[num_owner]
    chain = num_owner * 3 + np.where(m == 0, 0, np.where(m % 2 == 1, 1, 2))
    order = np.argsort(chain, kind="stable")
    xs, keys = x[order], chain[order]
    running = np.cumsum(xs)
    chain_start = np.r_[True, keys[1:] != keys[:-1]]
    offset = np.maximum.accumulate(np.where(chain_start, np.arange(len(xs)), 0))
    before = np.where(offset > 0, running[offset - 1], 0)
    runs = np.empty_like(x)
    runs[order] = running - before
    valid[num_owner[(runs < 0) | (runs >= 2 ** 32)]] = False
    sums = np.zeros(n, dtype=np.int64)
    np.add.at(sums, num_owner, runs)
    totals[valid] = sums[valid]
    return totals
