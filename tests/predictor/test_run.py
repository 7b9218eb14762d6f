"""predict_files with a model that predicts masks: pictures with the masks drawn, and a
predictions.json whose RLE masks tools/evaluate.py scores as mask AP ("segm").

The model is the random demo detector with a mask output added (each box filled, torchvision's
[N, 1, H, W] probabilities in the original image), so the test needs no Mask R-CNN weights."""

import json
import os
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from resnet_det.evaluation import evaluate_results_file
from resnet_det.predictor import Predictor
from resnet_det.predictor.run import predict_files

sys.path.insert(0, os.path.dirname(__file__))
import _demo  # noqa: E402


class BoxMasks(torch.nn.Module):
    """The wrapped detector's outputs plus "masks": 0.9 inside each box, 0.1 outside."""

    def __init__(self, detector):
        super().__init__()
        self.detector = detector

    def forward(self, inputs):
        outputs = self.detector(inputs)
        for inp, out in zip(inputs, outputs):
            h, w = inp["height"], inp["width"]
            masks = torch.full((len(out["boxes"]), 1, h, w), 0.1)
            for k, (x0, y0, x1, y1) in enumerate(out["boxes"].round().long().tolist()):
                masks[k, 0, y0:y1, x0:x1] = 0.9
            out["masks"] = masks
        return outputs


@pytest.fixture(scope="module")
def mask_demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mask_shapes")
    files, json_file = _demo.write_images(str(folder / "images"), masks=True)
    name = _demo.register(str(folder / "images"), json_file)
    weights = _demo.save_random_checkpoint(str(folder / "model_final.pth"))
    yield name, files, weights
    _demo.unregister(name)


def test_masks_drawn_and_written_as_rle_that_evaluate_scores(mask_demo, tmp_path, single_thread):
    name, files, weights = mask_demo
    predictor = Predictor(_demo.demo_cfg(name, weights))
    predictor.model = BoxMasks(predictor.model)
    out = tmp_path / "out"
    summary = predict_files(predictor, files, str(out), dataset=name, batch_size=2)
    assert summary.images == 3 and not summary.skipped
    assert sorted(os.listdir(out)) == sorted(
        [os.path.basename(f) for f in files] + ["predictions.json"]
    )
    entries = json.loads((out / "predictions.json").read_text())
    sizes = {f: list(Image.open(f).size[::-1]) for f in files}  # [height, width]
    assert entries and all(e["segmentation"]["size"] == sizes[e["file_name"]] for e in entries)
    metrics = evaluate_results_file(name, str(out / "predictions.json"))
    assert list(metrics) == ["bbox", "segm"]
    assert 0.0 <= metrics["segm"]["AP50"] <= 100.0

    # The picture of a result with masks differs from the same without them.
    predictor.model = predictor.model.detector
    plain = predict_files(predictor, files[:1], str(tmp_path / "plain"))
    with_masks = np.asarray(Image.open(out / os.path.basename(files[0])).convert("RGB")).astype(int)
    without = np.asarray(Image.open(plain.pictures[0]).convert("RGB")).astype(int)
    assert (
        with_masks.shape == without.shape
        and (np.abs(with_masks - without).sum(-1) > 30).mean() > 0.001
    )
