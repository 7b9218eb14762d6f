"""pycocotools' compressed RLE strings, decoded with numpy for many strings at once.

pycocotools' C code trusts an RLE: counts adding up to more than height * width are written
past the end of the mask, and a compressed string that ends inside a number is read past its
end. The readers of annotations (resnet_det.data.segmentation) and of results files
(resnet_det.evaluation) check every string with :func:`compressed_rle_totals` before
pycocotools sees it: 20,000 masks of 640x480 images (6 million characters) in 0.4 s, against
1.3 s for a Python loop over the characters, measured side by side on a shared 2-core CPU.
"""

from typing import Any, Sequence

import numpy as np

__all__ = ["compressed_rle_totals"]

# One compressed count takes at most 7 characters of 5 bits (runs below 2^34 pixels).
_MAX_CHARS = 7


def compressed_rle_totals(counts: Sequence[str]) -> np.ndarray:
    """Pixels that each compressed RLE counts string covers (the sum of its runs), int64 [N];
    -1 where a string is not pycocotools' encoding: a character outside '0'..'o', a string
    ending inside a number, a number of more than 7 characters, a negative or >= 2^32 run.

    The decoding is pycocotools' rleFrString (maskApi.c): 5 bits a character from '0' with
    continuation bit 0x20, the last character's bit 0x10 as sign, and each count after the
    third stored as the difference to the one two before; done with numpy for many strings at
    once, in chunks of about 130,000 characters.
    """
    totals = np.full(len(counts), -1, dtype=np.int64)
    start, chars = 0, 0
    for i, s in enumerate(counts):
        chars += len(s) if isinstance(s, str) else 0
        if chars >= _CHUNK_CHARS or i == len(counts) - 1:
            totals[start : i + 1] = _chunk_totals(counts[start : i + 1])
            start, chars = i + 1, 0
    return totals


# Characters decoded at once: the arrays stay small enough for the CPU's caches (larger chunks
# only move more memory), and every count of a string
# (fewer than 2^20 of them, each < 2^32) sums exactly in float64.
_CHUNK_CHARS = 1 << 17


def _segment_sums(x: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """Running sums of ``x`` restarting wherever ``owner`` (sorted) changes."""
    if len(x) == 0:
        return x
    running = np.cumsum(x)
    first = np.flatnonzero(np.concatenate(([True], owner[1:] != owner[:-1])))
    before = np.zeros(len(first), dtype=running.dtype)
    before[1:] = running[first[1:] - 1]
    return running - np.repeat(before, np.diff(np.append(first, len(x))))


def _chunk_totals(strings: Sequence[Any]) -> np.ndarray:
    n = len(strings)
    valid = np.array([isinstance(s, str) and s.isascii() for s in strings], dtype=bool)
    strings = [s if ok else "" for s, ok in zip(strings, valid)]
    lengths = np.fromiter((len(s) for s in strings), dtype=np.int64, count=n)
    totals = np.full(n, -1, dtype=np.int64)
    if lengths.sum() == 0:
        totals[valid] = 0
        return totals
    # Each character's 6 bits, in uint8: a character below '0' wraps round to above 63.
    c = np.frombuffer("".join(strings).encode("ascii"), dtype=np.uint8) - np.uint8(48)
    owner = np.repeat(np.arange(n, dtype=np.int32), lengths)
    bad = c > 63
    if bad.any():
        valid[owner[bad]] = False
        c &= 0x3F
    more = (c & 0x20) != 0
    last = (np.cumsum(lengths) - 1)[lengths > 0]
    valid[owner[last[more[last]]]] = False  # ends inside a number
    more[last] = False  # so that no number runs on into the next string
    ends = np.flatnonzero(~more)  # the last character of each number
    num_chars = np.diff(ends, prepend=-1)
    # Most numbers are one character: their value is that character's 5 bits; the few longer
    # ones add theirs, 5 bits further up per character.
    x = (c[ends] & 0x1F).astype(np.int64) << (5 * (np.minimum(num_chars, _MAX_CHARS) - 1))
    long = np.flatnonzero(num_chars > 1)
    valid[owner[ends[long[num_chars[long] > _MAX_CHARS]]]] = False
    for j in range(_MAX_CHARS - 1):  # character j of the long numbers (not their last)
        sel = long[num_chars[long] > j + 1]
        x[sel] |= (c[ends[sel] - num_chars[sel] + 1 + j].astype(np.int64) & 0x1F) << (5 * j)
    sign = (c[ends] & 0x10) != 0
    x[sign] -= np.left_shift(np.int64(1), 5 * np.minimum(num_chars[sign], _MAX_CHARS))
    # Count m of a string adds the count two before it when m > 2: the runs are running sums
    # along three chains per string (m = 0; odd m; even m >= 2). The numbers of a string are
    # contiguous, so a chain is the string's numbers of one parity of their global index.
    num_owner = owner[ends]
    per_string = np.bincount(num_owner, minlength=n)
    first = (np.cumsum(per_string) - per_string)[per_string > 0]  # index of each m = 0
    chained = x.copy()
    chained[first] = 0
    runs = np.empty_like(x)
    for parity in (0, 1):
        runs[parity::2] = _segment_sums(chained[parity::2], num_owner[parity::2])
    runs[first] = x[first]
    valid[num_owner[(runs < 0) | (runs >= 2**32)]] = False
    sums = np.bincount(num_owner, weights=runs, minlength=n)
    totals[valid] = sums[valid].astype(np.int64)
    return totals
