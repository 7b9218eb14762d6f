"""Whole-detector checkpoints of torchvision (fasterrcnn / maskrcnn_resnet50_fpn, built at random
here) and detectron2 (names written below from detectron2's modules, independently of the
package's mapping) load into our detectors with nothing missing and nothing unexpected."""

import os
import pickle

import pytest
import torch
from torchvision.models.detection import fasterrcnn_resnet50_fpn, maskrcnn_resnet50_fpn

from resnet_det.checkpoint import WeightsMismatchError, load_pretrained_weights
from resnet_det.checkpoint.layouts import detect_detector_layout
from resnet_det.config import get_cfg
from resnet_det.modeling.build import build_model

from ..modeling.detection._tiny import C4, FPN, tiny_cfg

pytestmark = pytest.mark.usefixtures("single_thread")

CONFIGS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "configs")
MASK = ["MODEL.MASK_ON", "True", "MODEL.ROI_MASK_HEAD.CONV_DIM", "32"]


def _ours(config, *extra):
    cfg = get_cfg()
    cfg.merge_from_file(os.path.join(CONFIGS, config))
    cfg.merge_from_list(["MODEL.WEIGHTS", "", "MODEL.ROI_HEADS.NUM_CLASSES", "90", *extra])
    return build_model(cfg)


@pytest.mark.parametrize(
    "theirs,config",
    [
        (maskrcnn_resnet50_fpn, "mask_rcnn_R50_FPN.yaml"),
        (fasterrcnn_resnet50_fpn, "modern/faster_rcnn_R50_FPN_1x.yaml"),
    ],
    ids=["maskrcnn", "fasterrcnn"],
)
def test_torchvision_detector_loads_whole(theirs, config):
    torch.manual_seed(0)
    sd = theirs(weights=None, weights_backbone=None).state_dict()
    assert detect_detector_layout(sd) == "torchvision"
    model = _ours(config, "MODEL.RESNETS.STRIDE_IN_1X1", "False")
    load_pretrained_weights(model, sd)  # raises on anything missing or unexpected
    ours = model.state_dict()
    pairs = {
        "backbone.body.conv1.weight": "backbone.bottom_up.stem.conv1.weight",
        "backbone.body.layer1.0.bn1.running_var": (
            "backbone.bottom_up.res2.0.conv1.norm.running_var"
        ),
        "backbone.body.layer4.0.downsample.0.weight": "backbone.bottom_up.res5.0.shortcut.weight",
        "backbone.fpn.inner_blocks.3.0.weight": "backbone.fpn.inner_blocks.3.0.weight",
        "rpn.head.bbox_pred.weight": "rpn.head.bbox_pred.weight",
        "roi_heads.box_head.fc6.weight": "roi_heads.box_head.fcs.0.weight",
        "roi_heads.box_head.fc7.bias": "roi_heads.box_head.fcs.1.bias",
        "roi_heads.box_predictor.cls_score.weight": "roi_heads.box_predictor.cls_score.weight",
    }
    if "mask" in config:
        pairs.update(
            {
                k: k
                for k in (
                    "roi_heads.mask_head.3.0.weight",
                    "roi_heads.mask_predictor.conv5_mask.weight",
                    "roi_heads.mask_predictor.mask_fcn_logits.bias",
                )
            }
        )
    for theirs_key, ours_key in pairs.items():
        assert torch.equal(ours[ours_key], sd[theirs_key]), ours_key
    # Every value came from the file: the number of tensors match (BN's num_batches_tracked aside).
    assert len(ours) == len([k for k in sd if not k.endswith("num_batches_tracked")])


def test_torchvision_mask_rcnn_does_not_fit_a_faster_rcnn():
    sd = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None).state_dict()
    model = _ours("modern/faster_rcnn_R50_FPN_1x.yaml")
    with pytest.raises(WeightsMismatchError, match=r"torchvision layout.*unexpected.*mask"):
        load_pretrained_weights(model, sd)


# ------------------------------------------------------------------ detectron2's names
def to_detectron2(ours, num_sizes, num_ratios):
    """Our detector's state dict -> detectron2's GeneralizedRCNN names and layouts (written from
    detectron2's FPN, StandardRPNHead, Res5ROIHeads, FastRCNNConvFCHead, FastRCNNOutputLayers
    and MaskRCNNConvUpsampleHead)."""
    out = {}
    # detectron2 orders a location's anchors by size, then ratio; torchvision by ratio, then size.
    d2_to_ours = [r * num_sizes + s for s in range(num_sizes) for r in range(num_ratios)]
    for key, v in ours.items():
        parts = key.split(".")
        if key.startswith("backbone.fpn."):
            kind = "lateral" if parts[2] == "inner_blocks" else "output"
            # in_features res2..res5 -> levels 2..5; <i>.1 would be the norm.
            new = (
                f"backbone.fpn_{kind}{int(parts[3]) + 2}."
                + ("norm." if parts[4] == "1" else "")
                + parts[-1]
            )
        elif key.startswith("rpn.head.conv.0.0."):
            new = "proposal_generator.rpn_head.conv." + parts[-1]
        elif key.startswith("rpn.head.cls_logits."):
            new, v = "proposal_generator.rpn_head.objectness_logits." + parts[-1], v[d2_to_ours]
        elif key.startswith("rpn.head.bbox_pred."):
            new = "proposal_generator.rpn_head.anchor_deltas." + parts[-1]
            v = v.reshape(-1, 4, *v.shape[1:])[d2_to_ours].reshape(v.shape)
        elif key.startswith("roi_heads.box_head.res5."):
            new = "roi_heads." + key[len("roi_heads.box_head.") :]
        elif key.startswith("roi_heads.box_head.fcs."):
            new = f"roi_heads.box_head.fc{int(parts[3]) + 1}.{parts[-1]}"
        elif key.startswith("roi_heads.box_predictor.cls_score."):
            new, v = key, torch.cat([v[1:], v[:1]])  # background last
        elif key.startswith("roi_heads.box_predictor.bbox_pred."):
            new, v = key, v[4:]  # no background deltas
        elif key.startswith("roi_heads.mask_head."):
            new = f"roi_heads.mask_head.mask_fcn{int(parts[2]) + 1}.{parts[-1]}"
        elif key.startswith("roi_heads.mask_predictor.conv5_mask."):
            new = "roi_heads.mask_head.deconv." + parts[-1]
        elif key.startswith("roi_heads.mask_predictor.mask_fcn_logits."):
            new, v = "roi_heads.mask_head.predictor." + parts[-1], v[1:]  # no background mask
        else:
            new = key  # backbone.bottom_up.* (FPN), backbone.* (C4): our names are detectron2's
        out[new] = v.numpy()
    out["pixel_mean"] = torch.zeros(3, 1, 1).numpy()  # older detectron2 files keep these
    return out


