"""Classification datasets on generated JPEGs: bad images stop or are skipped by name, the
per-sample seed drives the augmentation, EXIF orientation is applied, collation."""

import os

import numpy as np
import pytest
import torch
from PIL import Image

from resnet_det.data.classification import (
    ClassificationTestDataset,
    ClassificationTrainDataset,
    build_classification_transform,
    classification_train_loader,
    collate_classification,
    load_classification_image,
)
from resnet_det.data.io import BadImageError, MissingImageError
from resnet_det.data.skips import SkippedImage
from resnet_det.utils.errors import DataError


def make_files(root, n=6, size=(48, 40)):
    os.makedirs(root, exist_ok=True)
    dicts = []
    for i in range(n):
        path = os.path.join(root, f"{i}.JPEG")
        Image.new("RGB", size, (40 * i, 200 - 30 * i, 30)).save(path, quality=95)
        dicts.append({"file_name": path, "label": i % 3, "image_id": f"c/{i}"})
    return dicts


def _corrupt(dicts, k=1):
    path = dicts[k]["file_name"]
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 3])  # a truncated JPEG
    return path


def test_corrupt_jpeg_stop_names_path_and_id(tmp_path):
    dicts = make_files(str(tmp_path))
    path = _corrupt(dicts)
    t = build_classification_transform(is_train=False, crop_size=32, test_resize=36)
    ds = ClassificationTestDataset(dicts, transform=t, on_bad_image="stop")
    with pytest.raises(BadImageError, match=r"1\.JPEG.*image id c/1") as e:
        ds[1]
    assert isinstance(e.value, DataError) and e.value.path == path
    train = ClassificationTrainDataset(dicts, transform=t, on_bad_image="stop")
    with pytest.raises(BadImageError, match=r"1\.JPEG"):
        train[(1, 0)]


def test_corrupt_jpeg_skip_goes_on_and_counts(tmp_path):
    dicts = make_files(str(tmp_path))
    path = _corrupt(dicts)
    n = len(dicts)
    t = build_classification_transform(
        is_train=True, crop_size=32, scale_range=[36, 48], pca_lighting=0.1
    )
    # One batch of n positions is one epoch: it meets the broken file exactly once.
    loader = classification_train_loader(
        dicts, transform=t, global_batch_size=n, seed=3, on_bad_image="skip"
    )
    batch = next(iter(loader))
    assert [(s.reason, s.file_name) for s in batch["skipped"]] == [("unreadable", path)]
    assert batch["image"].shape == (n - 1, 3, 32, 32) and batch["label"].shape == (n - 1,)


def test_missing_file_is_a_bad_image(tmp_path):
    d = {"file_name": str(tmp_path / "gone.jpg"), "label": 0, "image_id": 5}
    with pytest.raises(MissingImageError, match=r"gone\.jpg.*image id 5"):
        load_classification_image(d)
    t = build_classification_transform(is_train=False, crop_size=8)
    assert ClassificationTestDataset([d], transform=t, on_bad_image="skip")[0] == {
        "skipped": SkippedImage("missing", d["file_name"], 5)
    }


def test_seed_drives_the_augmentation(tmp_path):
    dicts = make_files(str(tmp_path), size=(60, 50))
    t = build_classification_transform(
        is_train=True,
        crop_size=40,
        scale_range=[44, 56],
        flip_prob=0.5,
        pca_lighting=0.1,
        pixel_mean=[120, 110, 100],
        pixel_std=[60, 60, 60],
    )
    ds = ClassificationTrainDataset(dicts, transform=t)
    a, b, again = ds[(2, 11)], ds[(2, 12)], ds[(2, 11)]
    assert a["image"].shape == (3, 40, 40) and a["image"].dtype == torch.float32
    assert a["label"] == dicts[2]["label"] and a["image_id"] == "c/2"
    assert torch.equal(a["image"], again["image"])
    # Solid colour: two seeds differ at least by the PCA colour shift.
    assert not torch.equal(a["image"], b["image"])
    # The sample's draws do not move the process-wide generator.
    torch.manual_seed(0)
    ds[(0, 1)]
    after = torch.rand(1)
    torch.manual_seed(0)
    assert torch.equal(after, torch.rand(1))


def test_exif_orientation_applied(tmp_path):
    arr = np.zeros((20, 40, 3), np.uint8)  # stored 40 wide, 20 high
    arr[:, :20] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    path = tmp_path / "rot.jpg"
    Image.fromarray(arr).save(path, exif=exif, quality=95)
    img = load_classification_image({"file_name": str(path), "label": 0})
    assert img.shape == (3, 40, 20) and img.dtype == torch.uint8
    assert img[0, 5, 10] > 200 and img[0, 35, 10] < 50


def test_in_memory_images_and_collation():
    good = {"image": np.full((4, 5, 3), 7, np.uint8), "label": 1, "image_id": 0}
    img = load_classification_image(good)
    assert img.shape == (3, 4, 5) and int(img[0, 0, 0]) == 7
    with pytest.raises(BadImageError, match="image id 9"):
        load_classification_image({"image": np.zeros((4, 5), np.uint8), "label": 0, "image_id": 9})
    items = [
        {"image": torch.zeros(3, 2, 2), "label": 1, "image_id": "a"},
        {"skipped": "b.jpg"},
        {"image": torch.ones(3, 2, 2), "label": 2, "image_id": "c"},
    ]
    batch = collate_classification(items)
    assert batch["image"].shape == (2, 3, 2, 2) and batch["label"].tolist() == [1, 2]
    assert batch["image_id"] == ["a", "c"] and batch["skipped"] == ["b.jpg"]
    ragged = collate_classification(
        [items[0], {"image": torch.zeros(3, 4, 4), "label": 0, "image_id": "d"}]
    )
    assert isinstance(ragged["image"], list) and len(ragged["image"]) == 2
