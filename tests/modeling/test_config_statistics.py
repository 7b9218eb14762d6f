"""config_statistics: statistics of the network a config builds (tools/analyze_model.py
--config-file)."""

import os

import torch

import resnet_det
from resnet_det.config import get_cfg
from resnet_det.modeling.statistics import config_statistics, model_statistics

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def _cfg(path, *opts):
    cfg = get_cfg()
    cfg.merge_from_file(os.path.join(ROOT, path))
    cfg.merge_from_list(list(opts))
    return cfg


def test_classifier_config_measures_the_whole_classifier():
    torch.set_num_threads(1)
    s = config_statistics(_cfg("configs/digits/resnet20.yaml"))
    ref = model_statistics(resnet_det.create_model("resnet20_cifar", num_classes=10), 16)
    assert s["params"] == s["model_params"] == ref["params"]
    assert s["conv_fc_flops"] == ref["conv_fc_flops"]
    assert s["input_size"] == (3, 16, 16)


def test_detector_config_measures_backbone_at_test_size():
    torch.set_num_threads(1)
    s = config_statistics(
        _cfg("configs/modern/faster_rcnn_R50_C4_1x.yaml", "INPUT.MIN_SIZE_TEST", "224")
    )
    # The C4 backbone is the stem and res2..res4 of ResNet-50 (paper layout, frozen BN).
    ref = model_statistics(
        resnet_det.create_model(
            "resnet50", num_classes=None, out_features=["res4"], norm="FrozenBN"
        ),
        224,
    )
    assert s["params"] == ref["params"]
    assert s["conv_fc_flops"] == ref["conv_fc_flops"]
    # The detector adds the RPN and the res5 box head on top of the backbone.
    assert s["model_params"] > s["params"] + 10_000_000