def _random_state(model, seed):
    """Random values everywhere, background rows zero (detectron2 has none to give)."""
    g = torch.Generator().manual_seed(seed)
    sd = model.state_dict()
    with torch.no_grad():
        for t in sd.values():
            t.copy_(torch.rand(t.shape, generator=g) + 0.5)
        for key in (
            "roi_heads.box_predictor.bbox_pred.weight",
            "roi_heads.box_predictor.bbox_pred.bias",
        ):
            sd[key][:4] = 0
        for key in (
            "roi_heads.mask_predictor.mask_fcn_logits.weight",
            "roi_heads.mask_predictor.mask_fcn_logits.bias",
        ):
            if key in sd:
                sd[key][:1] = 0
    return model.state_dict()


@pytest.mark.parametrize(
    "base",
    [
        FPN + MASK + ["MODEL.ROI_MASK_HEAD.NUM_CONV", "4"],
        C4 + MASK,  # 3 anchor sizes x 3 ratios: detectron2's anchor order differs
        FPN,
    ],
    ids=["mask-FPN", "mask-C4", "faster-FPN"],
)
def test_detectron2_detector_loads_whole(base, tmp_path):
    torch.manual_seed(0)
    source = build_model(tiny_cfg(base))
    expected = _random_state(source, 1)
    sizes = source.rpn.anchor_generator.sizes[0]
    ratios = source.rpn.anchor_generator.aspect_ratios[0]
    d2 = to_detectron2(expected, len(sizes), len(ratios))
    assert detect_detector_layout(d2) == "detectron2"
    if "roi_heads.box_head.res5.0.conv1.weight" in expected:
        assert "roi_heads.res5.0.conv1.weight" in d2 and not any(
            k.startswith("roi_heads.mask_head.res5") for k in d2
        )
        assert {"roi_heads.mask_head.deconv.weight", "roi_heads.mask_head.predictor.weight"} <= set(
            d2
        )
    path = tmp_path / "model_final.pkl"
    with open(path, "wb") as f:
        pickle.dump({"model": d2, "__author__": "Detectron2 Model Zoo"}, f)
    torch.manual_seed(2)
    target = build_model(tiny_cfg(base))
    load_pretrained_weights(target, str(path))  # strict: nothing missing, nothing unexpected
    got = target.state_dict()
    assert set(got) == set(expected)
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=0, atol=0, msg=key)
    if "roi_heads.mask_head.res5" in dict(target.named_modules(remove_duplicate=False)):
        assert target.roi_heads.mask_head.res5 is target.roi_heads.box_head.res5


def test_detectron2_class_agnostic_mask_and_box_regression():
    torch.manual_seed(0)
    base = FPN + MASK + ["MODEL.ROI_MASK_HEAD.CLS_AGNOSTIC_MASK", "True"]
    source = build_model(tiny_cfg(base))
    expected = _random_state(source, 1)
    d2 = to_detectron2(expected, 1, len(source.rpn.anchor_generator.aspect_ratios[0]))
    d2["roi_heads.mask_head.predictor.weight"] = expected[
        "roi_heads.mask_predictor.mask_fcn_logits.weight"
    ].numpy()
    d2["roi_heads.mask_head.predictor.bias"] = expected[
        "roi_heads.mask_predictor.mask_fcn_logits.bias"
    ].numpy()
    # Class-agnostic box regression (4 deltas in all): the same deltas for every class.
    deltas = torch.randn(4, expected["roi_heads.box_predictor.bbox_pred.weight"].shape[1])
    d2["roi_heads.box_predictor.bbox_pred.weight"] = deltas.numpy()
    d2["roi_heads.box_predictor.bbox_pred.bias"] = torch.zeros(4).numpy()
    target = build_model(tiny_cfg(base))
    load_pretrained_weights(target, {k: torch.from_numpy(v) for k, v in d2.items()})
    sd = target.state_dict()
    assert sd["roi_heads.mask_predictor.mask_fcn_logits.weight"].shape[0] == 1
    pred = sd["roi_heads.box_predictor.bbox_pred.weight"]
    assert pred.shape[0] == 16 and torch.equal(pred[:4], torch.zeros_like(deltas))
    assert all(torch.equal(pred[4 * c : 4 * c + 4], deltas) for c in range(1, 4))
