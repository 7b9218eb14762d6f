"""resnet_det.Predictor: the evaluation's detections for one's own images, in every input type."""

import logging

import numpy as np
import pytest
import torch
from PIL import Image

import resnet_det
from resnet_det.data.detection.build import build_detection_test_loader
from resnet_det.predictor import Predictor
from resnet_det.utils.errors import MissingFileError, UsageError, WeightsError


def _same(a, b, atol=0.0):
    assert a["boxes"].shape == b["boxes"].shape and a["boxes"].shape[0] > 0
    torch.testing.assert_close(a["boxes"], b["boxes"], rtol=0, atol=atol)
    torch.testing.assert_close(a["scores"], b["scores"], rtol=0, atol=atol)
    assert torch.equal(a["labels"], b["labels"])


def test_predictor_gives_the_evaluators_detections(demo, single_thread):
    name, files, _, make_cfg = demo
    cfg = make_cfg()
    predictor = resnet_det.Predictor(cfg)
    assert predictor.class_names == ["circle", "square", "triangle"]
    # What inference_on_dataset feeds the model: the test loader's batches.
    expected = {}
    with torch.no_grad():
        for batch in build_detection_test_loader(cfg, name):
            for inp, out in zip(batch, predictor.model(batch)):
                expected[inp["file_name"]] = out
    assert len(expected) == len(files)
    for f in files:
        got = predictor(f)
        _same(got, expected[f])
        h, w = Image.open(f).size[::-1]
        assert got["image_size"] == (h, w)
        assert got["boxes"][:, 2].max() <= w and got["boxes"][:, 3].max() <= h
        assert got["class_names"] == [predictor.class_names[i] for i in got["labels"]]


def test_every_input_type_gives_the_same_detections(demo, single_thread):
    _, files, _, make_cfg = demo
    predictor = Predictor(make_cfg())  # INPUT.FORMAT BGR
    assert predictor.input_format == "BGR"
    path = files[0]
    rgb = np.asarray(Image.open(path).convert("RGB"))
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    reference = predictor(path)
    _same(predictor(Image.open(path)), reference)
    _same(predictor(bgr), reference)
    _same(predictor(torch.from_numpy(bgr).permute(2, 0, 1)), reference)
    _same(predictor(torch.from_numpy(bgr).permute(2, 0, 1).float()), reference)
    # An RGB array given to a BGR model is another image: not the same detections.
    assert not torch.equal(predictor(np.ascontiguousarray(rgb))["scores"], reference["scores"])
    # A list is one batch: one result per image (padding may move detections a little).
    batch = predictor([path, files[1]])
    assert isinstance(batch, list) and len(batch) == 2
    _same(batch[0], reference, atol=1e-3)


def test_grey_and_alpha_images_are_converted(demo, caplog, single_thread):
    caplog.set_level(logging.INFO, logger="resnet_det.predictor")
    _, files, _, make_cfg = demo
    predictor = Predictor(make_cfg())
    bgr = np.ascontiguousarray(np.asarray(Image.open(files[0]).convert("RGB"))[:, :, ::-1])
    with_alpha = np.dstack([bgr, np.full(bgr.shape[:2], 255, np.uint8)])
    _same(predictor(with_alpha), predictor(bgr))
    grey = bgr[:, :, 1]
    _same(predictor(grey), predictor(np.repeat(grey[:, :, None], 3, axis=2)))
    assert "alpha dropped" in caplog.text and "grey repeated" in caplog.text
    with pytest.raises(ValueError, match="uint8"):
        predictor(bgr.astype(np.float32))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        predictor(torch.rand(3, 50, 60))
    with pytest.raises(TypeError, match="expected a file path"):
        predictor(3)


def test_weights_are_found_or_the_error_says_how_to_make_them(demo, tmp_path, single_thread):
    name, _, weights, make_cfg = demo
    cfg = make_cfg("MODEL.WEIGHTS", "", "OUTPUT_DIR", str(tmp_path))
    with pytest.raises(MissingFileError, match="model_final.pth.*train_net.py"):
        Predictor(cfg)
    # OUTPUT_DIR/model_final.pth is the default when MODEL.WEIGHTS is empty.
    (tmp_path / "model_final.pth").write_bytes(open(weights, "rb").read())
    assert Predictor(cfg).weights == str(tmp_path / "model_final.pth")
    # ImageNet weights are a training initialisation, not a detector.
    backbone_only = {
        k[len("backbone.bottom_up.") :]: v
        for k, v in torch.load(weights)["model"].items()
        if k.startswith("backbone.bottom_up.")
    }
    torch.save({"model": backbone_only}, tmp_path / "imagenet.pth")
    with pytest.raises(WeightsError, match="ImageNet weights for the backbone only"):
        Predictor(cfg, weights=str(tmp_path / "imagenet.pth"))


def test_speed_options_keep_the_detections(demo, single_thread):
    _, files, _, make_cfg = demo
    reference = Predictor(make_cfg())(files[0])
    _same(Predictor(make_cfg(), fuse=True, channels_last=True)(files[0]), reference, atol=1e-4)
    # The backbone compiled (the "eager" backend checks the wiring without a C++ compiler).
    _same(Predictor(make_cfg(), compile="eager")(files[0]), reference)
    bf16 = Predictor(make_cfg(), precision="bf16")(files[0])
    assert bf16["boxes"].dtype == torch.float32 and bf16["boxes"].shape[0] > 0
    with pytest.raises(UsageError, match="fp16.*GPU"):
        Predictor(make_cfg(), precision="fp16", device="cpu")
    with pytest.raises(UsageError, match="precision"):
        Predictor(make_cfg(), precision="int8")
