"""The vectorised decoding of pycocotools' compressed RLE strings against pycocotools' own
encoder and decoder (the check annotation and results-file readers run before pycocotools)."""

import numpy as np
from pycocotools import mask as mask_utils

from resnet_det.utils.rle import compressed_rle_sums, compressed_rle_totals


def test_totals_of_valid_strings_match_pycocotools(random_masks):
    rng = np.random.default_rng(7)
    strings, expected = [], []
    for _ in range(40):
        h, w = int(rng.integers(1, 60)), int(rng.integers(1, 300))
        for mask in random_masks(rng, 4, h, w):
            rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            strings.append(rle["counts"].decode("ascii"))
            expected.append(h * w)
    # Long runs: counts of several characters and differences of both signs.
    big = np.zeros((700, 900), dtype=np.uint8)
    big[5:690, 3:4] = 1
    big[100:101, :] = 1
    strings.append(mask_utils.encode(np.asfortranarray(big))["counts"].decode("ascii"))
    expected.append(big.size)
    np.testing.assert_array_equal(compressed_rle_totals(strings), expected)


def test_areas_match_pycocotools(monkeypatch, random_masks):
    from resnet_det.utils import rle

    rng = np.random.default_rng(5)
    rles = []
    for _ in range(60):
        h, w = int(rng.integers(1, 50)), int(rng.integers(1, 200))
        rles += [
            mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
            for m in random_masks(rng, 3, h, w)
        ]
    full = np.ones((40, 900), dtype=np.uint8)  # 900 runs of 39 ones, each after a zero
    full[0, :] = 0
    rles.append(mask_utils.encode(np.asfortranarray(full)))
    rles.append(mask_utils.encode(np.zeros((3, 4), dtype=np.uint8, order="F")))
    strings = [r["counts"].decode("ascii") for r in rles]
    expected = mask_utils.area(rles).astype(np.int64)
    strings.insert(9, "P")  # a bad string: -1 in both, its neighbours unaffected
    expected = np.insert(expected, 9, -1)
    totals, areas = compressed_rle_sums(strings)
    np.testing.assert_array_equal(areas, expected)
    np.testing.assert_array_equal(totals, compressed_rle_totals(strings))
    assert areas.max() == 39 * 900 and (areas == 0).any()
    monkeypatch.setattr(rle, "_CHUNK_CHARS", 50)  # strings across many chunks
    np.testing.assert_array_equal(compressed_rle_sums(strings)[1], expected)


def test_bad_strings_are_minus_one_and_do_not_spoil_their_neighbours():
    good = mask_utils.encode(np.asfortranarray(np.eye(5, dtype=np.uint8)))["counts"].decode("ascii")
    cases = [
        good,
        good[:-1] + "p",  # 'p' is beyond 'o' (63)
        "3" + chr(0x20 + 48),  # ends inside a number (continuation bit on the last character)
        "/0",  # below '0'
        "0000000000",  # zeros: valid runs of 0 (total 0)
        "\u00e9",  # not ASCII
        "P" * 8 + "0",  # a number of 9 characters
        "61O",  # a third count of -1 (sign bit on)
        good,
        "",
    ]
    totals = compressed_rle_totals(cases)
    assert totals[0] == 25 and totals[8] == 25  # the neighbours of bad strings are read right
    assert list(totals[1:4]) == [-1, -1, -1]
    assert totals[4] == 0
    assert list(totals[5:8]) == [-1, -1, -1]
    assert totals[9] == 0
    assert compressed_rle_totals([]).shape == (0,)


def test_chunks_give_the_same_totals(monkeypatch, random_masks):
    from resnet_det.utils import rle

    rng = np.random.default_rng(3)
    strings = [
        mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))["counts"].decode("ascii")
        for m in random_masks(rng, 30, 20, 30)
    ]
    strings[7] = strings[7] + "P"  # a bad one inside a chunk
    whole = compressed_rle_totals(strings)
    monkeypatch.setattr(rle, "_CHUNK_CHARS", 40)
    np.testing.assert_array_equal(compressed_rle_totals(strings), whole)
    assert whole[7] == -1 and (np.delete(whole, 7) == 600).all()


def _total_by_rle_fr_string(s):
    """pycocotools' rleFrString (maskApi.c) one character at a time, with its failures as -1:
    the reference the vectorised decoding must equal string by string."""
    if not isinstance(s, str) or not s.isascii():
        return -1
    counts, p = [], 0
    while p < len(s):
        x, k, more = 0, 0, True
        while more:
            if p == len(s):
                return -1  # ends inside a number
            c = ord(s[p]) - 48
            if not 0 <= c <= 63:
                return -1
            x |= (c & 0x1F) << (5 * k)
            more = c & 0x20
            p += 1
            k += 1
            if not more and c & 0x10:
                x -= 1 << (5 * k)  # x |= -1 << 5 * k
        if k > 7:
            return -1
        if len(counts) > 2:
            x += counts[-2]
        if not 0 <= x < 2**32:
            return -1
        counts.append(x)
    return sum(counts)


def test_totals_equal_a_per_string_decoder_on_random_strings(monkeypatch, random_masks):
    from resnet_det.utils import rle

    rng = np.random.default_rng(11)
    alphabet = [chr(i) for i in range(48, 48 + 64)]
    valid = [
        mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))["counts"].decode("ascii")
        for m in random_masks(rng, 60, 40, 70)
    ]
    strings = []
    for _ in range(3000):
        kind = rng.integers(6)
        if kind == 0:  # a valid encoding
            s = valid[rng.integers(len(valid))]
        elif kind == 1:  # one character of a valid encoding changed (any of 0..127)
            s = valid[rng.integers(len(valid))]
            i = int(rng.integers(len(s)))
            s = s[:i] + chr(int(rng.integers(128))) + s[i + 1 :]
        elif kind == 2:  # a valid encoding cut short
            s = valid[rng.integers(len(valid))]
            s = s[: int(rng.integers(len(s) + 1))]
        elif kind == 3:  # random characters of the alphabet: long numbers, signs, overflows
            s = "".join(rng.choice(alphabet, size=int(rng.integers(0, 30))))
        elif kind == 4:  # long numbers: continuation characters then an end
            s = "".join(
                "".join(rng.choice(alphabet[32:], size=int(rng.integers(0, 9))))
                + str(rng.choice(alphabet[:32]))
                for _ in range(int(rng.integers(1, 6)))
            )
        else:
            s = [None, 5, "\u00e9", ""][int(rng.integers(4))]
        strings.append(s)
    expected = [_total_by_rle_fr_string(s) for s in strings]
    assert sum(t == -1 for t in expected) > 500 and sum(t > 0 for t in expected) > 500
    np.testing.assert_array_equal(compressed_rle_totals(strings), expected)
    monkeypatch.setattr(rle, "_CHUNK_CHARS", 97)  # many chunks, strings across their ends
    np.testing.assert_array_equal(compressed_rle_totals(strings), expected)
