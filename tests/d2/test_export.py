"""detectron2's export tools on our backbones: scripting_with_instances (where detectron2's own
equivalent model scripts: FPN with StandardROIHeads, with and without masks, and C4 Mask R-CNN;
not the C4 Res5ROIHeads without masks, whose inference refers to a mask_head it lacks, so
detectron2's own R50-C4 Faster R-CNN does not script either), TracingAdapter and
DefaultPredictor."""

import os

import pytest

pytest.importorskip("detectron2")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from detectron2.engine import DefaultPredictor  # noqa: E402
from detectron2.export import TracingAdapter, scripting_with_instances  # noqa: E402
from detectron2.modeling import build_model  # noqa: E402
from detectron2.structures import Boxes  # noqa: E402

import resnet_det.d2  # noqa: F401,E402
from resnet_det.d2.train import setup_cfg  # noqa: E402

from .conftest import randomize_norms  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
SMALL = [
    "MODEL.DEVICE",
    "cpu",
    "MODEL.WEIGHTS",
    "",
    "INPUT.MIN_SIZE_TEST",
    "96",
    "INPUT.MAX_SIZE_TEST",
    "128",
    "MODEL.RPN.PRE_NMS_TOPK_TEST",
    "300",
    "MODEL.RPN.POST_NMS_TOPK_TEST",
    "50",
    "MODEL.ROI_HEADS.SCORE_THRESH_TEST",
    "0.0",
    "TEST.DETECTIONS_PER_IMAGE",
    "20",
]
FIELDS = {
    "proposal_boxes": Boxes,
    "objectness_logits": torch.Tensor,
    "pred_boxes": Boxes,
    "scores": torch.Tensor,
    "pred_classes": torch.Tensor,
}


MASK = ["MODEL.MASK_ON", "True", "MODEL.ROI_MASK_HEAD.NUM_CONV", "4"]  # detectron2's FPN mask head


def _model(config, extra=()):
    cfg = setup_cfg(os.path.join(ROOT, config), SMALL + list(extra))
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    randomize_norms(model)
    return cfg, model


def _image(h=96, w=128):
    g = torch.Generator().manual_seed(0)
    img = torch.randint(0, 80, (3, h, w), generator=g).float()
    img[:, 10:50, 20:70] = 220.0
    return img


@pytest.mark.parametrize(
    "config, extra",
    [
        ("configs/modern/faster_rcnn_R50_FPN_1x.yaml", []),
        (
            "configs/modern/faster_rcnn_R50_FPN_1x.yaml",
            MASK,
        ),  # Mask R-CNN, as detectron2's own scripts
        # C4 Mask R-CNN (our res5 shared by box and mask heads), as detectron2's mask_rcnn_R_50_C4
        ("configs/faster_rcnn_R101.yaml", ["MODEL.MASK_ON", "True"]),
        ("configs/faster_rcnn_VGG16.yaml", []),
    ],
    ids=["R50-FPN", "R50-FPN-mask", "R101-C4-mask", "VGG16"],
)
def test_scripting_with_instances_matches_eager(config, extra, single_thread):
    _, model = _model(config, extra)
    fields = dict(FIELDS, pred_masks=torch.Tensor) if extra else FIELDS
    scripted = scripting_with_instances(model, fields)
    inputs = [{"image": _image()}]
    with torch.no_grad():
        expected = model.inference(inputs, do_postprocess=False)[0]
        got = scripted.inference(inputs, do_postprocess=False)[0]
    assert len(expected) > 0
    torch.testing.assert_close(got.pred_boxes.tensor, expected.pred_boxes.tensor, rtol=0, atol=1e-4)
    torch.testing.assert_close(got.scores, expected.scores, rtol=0, atol=1e-5)
    assert torch.equal(got.pred_classes, expected.pred_classes)
    if extra:
        side = 28 if "FPN" in config else 14  # C4: res5's 7x7, deconv
        assert got.pred_masks.shape == expected.pred_masks.shape == (len(expected), 1, side, side)
        torch.testing.assert_close(got.pred_masks, expected.pred_masks, rtol=0, atol=1e-4)


def test_tracing_adapter_and_default_predictor_still_work(single_thread):
    cfg, model = _model("configs/modern/faster_rcnn_R50_FPN_1x.yaml")

    def inference(model, image):
        return model.inference([{"image": image}], do_postprocess=False)[0]

    adapter = TracingAdapter(model, (_image(),), inference)
    with torch.no_grad():
        traced = torch.jit.trace(adapter, adapter.flattened_inputs, check_trace=False)
        expected = adapter(*adapter.flattened_inputs)
        got = traced(*adapter.flattened_inputs)
    assert len(expected) == len(got) and expected[0].shape[0] > 0
    for e, g in zip(expected, got):
        torch.testing.assert_close(g, e, rtol=0, atol=1e-4)
    predictor = DefaultPredictor(cfg)
    out = predictor(np.random.RandomState(0).randint(0, 255, (120, 160, 3)).astype(np.uint8))
    assert "instances" in out and out["instances"].image_size == (120, 160)
