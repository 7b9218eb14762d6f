"""The demo chain: the paper's pipeline (ImageNet-style pretraining of both backbones,
conversion, Faster R-CNN fine-tuning, COCO evaluation) on generated data, at a 2-core CPU's
scale, so a user sees every step work before booking GPUs.

- pretraining: shapes_crops_train / _test (demo_data.py), configs/reproduce_demo/pretrain_*.yaml;
- detection: shapes_train / shapes_val, configs/reproduce_demo/faster_rcnn_*.yaml;
- networks: ResNet-18 in the paper's C4 layout and VGG-16's layout at a quarter width
  (resnet_det.modeling.vgg, ``vgg16_quarter``), the stand-ins for ResNet-101 and VGG-16.

Its table sits beside Table 8's numbers (the same metrics, COCO's mAP@.5 and mAP@[.5,.95]);
the numbers are not comparable, the chain is the same.
"""

from typing import List

from .demo_data import register_demo_data
from .paper import COCO_METRICS, COMPARISONS, ComparedBackbone, Comparison

__all__ = ["DEMO", "FAST_PRETRAIN_OPTS", "FAST_DETECT_OPTS", "register_demo"]

_T8 = {b.slug: b.paper for b in COMPARISONS["8"].backbones}

DEMO = Comparison(
    key="demo",
    title="Demo: generated shapes (shapes_val, COCO AP), "
    "beside the paper's Table 8 (MS COCO val2014)",
    metrics=COCO_METRICS,
    backbones=(
        ComparedBackbone(
            "VGG-16",
            "vgg16q",
            "configs/reproduce_demo/faster_rcnn_vgg16_quarter.yaml",
            "configs/reproduce_demo/pretrain_vgg16_quarter.yaml",
            None,
            _T8["vgg16"],
            label="VGG-16 layout at 1/4 width",
        ),
        ComparedBackbone(
            "ResNet-101",
            "r18",
            "configs/reproduce_demo/faster_rcnn_resnet18.yaml",
            "configs/reproduce_demo/pretrain_resnet18.yaml",
            None,
            _T8["r101"],
            label="ResNet-18 (C4)",
        ),
    ),
    note="The demo's small networks, images and schedules make its numbers incomparable to the "
    "paper's; it runs the paper's chain (pretraining, conversion, fine-tuning, evaluation) "
    "on generated data. Its pretraining sets (shapes_crops_*) are registered inside "
    "tools/reproduce.py, so its pretraining steps run through `tools/reproduce.py --demo` "
    "rather than the pretraining commands below; the other commands run as they are.",
)

# --demo --fast: a few iterations per stage (detection on tiny images; the 32 px crops are
# already as small as VGG's five poolings allow), to check the wiring in a minute
# (the CI test runs this).
FAST_PRETRAIN_OPTS: List[str] = [
    "SOLVER.MAX_ITER",
    "3",
    "SOLVER.STEPS",
    "[]",
    "SOLVER.WARMUP_ITERS",
    "0",
    "SOLVER.IMS_PER_BATCH",
    "8",
    "LOG_PERIOD",
    "1",
]
FAST_DETECT_OPTS: List[str] = [
    "SOLVER.MAX_ITER",
    "2",
    "SOLVER.STEPS",
    "[]",
    "SOLVER.WARMUP_ITERS",
    "0",
    "INPUT.MIN_SIZE_TRAIN",
    "[64]",
    "INPUT.MAX_SIZE_TRAIN",
    "96",
    "INPUT.MIN_SIZE_TEST",
    "64",
    "INPUT.MAX_SIZE_TEST",
    "96",
    "MODEL.RPN.POST_NMS_TOPK_TRAIN",
    "32",
    "MODEL.RPN.POST_NMS_TOPK_TEST",
    "8",
    "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE",
    "8",
    "LOG_PERIOD",
    "1",
]


def register_demo() -> None:
    """Register the demo's data sets (idempotent; its networks are in the model registries)."""
    register_demo_data()
