"""to_image_tensor: files and PIL images of every mode become the picture the datasets' reader
gives (tools/predict.py reads its --input files through it)."""

import logging

import numpy as np
import pytest
import torch
from PIL import Image

from resnet_det.data.io import BadImageError, read_image
from resnet_det.predictor.inputs import to_image_tensor


def _grey16():
    rng = np.random.default_rng(0)
    return (
        (np.linspace(0, 65535, 40 * 30).reshape(30, 40) + rng.integers(0, 9, (30, 40)))
        .clip(0, 65535)
        .astype(np.uint16)
    )


def test_a_16bit_png_is_scaled_for_prediction_not_white(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="resnet_det.predictor")
    path = tmp_path / "scan.png"
    grey = _grey16()
    Image.fromarray(grey).save(path)
    img = to_image_tensor(str(path), "BGR")
    expected = torch.from_numpy(np.round(grey / 257.0).astype(np.uint8)).expand(3, -1, -1)
    assert torch.equal(img, expected) and torch.equal(img, read_image(str(path)))
    assert "scan.png has mode I;16: 16-bit grey scaled to 8 bits" in caplog.text
    # The same picture given as a PIL image.
    with Image.open(path) as pil:
        assert torch.equal(to_image_tensor(pil, "RGB"), expected)


def test_modes_of_files_and_pil_images_agree(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="resnet_det.predictor")
    rng = np.random.default_rng(1)
    rgba = Image.fromarray(rng.integers(0, 256, (12, 16, 4), dtype=np.uint8))
    for name, img in [("p.png", rgba.convert("RGB").quantize(16)), ("a.png", rgba)]:
        path = tmp_path / name
        img.save(path)
        from_file = to_image_tensor(str(path), "RGB")
        assert torch.equal(from_file, to_image_tensor(img, "RGB"))
        assert torch.equal(
            from_file.permute(1, 2, 0), torch.from_numpy(np.array(img.convert("RGB")))
        )
    assert "a.png has mode RGBA: converted to 3-channel RGB (alpha dropped)" in caplog.text


def test_deep_pixels_are_refused_naming_the_input(tmp_path):
    path = tmp_path / "depth.tif"
    Image.fromarray(np.ones((4, 5), np.float32), mode="F").save(path)
    with pytest.raises(BadImageError, match=r"depth\.tif.*mode F") as e:
        to_image_tensor(str(path), "BGR")
    assert "DATALOADER.ON_BAD_IMAGE" not in str(e.value)  # a dataset's advice, not a user's
    with Image.open(path) as pil, pytest.raises(ValueError, match=r"input 2 \(.*mode F"):
        to_image_tensor(pil, "BGR", index=2)
