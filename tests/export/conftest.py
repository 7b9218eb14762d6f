"""Detectors with random weights for the export tests: the configs' own architectures at tiny
input sizes, their norms randomized but tamed so that activations stay O(1) (a random deep net's
features grow large and make float rounding, not the export, decide borderline detections)."""

import os

import pytest
import torch
from torch import nn

from resnet_det.config import get_cfg
from resnet_det.modeling.build import build_model
from resnet_det.modeling.layers import FrozenBatchNorm2d

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
CONFIGS = {
    "demo": "configs/demo/faster_rcnn_shapes.yaml",
    "R50-FPN": "configs/modern/faster_rcnn_R50_FPN_1x.yaml",
    "R101-C4": "configs/faster_rcnn_R101.yaml",
    "mask-demo": "configs/demo/mask_rcnn_shapes.yaml",
}
# Few proposals and detections keep each export and run to seconds on a CPU; a score threshold
# of 0 makes random weights detect something to compare.
TINY = [
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
    "MODEL.ROI_HEADS.DETECTIONS_PER_IMAGE",
    "30",
]


def tame(model: nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, (FrozenBatchNorm2d, nn.BatchNorm2d)):
                n = m.running_mean.numel()
                last = name.endswith(("conv3.norm", "conv2.norm")) and ".res" in "." + name
                m.weight.copy_(
                    torch.empty(n).uniform_(*((0.05, 0.2) if last else (0.5, 1.0)), generator=g)
                )
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(torch.empty(n).uniform_(0.5, 1.5, generator=g))


def tiny_cfg(family: str, *extra):
    cfg = get_cfg()
    cfg.merge_from_file(os.path.join(ROOT, CONFIGS[family]))
    cfg.merge_from_list(TINY + list(extra))
    return cfg


def random_detector(family: str, seed: int = 0):
    torch.manual_seed(seed)
    model = build_model(tiny_cfg(family)).eval()
    tame(model, seed)
    return model


def two_images(seed: int = 0):
    """Two images of different sizes (as the tiny test-time resize makes them), float 0-255,
    with bright blocks for the detector to find."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for h, w in ((96, 128), (112, 96)):
        img = torch.randint(0, 80, (3, h, w), generator=g).float()
        img[:, 10:50, 20:70] = 220.0
        img[:, 60:90, 5:40] = 150.0
        out.append(img)
    return out


@pytest.fixture(scope="module")
def detectors():
    """family -> random detector, built once per module."""
    cache = {}

    def get(family):
        if family not in cache:
            cache[family] = random_detector(family)
        return cache[family]

    return get
