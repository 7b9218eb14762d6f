"""Masks in COCO's results format: binarising, RLE encoding (pycocotools' own bytes), and the
vectorised check of compressed RLE strings against pycocotools' decoder."""
import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from resnet_det.evaluation.masks import binarize_masks, compressed_rle_totals, encode_masks, rle_boxes


def _random_masks(rng, n, h, w):
    masks = np.zeros((n, h, w), dtype=bool)
    for k in range(n):
        kind = k % 4
        if kind == 0:  # a rectangle
            y0, x0 = rng.integers(0, h), rng.integers(0, w)
            masks[k, y0:y0 + rng.integers(1, h + 1), x0:x0 + rng.integers(1, w + 1)] = True
        elif kind == 1:  # noise: many short runs
            masks[k] = rng.random((h, w)) < 0.5
        elif kind == 2:  # everything (one run after an empty first one)
            masks[k] = True
        # kind 3: nothing
    return masks


def test_binarize_keeps_probabilities_above_one_half():
    probs = torch.tensor([[[[0.2, 0.5], [0.51, 1.0]]]])  # [1, 1, 2, 2]
    assert binarize_masks(probs).tolist() == [[[False, False], [True, True]]]
    assert binarize_masks(torch.tensor([[[0, 3]]], dtype=torch.uint8)).tolist() == [[[False, True]]]
    with pytest.raises(ValueError, match=r"image 5's masks.*\(2, 2\).*\(3, 2\)"):
        binarize_masks(probs, image_size=(3, 2), where="image 5's masks")
    with pytest.raises(ValueError, match="shape"):
        binarize_masks(torch.zeros(2, 3, 4, 4))


@pytest.mark.parametrize("seed", range(3))
def test_encode_gives_pycocotools_rle_and_decodes_back(seed):
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(1, 40)), int(rng.integers(1, 40))
    masks = _random_masks(rng, 8, h, w)
    probs = torch.from_numpy(masks[:, None].astype(np.float32)) * 0.4 + 0.3  # 0.7 inside, 0.3 out
    rles = encode_masks(probs)
    assert len(rles) == 8
    for rle, mask in zip(rles, masks):
        assert rle["size"] == [h, w] and isinstance(rle["counts"], str)
        ref = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        assert rle["counts"] == ref["counts"].decode("ascii")
        decoded = mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode()})
        assert np.array_equal(decoded.astype(bool), mask)
    np.testing.assert_array_equal(rle_boxes(rles), mask_utils.toBbox(
        [{"size": r["size"], "counts": r["counts"].encode()} for r in rles]))
    assert encode_masks(torch.zeros(0, 1, h, w)) == []


def test_totals_of_valid_strings_match_pycocotools():
    rng = np.random.default_rng(7)
    strings, expected = [], []
    for _ in range(40):
        h, w = int(rng.integers(1, 60)), int(rng.integers(1, 300))
        for mask in _random_masks(rng, 4, h, w):
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


def test_bad_strings_are_minus_one_and_do_not_spoil_their_neighbours():
    good = mask_utils.encode(np.asfortranarray(np.eye(5, dtype=np.uint8)))["counts"].decode("ascii")
    cases = [
        good,
        good[:-1] + "p",        # 'p' is beyond 'o' (63)
        "3" + chr(0x20 + 48),   # ends inside a number (continuation bit on the last character)
        "/0",                   # below '0'
        "0000000000",           # zeros: valid runs of 0 (total 0)
        "\u00e9",               # not ASCII
        "P" * 8 + "0",          # a number of 9 characters
        "61O",                  # a third count of -1 (sign bit on)
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


def test_chunks_give_the_same_totals(monkeypatch):
    from resnet_det.evaluation import masks

    rng = np.random.default_rng(3)
    strings = [mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))["counts"].decode("ascii")
               for m in _random_masks(rng, 30, 20, 30)]
    strings[7] = strings[7] + "P"  # a bad one inside a chunk
    whole = compressed_rle_totals(strings)
    monkeypatch.setattr(masks, "_CHUNK_CHARS", 40)
    np.testing.assert_array_equal(compressed_rle_totals(strings), whole)
    assert whole[7] == -1 and (np.delete(whole, 7) == 600).all()
