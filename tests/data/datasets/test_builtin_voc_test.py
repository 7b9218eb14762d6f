"""voc_2012_test: the VOC 2012 test images (ImageSets/Main/test.txt, no annotations) read by
load_voc_images, with sizes from the JPEG headers (EXIF orientation applied) and the
bad-input policy."""

import os

import pytest
from PIL import Image

from resnet_det.data import DatasetCatalog, read_image
from resnet_det.data.datasets.voc import load_voc_images
from resnet_det.data.skips import SkipCounts
from resnet_det.utils.errors import DataError, MissingFileError


def _voc_test_layout(root, sizes, orientation=None):
    os.makedirs(os.path.join(root, "JPEGImages"))
    os.makedirs(os.path.join(root, "ImageSets", "Main"))
    for image_id, (w, h) in sizes.items():
        img = Image.new("RGB", (w, h), (10, 200, 30))
        exif = Image.Exif()
        if orientation and image_id in orientation:
            exif[0x0112] = orientation[image_id]
        img.save(os.path.join(root, "JPEGImages", image_id + ".jpg"), exif=exif)
    with open(os.path.join(root, "ImageSets", "Main", "test.txt"), "w") as f:
        f.write("".join(f"{i}\n" for i in sizes))


def test_voc_2012_test_reads_images_without_annotations(monkeypatch, tmp_path):
    monkeypatch.setenv("RESNET_DET_DATASETS", str(tmp_path))
    # 2008_000001 is stored 40 x 30 with EXIF orientation 6 (rotate 90): displayed 30 x 40.
    _voc_test_layout(
        str(tmp_path / "VOC2012"),
        {"2008_000001": (40, 30), "2008_000002": (50, 20)},
        orientation={"2008_000001": 6},
    )
    dicts = DatasetCatalog.get("voc_2012_test")
    assert [d["image_id"] for d in dicts] == ["2008_000001", "2008_000002"]
    assert all("annotations" not in d for d in dicts)
    assert [(d["width"], d["height"]) for d in dicts] == [(30, 40), (50, 20)]
    # The sizes are those read_image decodes (the mapper checks them against each other).
    for d in dicts:
        assert tuple(read_image(d["file_name"]).shape[1:]) == (d["height"], d["width"])
    assert dicts[0]["file_name"] == str(tmp_path / "VOC2012" / "JPEGImages" / "2008_000001.jpg")


def test_missing_split_file_names_it(tmp_path):
    with pytest.raises(MissingFileError, match="test.txt"):
        load_voc_images(str(tmp_path), "test")


def test_bad_images_stop_or_are_skipped_and_counted(tmp_path):
    root = str(tmp_path)
    _voc_test_layout(root, {"a": (20, 20), "b": (20, 20)})
    with open(os.path.join(root, "JPEGImages", "b.jpg"), "wb") as f:
        f.write(b"not a jpeg")
    with open(os.path.join(root, "ImageSets", "Main", "test.txt"), "a") as f:
        f.write("c\na\n")  # c has no image; a is listed twice
    with pytest.raises(DataError, match=r"b\.jpg \(image id b\) cannot be read"):
        load_voc_images(root, "test")
    counts = SkipCounts()
    dicts = load_voc_images(root, "test", on_bad_image="skip", skip_counts=counts)
    assert [d["image_id"] for d in dicts] == ["a"]
    assert dict(counts.images) == {"unreadable": 1, "missing": 1, "duplicate id": 1}
    with open(os.path.join(root, "ImageSets", "Main", "test.txt"), "w") as f:
        f.write("c\n")
    with pytest.raises(MissingFileError, match=r"c\.jpg"):
        load_voc_images(root, "test")
    with pytest.raises(DataError, match="no image"):
        load_voc_images(root, "test", on_bad_image="skip")
