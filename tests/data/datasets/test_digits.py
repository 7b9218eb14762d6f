"""The embedded digits set: fixed split, sizes, determinism."""

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

from resnet_det.data.datasets.digits import load_digits_split


def test_fixed_split_sizes_and_disjoint():
    train, test = load_digits_split("train"), load_digits_split("test")
    assert len(train) == 1500 and len(test) == 297
    ids_train, ids_test = {d["image_id"] for d in train}, {d["image_id"] for d in test}
    assert not ids_train & ids_test and len(ids_train | ids_test) == 1797
    assert {d["label"] for d in test} == set(range(10))
    again = load_digits_split("test")
    assert [d["image_id"] for d in again] == [d["image_id"] for d in test]


def test_images_are_upsampled_digits():
    raw = load_digits()
    d = load_digits_split("train")[0]
    img = d["image"]
    assert img.shape == (16, 16, 3) and img.dtype == np.uint8
    assert d["label"] == raw.target[d["image_id"]]
    assert (img[:1] == 0).all() and (img[:, -1:] == 0).all()  # the 1-pixel zero border
    assert (img[..., 0] == img[..., 1]).all()
    # Shrunk back to 8x8, the 14x14 interior matches the original (0-16 scaled to 0-255).
    inner = torch.from_numpy(img[1:15, 1:15, 0].astype(np.float32))[None, None]
    back = F.adaptive_avg_pool2d(inner, 8)[0, 0].numpy()
    orig = raw.images[d["image_id"]] * 255.0 / 16.0
    assert np.corrcoef(back.ravel(), orig.ravel())[0, 1] > 0.9
