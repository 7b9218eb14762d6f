"""ImageNet folder reader on a generated tree of JPEGs: label order, class lists, missing and
unreadable folders, the registered names."""

import os
import shutil

import pytest
from PIL import Image

from resnet_det.data import DatasetCatalog, get_classification_dicts
from resnet_det.data.datasets.imagenet import load_image_folder
from resnet_det.data.io import BadImageError
from resnet_det.utils.errors import DataError, MissingFileError

# Deliberately not created in sorted order: labels must follow the sorted wnids.
WNIDS = ["n03000134", "n01440764", "n02102040"]


def make_tree(root, per_class=3, size=(48, 40)):
    for k, wnid in enumerate(WNIDS):
        os.makedirs(os.path.join(root, wnid))
        for i in range(per_class):
            colour = (40 * k + 10 * i, 200 - 50 * k, 30 * i)
            Image.new("RGB", size, colour).save(
                os.path.join(root, wnid, f"{wnid}_{i}.JPEG"), quality=95
            )
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
    dicts = load_image_folder(
        root, class_names=["n03000134", "n02102040", "n01440764", "n09999999"]
    )
    assert {d["label"] for d in dicts if "n03000134" in d["file_name"]} == {0}
    with pytest.raises(DataError, match="n02102040"):
        load_image_folder(root, class_names=["n03000134", "n01440764"])


def test_missing_folder_named(tmp_path):
    with pytest.raises(MissingFileError, match="nowhere"):
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


def test_registered_val_uses_train_class_list(tmp_path, monkeypatch):
    make_tree(str(tmp_path / "imagenet" / "train"))
    val = str(tmp_path / "imagenet" / "val")
    make_tree(val)
    shutil.rmtree(os.path.join(val, "n01440764"))  # a val copy missing the first class
    monkeypatch.setenv("RESNET_DET_DATASETS", str(tmp_path))
    dicts = get_classification_dicts(["imagenet_val"])
    labels = {os.path.basename(os.path.dirname(d["file_name"])): d["label"] for d in dicts}
    assert labels == {"n02102040": 1, "n03000134": 2}  # indices of train's sorted wnids
    assert len(get_classification_dicts(["imagenet_train"])) == 9


def test_registered_names_pass_on_bad_image_to_the_folder_scan(tmp_path, monkeypatch):
    root = make_tree(str(tmp_path / "imagenet" / "train"))
    bad = os.path.join(root, "n02102040")
    real_listdir = os.listdir

    def listdir(path):
        if os.path.abspath(path) == os.path.abspath(bad):
            raise PermissionError(13, "Permission denied", path)
        return real_listdir(path)

    monkeypatch.setattr(os, "listdir", listdir)
    monkeypatch.setenv("RESNET_DET_DATASETS", str(tmp_path))
    with pytest.raises(BadImageError, match="folder .*n02102040"):
        DatasetCatalog.get("imagenet_train")
    assert len(get_classification_dicts(["imagenet_train"], on_bad_image="skip")) == 6
