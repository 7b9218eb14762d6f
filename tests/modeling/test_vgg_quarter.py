"""The reproduction demo's VGG-16 at a quarter width (vgg16_quarter): VGG-16's layout and
parameter names, so its pretraining checkpoint loads into its detector as a real VGG-16's
does."""

import os

import pytest
import torch

import resnet_det
from resnet_det.checkpoint import load_pretrained_weights
from resnet_det.config import ConfigError, get_cfg
from resnet_det.modeling import build_classifier, build_model, build_vgg16_quarter
from resnet_det.modeling.vgg import QUARTER_WIDTH, vgg_widths

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
QUARTER_CHANNELS, QUARTER_FC_DIM = vgg_widths(QUARTER_WIDTH)


def _cfg(name, *opts):
    cfg = get_cfg()
    cfg.merge_from_file(os.path.join(ROOT, "configs", "reproduce_demo", name))
    cfg.merge_from_list(list(opts))
    return cfg


def test_the_demo_widths():
    assert QUARTER_CHANNELS == (16, 32, 64, 128, 128) and QUARTER_FC_DIM == 256


def test_vgg16_layout_and_names_at_a_quarter_width():
    narrow = build_vgg16_quarter(depth=16, num_classes=4, norm="BN")
    full = resnet_det.create_model("vgg16", num_classes=4, norm="BN")
    narrow_sd, full_sd = narrow.state_dict(), full.state_dict()
    assert list(narrow_sd) == list(full_sd)
    for key, value in narrow_sd.items():
        if key.endswith("conv1_1.weight"):
            assert value.shape == (full_sd[key].shape[0] // 4, 3, 3, 3)
    assert narrow.fc6.weight.shape == (256, QUARTER_CHANNELS[-1] * 7 * 7)
    assert narrow(torch.zeros(2, 3, 32, 32)).shape == (2, 4)
    backbone = build_vgg16_quarter(out_features=["vgg_conv5"])
    assert backbone.output_shape()["vgg_conv5"].stride == 16
    assert backbone(torch.zeros(1, 3, 64, 64))["vgg_conv5"].shape == (1, 128, 4, 4)


def test_classifier_weights_load_into_the_detector_backbone_and_box_head():
    classifier = build_classifier(_cfg("pretrain_vgg16_quarter.yaml"))
    detector = build_model(_cfg("faster_rcnn_vgg16_quarter.yaml", "MODEL.WEIGHTS", ""))
    load_pretrained_weights(detector, classifier.state_dict())
    sd = detector.state_dict()
    for key, value in classifier.state_dict().items():
        if key.startswith(("fc6", "fc7")):
            assert torch.equal(sd[f"roi_heads.box_head.{key}"], value), key
        elif not key.startswith("fc8") and not key.endswith("num_batches_tracked"):
            assert torch.equal(sd[f"backbone.{key}"], value), key


def test_fc_dim_must_match_the_classifiers():
    with pytest.raises(ConfigError, match="MODEL.ROI_BOX_HEAD.FC_DIM.*256"):
        build_model(_cfg("faster_rcnn_vgg16_quarter.yaml", "MODEL.ROI_BOX_HEAD.FC_DIM", "512"))
