"""CIFAR-10 python batches: a small fake cifar-10-batches-py, the restricted unpickler."""

import os
import pickle

import numpy as np
import pytest

from resnet_det.data.datasets.cifar import load_cifar10, read_cifar_batch, read_cifar_meta
from resnet_det.utils.errors import DataError, MissingFileError

PER_BATCH = 20


def write_fake_cifar(root, per_batch=PER_BATCH):
    """The official layout; dicts with bytes keys as the Python 2 pickles have."""
    os.makedirs(root, exist_ok=True)
    rng = np.random.RandomState(0)
    for b in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.randint(0, 256, size=(per_batch, 3072)).astype(np.uint8)
        labels = [int(x) for x in rng.randint(0, 10, size=per_batch)]
        d = {
            b"batch_label": b.encode(),
            b"labels": labels,
            b"data": data,
            b"filenames": [f"{b}_{i}.png".encode() for i in range(per_batch)],
        }
        with open(os.path.join(root, b), "wb") as f:
            pickle.dump(d, f, protocol=2)
    meta = {
        b"label_names": [
            n.encode()
            for n in [
                "airplane",
                "automobile",
                "bird",
                "cat",
                "deer",
                "dog",
                "frog",
                "horse",
                "ship",
                "truck",
            ]
        ],
        b"num_cases_per_batch": per_batch,
        b"num_vis": 3072,
    }
    with open(os.path.join(root, "batches.meta"), "wb") as f:
        pickle.dump(meta, f, protocol=2)
    return root


def test_splits_45k_5k_style(tmp_path):
    root = write_fake_cifar(str(tmp_path / "cifar-10-batches-py"))
    train, val = load_cifar10(root, "train"), load_cifar10(root, "val")
    trainval, test = load_cifar10(root, "trainval"), load_cifar10(root, "test")
    n = 5 * PER_BATCH
    assert len(trainval) == n and len(train) == n * 9 // 10 and len(val) == n - n * 9 // 10
    assert [d["image_id"] for d in train + val] == [d["image_id"] for d in trainval]
    assert len(test) == PER_BATCH and test[0]["image_id"] == "test_batch/0"
    assert read_cifar_meta(root)[0] == "airplane"


def test_pixel_layout_is_rgb_planes(tmp_path):
    root = write_fake_cifar(str(tmp_path / "c"))
    with open(os.path.join(root, "data_batch_2"), "rb") as f:
        raw = pickle.load(f)  # our own fake file: trusted in this test
    images, labels = read_cifar_batch(os.path.join(root, "data_batch_2"))
    row = raw[b"data"][7]
    # Pixel (r, c) of image 7: R at r*32+c, G at 1024 + r*32+c, B at 2048 + r*32+c.
    for r, c in [(0, 0), (5, 17), (31, 31)]:
        assert tuple(images[7, r, c]) == (
            row[r * 32 + c],
            row[1024 + r * 32 + c],
            row[2048 + r * 32 + c],
        )
    assert labels == list(raw[b"labels"])


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_cannot_run_code(tmp_path):
    root = write_fake_cifar(str(tmp_path / "c"))
    marker = str(tmp_path / "pwned")
    with open(os.path.join(root, "data_batch_3"), "wb") as f:
        pickle.dump(
            {b"data": np.zeros((1, 3072), np.uint8), b"labels": [0], b"x": _Evil(marker)},
            f,
            protocol=2,
        )
    with pytest.raises(DataError, match="data_batch_3.*refusing"):
        load_cifar10(root, "train")
    assert not os.path.exists(marker)


def test_bad_labels_and_missing_file(tmp_path):
    root = write_fake_cifar(str(tmp_path / "c"))
    with open(os.path.join(root, "test_batch"), "wb") as f:
        pickle.dump({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 12]}, f, protocol=2)
    with pytest.raises(DataError, match="test_batch.*12"):
        load_cifar10(root, "test")
    os.remove(os.path.join(root, "data_batch_5"))
    with pytest.raises(MissingFileError, match="data_batch_5"):
        load_cifar10(root, "train")
    with pytest.raises(ValueError, match="split"):
        load_cifar10(root, "validation")
