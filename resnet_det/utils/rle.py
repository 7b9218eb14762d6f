"""pycocotools' compressed RLE strings, decoded with numpy for many strings at once.

pycocotools' C code trusts an RLE: counts adding up to more than height * width are written
past the end of the mask, and a compressed string that ends inside a number is read past its
end. The readers of annotations (resnet_det.data.segmentation) and of results files
(resnet_det.evaluation) check every string with :func:`compressed_rle_sums` before
pycocotools sees it, in numpy over many strings at once: a Python loop over the characters
would cost more than the metric itself (docs/benchmarks.md, "COCO evaluation"). The same
decoding gives each mask's area (:func:`compressed_rle_sums`), which the metric needs too:
taken from the check, the strings are not decoded once more for it.
"""

from typing import Any, Sequence, Tuple

import numpy as np

__all__ = ["compressed_rle_sums", "compressed_rle_totals"]

# One compressed count takes at most 7 characters of 5 bits (runs below 2^34 pixels).
_MAX_CHARS = 7


def compressed_rle_totals(counts: Sequence[str]) -> np.ndarray:
    """Pixels that each compressed RLE counts string covers (the sum of its runs), int64 [N];
    -1 where a string is not pycocotools' encoding (:func:`compressed_rle_sums`)."""
    return compressed_rle_sums(counts)[0]


def compressed_rle_sums(counts: Sequence[str]) -> Tuple[np.ndarray, np.ndarray]:
    """(totals, areas), int64 [N] each: the pixels that each compressed RLE counts string
    covers (the sum of its runs) and its mask's area (the sum of its odd runs, the ones;
    pycocotools' mask.area). Both are -1 where a string is not pycocotools' encoding: a
    character outside '0'..'o', a string ending inside a number, a number of more than 7
    characters, a negative or >= 2^32 run.

    The decoding is pycocotools' rleFrString (maskApi.c): 5 bits a character from '0' with
    continuation bit 0x20, the last character's bit 0x10 as sign, and each count after the
    third stored as the difference to the one two before; done with numpy for many strings at
    once, in chunks of about 65,000 characters.
    """
    totals = np.full(len(counts), -1, dtype=np.int64)
    areas = totals.copy()
    start, chars = 0, 0
    for i, s in enumerate(counts):
        chars += len(s) if isinstance(s, str) else 0
        if chars >= _CHUNK_CHARS or i == len(counts) - 1:
            totals[start : i + 1], areas[start : i + 1] = _chunk_sums(counts[start : i + 1])
            start, chars = i + 1, 0
    return totals, areas


# Characters decoded at once: the chunk's arrays (a few bytes a character, eight a count) stay
# within the CPU's L2 cache, which a larger chunk outgrows; and every count of a string (fewer
# than 2^20 of them, each < 2^32) sums exactly in int64.
_CHUNK_CHARS = 1 << 16


