"""The one read_image, datasets_root and bad-image error of both tasks."""

import os
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from resnet_det.data.io import (
    BadImageError,
    MissingImageError,
    check_on_bad_image,
    datasets_root,
    read_image,
)
from resnet_det.utils.errors import DataError, MissingFileError, UserError


def _png(tmp_path, name="img.png"):
    arr = np.zeros((3, 4, 3), np.uint8)
    arr[..., 0], arr[..., 1], arr[..., 2] = 200, 100, 10
    path = tmp_path / name
    Image.fromarray(arr).save(path)
    return str(path)


def test_channel_orders(tmp_path):
    path = _png(tmp_path)
    rgb, bgr = read_image(path, "RGB"), read_image(path)
    assert rgb.dtype == torch.uint8 and rgb.shape == (3, 3, 4)
    assert rgb[:, 0, 0].tolist() == [200, 100, 10] and bgr[:, 0, 0].tolist() == [10, 100, 200]
    with pytest.raises(ValueError, match="YUV"):
        read_image(path, "YUV")


def test_grey_images_become_three_channels(tmp_path):
    path = tmp_path / "grey.png"
    Image.fromarray(np.full((5, 6), 77, np.uint8), mode="L").save(path)
    img = read_image(str(path), "RGB")
    assert img.shape == (3, 5, 6) and (img == 77).all()


def test_exif_orientation_applied(tmp_path):
    arr = np.zeros((20, 40, 3), np.uint8)  # stored 40 wide, 20 high
    arr[:, :20] = 255
    exif = Image.Exif()
    exif[0x0112] = 8  # rotate 90 degrees counter-clockwise for display
    path = tmp_path / "rot.jpg"
    Image.fromarray(arr).save(path, exif=exif, quality=95)
    img = read_image(str(path), "RGB")
    assert img.shape == (3, 40, 20)
    # Counter-clockwise: the stored left half (white) becomes the displayed bottom half.
    assert img[0, 35, 10] > 200 and img[0, 5, 10] < 50


@pytest.mark.parametrize("content", [b"", b"\xff\xd8 not really a jpeg", "truncated"])
def test_unreadable_files_raise_one_error_naming_file_and_id(tmp_path, content):
    path = tmp_path / "bad.jpg"
    if content == "truncated":
        Image.new("RGB", (64, 48), (9, 99, 199)).save(path, quality=95)
        content = path.read_bytes()[:300]
    path.write_bytes(content)
    with pytest.raises(BadImageError, match=r"bad\.jpg \(image id 42\)") as e:
        read_image(str(path), image_id=42)
    assert isinstance(e.value, DataError) and isinstance(e.value, UserError)
    assert (e.value.path, e.value.image_id) == (str(path), 42)
    assert "DATALOADER.ON_BAD_IMAGE" in str(e.value)  # the fix


def test_missing_file(tmp_path):
    path = str(tmp_path / "nope.jpg")
    with pytest.raises(MissingImageError, match=r"nope\.jpg.*does not exist") as e:
        read_image(path)
    assert isinstance(e.value, BadImageError) and isinstance(e.value, MissingFileError)
    assert isinstance(e.value, FileNotFoundError) and "image id" not in str(e.value)


def test_error_survives_pickling_and_the_worker_reraise():
    err = BadImageError.at("x.jpg", "truncated", image_id="a/1")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is BadImageError and str(back) == str(err) and back.path == "x.jpg"
    # torch's DataLoader rebuilds a worker's exception as type(message).
    assert str(MissingImageError("worker said so")) == "worker said so"


def test_datasets_root(monkeypatch):
    monkeypatch.delenv("RESNET_DET_DATASETS", raising=False)
    assert datasets_root() == "./datasets"
    monkeypatch.setenv("RESNET_DET_DATASETS", "~/somewhere")
    assert datasets_root() == os.path.join(os.path.expanduser("~"), "somewhere")


def test_check_on_bad_image():
    assert check_on_bad_image("skip") == "skip"
    with pytest.raises(ValueError, match="DATALOADER.ON_BAD_IMAGE.*'ignore'"):
        check_on_bad_image("ignore", "DATALOADER.ON_BAD_IMAGE")
