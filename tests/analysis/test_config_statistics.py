"""tools/analyze_model.py --config-file: statistics of the network a config builds."""

import os
import subprocess
import sys

import torch

import resnet_det
from resnet_det.analysis.model_stats import config_statistics, model_statistics
from resnet_det.config import get_cfg

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


def test_tool_reads_config_and_overrides():
    out = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "tools", "analyze_model.py"),
            "--config-file",
            os.path.join(ROOT, "configs/digits/resnet20.yaml"),
            "INPUT.CLS.CROP_SIZE",
            "32",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert "input: 3x32x32" in out.stdout
    assert "0.27M" in out.stdout