def _chunk_sums(strings: Sequence[Any]) -> Tuple[np.ndarray, np.ndarray]:
    n = len(strings)
    try:  # the common case, every string ASCII, decided by two C loops
        joined = "".join(strings)
    except TypeError:  # not all str
        joined = None
    if joined is not None and joined.isascii():
        valid = np.ones(n, dtype=bool)
    else:
        valid = np.array([isinstance(s, str) and s.isascii() for s in strings], dtype=bool)
        strings = [s if ok else "" for s, ok in zip(strings, valid)]
        joined = "".join(strings)
    lengths = np.fromiter(map(len, strings), dtype=np.int64, count=n)
    totals = np.full(n, -1, dtype=np.int64)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if offsets[-1] == 0:
        totals[valid] = 0
        return totals, totals.copy()
    c = np.frombuffer(joined.encode("ascii"), dtype=np.uint8) - np.uint8(48)
    if c.max() > 63:  # a character below '0' wraps round to above 63
        bad = np.flatnonzero(c > 63)
        valid[np.searchsorted(offsets, bad, side="right") - 1] = False
        c &= 0x3F
    more = (c & 0x20) != 0
    last = offsets[1:][lengths > 0] - 1
    nonempty = np.flatnonzero(lengths > 0)
    valid[nonempty[more[last]]] = False  # ends inside a number
    more[last] = False  # so that no number runs on into the next string
    ends = np.flatnonzero(~more)  # the last character of each number
    # The numbers of string s are num_off[s] .. num_off[s + 1] - 1: the owner of a character
    # or number is found by binary search when one is bad, never stored for each.
    num_off = np.searchsorted(ends, offsets)
    num_chars = np.empty_like(ends)
    num_chars[0] = ends[0] + 1
    np.subtract(ends[1:], ends[:-1], out=num_chars[1:])
    ce = c[ends]
    # A number's last character holds its top 5 bits with the sign bit 0x10: as a signed
    # 5-bit value (v ^ 0x10) - 0x10, it is the whole of a one-character number, most of
    # them; the few longer numbers add their other characters, 5 bits a character below it.
    x = (((ce & 0x1F) ^ 0x10).view(np.int8) - np.int8(0x10)).astype(np.int64)
    long = np.flatnonzero(num_chars > 1)
    if len(long):
        nl = num_chars[long]
        too_long = long[nl > _MAX_CHARS]
        if len(too_long):
            valid[np.searchsorted(num_off, too_long, side="right") - 1] = False
        nl = np.minimum(nl, _MAX_CHARS)
        xl = x[long] << (5 * (nl - 1))
        el = ends[long]
        for j in range(_MAX_CHARS - 1):  # character j of the long numbers (not their last)
            sel = np.flatnonzero(nl > j + 1)
            if len(sel) == 0:
                break
            xl[sel] |= (c[el[sel] - nl[sel] + 1 + j].astype(np.int64) & 0x1F) << (5 * j)
        x[long] = xl
    # Count m of a string adds the count two before it when m > 2: the runs are running sums
    # along three chains per string (m = 0; odd m; even m >= 2). The numbers of a string are
    # contiguous, so a chain is the string's numbers of one parity of their global index.
    has = np.flatnonzero(np.diff(num_off) > 0)
    first = num_off[:-1][has]  # index of each m = 0
    after = num_off[1:][has]  # one past each string's last number
    # Each string's sums of runs of each parity of global index: its odd m (the ones) are
    # those of the parity other than its first number's; m = 0 (a run of its own) is
    # counted here, and left out of the chains.
    total, ones = x[first], np.zeros(len(has), dtype=np.int64)
    bad_runs = [first[(total < 0) | (total >= 2**32)]]
    for parity in (0, 1):
        # Where each string's numbers of this parity start and end in the stream: the
        # strings' ranges tile it, so one running sum restarts at each string when the
        # previous string's total is taken off where it starts.
        starts = (first - parity + 1) // 2
        some = (after - parity + 1) // 2 > starts
        starts = starts[some]
        if len(starts) == 0:
            continue
        stream = np.ascontiguousarray(x[parity::2])
        stream[(first[first % 2 == parity] - parity) // 2] = 0  # the m = 0 counts
        segment_sums = np.add.reduceat(stream, starts)
        stream[starts[1:]] -= segment_sums[:-1]
        np.cumsum(stream, out=stream)  # the runs
        if stream.min() < 0 or stream.max() >= 2**32:
            bad_runs.append(2 * np.flatnonzero((stream < 0) | (stream >= 2**32)) + parity)
        part = np.add.reduceat(stream, starts)
        total[some] += part
        ones[some] += np.where(first[some] % 2 != parity, part, 0)
    badn = np.concatenate(bad_runs)
    if len(badn):
        valid[np.searchsorted(num_off, badn, side="right") - 1] = False
    sums, areas = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    sums[has], areas[has] = total, ones
    totals[valid] = sums[valid]
    out_areas = np.full(n, -1, dtype=np.int64)
    out_areas[valid] = areas[valid]
    return totals, out_areas
