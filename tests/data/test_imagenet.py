"""ImageNet folder reader on a generated tree of JPEGs: label order, bad files and folders."""
import os

import numpy as np
import pytest
import torch
from PIL import Image

from resnet_det.data.classification import (
    BadImageError,
    ClassificationTestDataset,
    ClassificationTrainDataset,
    build_classification_transform,
    classification_train_loader,
)
from resnet_det.data.imagenet import load_image_folder

# Deliberately not created in sorted order: labels must follow the sorted wnids.
WNIDS = ["n03000134", "n01440764", "n02102040"]


def make_tree(root, per_class=3, size=(48, 40)):
    for k, wnid in enumerate(WNIDS):
        os.makedirs(os.path.join(root, wnid))
        for i in range(per_class):
            colour = (40 * k + 10 * i, 200 - 50 * k, 30 * i)
            Image.new("RGB", size, colour).save(os.path.join(root, wnid, f"{wnid}_{i}.JPEG"), quality=95)
    with open(os.path.join(root, WNIDS[0], "notes.txt"), "w") as f:
        f.write("not an image")
    return root


def test_labels_follow_sorted_wnids(tmp_path):
    root = make_tree(str(tmp_path / "train"))
    dicts = load_image_folder(root)
    assert len(dicts) == 3 * len(WNIDS)  # the .txt file is not an image
    expected = {w: i for i, w in enumerate(sorted(WNIDS))}
    for d in dicts:
        wnid = os.path.basename(os.path.dirname(d["file_name"]))
        assert d["label"] == expected[wnid]
        assert d["image_id"].startswith(wnid + "/")
    assert expected["n01440764"] == 0


def test_given_class_list_and_unknown_folder(tmp_path):
    root = make_tree(str(tmp_path / "val"))
    dicts = load_image_folder(root, class_names=["n03000134", "n02102040", "n01440764", "n09999999"])
    assert {d["label"] for d in dicts if "n03000134" in d["file_name"]} == {0}
    with pytest.raises(ValueError, match="n02102040"):
        load_image_folder(root, class_names=["n03000134", "n01440764"])


def test_missing_folder_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_image_folder(str(tmp_path / "nowhere"))


def test_unreadable_class_folder(tmp_path, monkeypatch):
    root = make_tree(str(tmp_path / "train"))
    bad = os.path.join(root, "n02102040")
    real_listdir = os.listdir

    def listdir(path):
        if os.path.abspath(path) == os.path.abspath(bad):
            raise PermissionError(13, "Permission denied", path)
        return real_listdir(path)

    # Root can read any folder, so the permission error is simulated.
    monkeypatch.setattr(os, "listdir", listdir)
    with pytest.raises(BadImageError, match="n02102040"):
        load_image_folder(root, on_bad_image="stop")
    dicts = load_image_folder(root, on_bad_image="skip")
    assert len(dicts) == 6 and not any("n02102040" in d["file_name"] for d in dicts)


def _corrupt(root):
    path = os.path.join(root, WNIDS[1], "broken.JPEG")
    with open(os.path.join(root, WNIDS[1], f"{WNIDS[1]}_0.JPEG"), "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 3])  # a truncated JPEG
    return path


def test_corrupt_jpeg_stop_names_path(tmp_path):
    root = make_tree(str(tmp_path / "train"))
    path = _corrupt(root)
    dicts = load_image_folder(root)
    t = build_classification_transform(is_train=False, crop_size=32, test_resize=36)
    ds = ClassificationTestDataset(dicts, transform=t, on_bad_image="stop")
    idx = next(i for i, d in enumerate(dicts) if d["file_name"] == path)
    with pytest.raises(BadImageError, match="broken.JPEG"):
        ds[idx]


def test_corrupt_jpeg_skip_goes_on_and_counts(tmp_path):
    root = make_tree(str(tmp_path / "train"))
    path = _corrupt(root)
    dicts = load_image_folder(root)
    n = len(dicts)
    t = build_classification_transform(is_train=True, crop_size=32, scale_range=[36, 48], pca_lighting=0.1)
    # One pass over an epoch (n positions) meets the broken file exactly once.
    loader = classification_train_loader(dicts, transform=t, global_batch_size=n, seed=3, on_bad_image="skip")
    batch = next(iter(loader))
    assert batch["skipped"] == [path]
    assert batch["image"].shape == (n - 1, 3, 32, 32)
    assert batch["label"].shape == (n - 1,)
    stop = ClassificationTrainDataset(dicts, transform=t, seed=3, on_bad_image="stop")
    with pytest.raises(BadImageError, match="broken.JPEG"):
        for p in range(n):
            stop[p]


def test_train_views_shapes_and_flip(tmp_path):
    root = make_tree(str(tmp_path / "train"), size=(60, 50))
    dicts = load_image_folder(root)
    t = build_classification_transform(
        is_train=True, crop_size=40, scale_range=[44, 56], flip_prob=0.5, pca_lighting=0.1,
        pixel_mean=[120, 110, 100], pixel_std=[60, 60, 60],
    )
    ds = ClassificationTrainDataset(dicts, transform=t, seed=0)
    xs = [ds[p]["image"] for p in range(len(dicts))]
    assert all(x.shape == (3, 40, 40) and x.dtype == torch.float32 for x in xs)
    # Solid-colour images: after normalisation each channel is constant up to the PCA shift,
    # and a PCA shift moves all channels, so two epochs of the same image differ.
    a, b = ds[0]["image"], ds[len(dicts)]["image"]
    assert ds.index_at(0) != ds.index_at(len(dicts)) or not torch.equal(a, b)


def test_registered_val_uses_train_class_list(tmp_path, monkeypatch):
    from resnet_det.data.classification import get_classification_dicts
    from resnet_det.data.imagenet import register_imagenet

    make_tree(str(tmp_path / "imagenet" / "train"))
    val = str(tmp_path / "imagenet" / "val")
    make_tree(val)
    import shutil

    shutil.rmtree(os.path.join(val, "n01440764"))  # a val copy missing the first class
    monkeypatch.setenv("RESNET_DET_DATASETS", str(tmp_path))
    register_imagenet()
    dicts = get_classification_dicts(["imagenet_val"])
    labels = {os.path.basename(os.path.dirname(d["file_name"])): d["label"] for d in dicts}
    assert labels == {"n02102040": 1, "n03000134": 2}  # indices of train's sorted wnids
    assert len(get_classification_dicts(["imagenet_train"])) == 9
