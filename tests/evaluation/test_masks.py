"""Masks in COCO's results format: binarising, RLE encoding (pycocotools' own bytes)."""

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from resnet_det.evaluation.masks import binarize_masks, encode_masks, rle_boxes


def test_binarize_keeps_probabilities_above_one_half():
    probs = torch.tensor([[[[0.2, 0.5], [0.51, 1.0]]]])  # [1, 1, 2, 2]
    assert binarize_masks(probs).tolist() == [[[False, False], [True, True]]]
    assert binarize_masks(torch.tensor([[[0, 3]]], dtype=torch.uint8)).tolist() == [[[False, True]]]
    with pytest.raises(ValueError, match=r"image 5's masks.*\(2, 2\).*\(3, 2\)"):
        binarize_masks(probs, image_size=(3, 2), where="image 5's masks")
    with pytest.raises(ValueError, match="shape"):
        binarize_masks(torch.zeros(2, 3, 4, 4))


@pytest.mark.parametrize("seed", range(3))
def test_encode_gives_pycocotools_rle_and_decodes_back(seed, random_masks):
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(1, 40)), int(rng.integers(1, 40))
    masks = random_masks(rng, 8, h, w)
    probs = torch.from_numpy(masks[:, None].astype(np.float32)) * 0.4 + 0.3  # 0.7 inside, 0.3 out
    rles = encode_masks(probs)
    assert len(rles) == 8
    for rle, mask in zip(rles, masks):
        assert rle["size"] == [h, w] and isinstance(rle["counts"], str)
        ref = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        assert rle["counts"] == ref["counts"].decode("ascii")
        decoded = mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode()})
        assert np.array_equal(decoded.astype(bool), mask)
    np.testing.assert_array_equal(
        rle_boxes(rles),
        mask_utils.toBbox([{"size": r["size"], "counts": r["counts"].encode()} for r in rles]),
    )
    assert encode_masks(torch.zeros(0, 1, h, w)) == []
