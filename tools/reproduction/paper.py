"""The paper's detection comparisons (He et al. 2015, Tables 7 and 8): which configs run them,
which metric each reports, and the numbers the paper gives (docs/reproduction.md).

A :class:`Comparison` pairs the VGG-16 baseline with ResNet-101 (the order of ``backbones``:
the gain is the second minus the first). ``COMPARISONS`` holds the paper's three; the demo
chain's comparison (generated data) is built in demo.py on the same type.
"""

import os
from dataclasses import dataclass, field
from typing import Dict, Mapping, Optional, Tuple

__all__ = ["Metric", "ComparedBackbone", "Comparison", "COMPARISONS", "COCO_METRICS", "repo_path"]

# tools/ sits in the repository beside configs/, which holds the comparisons' configs.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def repo_path(relative: str) -> str:
    """``relative`` (e.g. "configs/voc/faster_rcnn_R101.yaml") under the repository's root."""
    return os.path.join(REPO_ROOT, relative)


@dataclass(frozen=True)
class Metric:
    """One column of a paper table.

    Args:
        label: as the paper prints it ("mAP@.5").
        key: the key of our evaluator's "bbox" results that measures it ("AP50", "AP").
    """

    label: str
    key: str


@dataclass(frozen=True)
class ComparedBackbone:
    """One side of a comparison.

    Args:
        name: the paper's name of the network ("VGG-16", "ResNet-101").
        slug: short name for folders and flags ("vgg16", "r101").
        detection_config: the detector's config, relative to the checkout's root.
        pretrain_config: the ImageNet pretraining config of the same network.
        weights_flag: the command-line flag naming its detector weights (None: pretraining
            always runs, as in the demo).
        paper: the paper's numbers, {metric label: value}.
        label: what we run, when it is not the paper's network (the demo's small nets).
    """

    name: str
    slug: str
    detection_config: str
    pretrain_config: str
    weights_flag: Optional[str] = None
    paper: Mapping[str, float] = field(default_factory=dict)
    label: Optional[str] = None

    @property
    def ours(self) -> str:
        return self.label or self.name


@dataclass(frozen=True)
class Comparison:
    """A paper table's VGG-16 vs ResNet-101 comparison.

    Args:
        key: the value of ``tools/reproduce.py --table`` ("7", "8", "voc12") or "demo".
        title: the table and test set, as the report heads it.
        metrics: the table's columns.
        backbones: (baseline, deeper net); the gain is backbones[1] - backbones[0].
        server: the test set has no public annotations (VOC 2012 test): our number comes from
            the PASCAL evaluation server and is entered by the user.
        note: one sentence under the report's table (what differs from the paper's setting).
    """

    key: str
    title: str
    metrics: Tuple[Metric, ...]
    backbones: Tuple[ComparedBackbone, ComparedBackbone]
    server: bool = False
    note: str = ""

    def backbone(self, slug: str) -> ComparedBackbone:
        for b in self.backbones:
            if b.slug == slug:
                return b
        raise KeyError(
            f"{self.key}: no backbone {slug!r} (have {[b.slug for b in self.backbones]})"
        )

    def paper_gain(self, metric: Metric) -> float:
        base, deep = self.backbones
        return deep.paper[metric.label] - base.paper[metric.label]


# Table 8 reports COCO's mAP@.5 and the standard mAP@[.5, .95] (COCOeval's AP50 and AP).
COCO_METRICS = (Metric("mAP@.5", "AP50"), Metric("mAP@[.5,.95]", "AP"))
# Table 7 reports VOC's mAP at IoU 0.5 (the evaluator's AP50; the 11-point AP for VOC 2007).
VOC_METRICS = (Metric("mAP", "AP50"),)

_IMAGENET = {"vgg16": "configs/imagenet/vgg16.yaml", "r101": "configs/imagenet/resnet101.yaml"}


def _pair(
    configs: Dict[str, str], paper: Dict[str, Dict[str, float]]
) -> Tuple[ComparedBackbone, ComparedBackbone]:
    return (
        ComparedBackbone(
            "VGG-16",
            "vgg16",
            configs["vgg16"],
            _IMAGENET["vgg16"],
            "--weights-vgg16",
            paper["vgg16"],
        ),
        ComparedBackbone(
            "ResNet-101",
            "r101",
            configs["r101"],
            _IMAGENET["r101"],
            "--weights-r101",
            paper["r101"],
        ),
    )


COMPARISONS: Dict[str, Comparison] = {
    "7": Comparison(
        key="7",
        title="Table 7: PASCAL VOC 2007 test, trained on VOC 2007 trainval + 2012 trainval (07+12)",
        metrics=VOC_METRICS,
        backbones=_pair(
            {
                "vgg16": "configs/voc/faster_rcnn_VGG16.yaml",
                "r101": "configs/voc/faster_rcnn_R101.yaml",
            },
            {"vgg16": {"mAP": 73.2}, "r101": {"mAP": 76.4}},
        ),
    ),
    "voc12": Comparison(
        key="voc12",
        title="Table 7: PASCAL VOC 2012 test, "
        "trained on VOC 2007 trainval+test + 2012 trainval (07++12)",
        metrics=VOC_METRICS,
        backbones=_pair(
            {
                "vgg16": "configs/voc/faster_rcnn_VGG16_07++12.yaml",
                "r101": "configs/voc/faster_rcnn_R101_07++12.yaml",
            },
            {"vgg16": {"mAP": 70.4}, "r101": {"mAP": 73.8}},
        ),
        server=True,
        note="VOC 2012 test has no public annotations: the PASCAL VOC evaluation server scores the "
        "submission files; enter its mAP with --server-map SLUG=VALUE.",
    ),
    "8": Comparison(
        key="8",
        title="Table 8: MS COCO val2014, trained on train2014",
        metrics=COCO_METRICS,
        backbones=_pair(
            {"vgg16": "configs/faster_rcnn_VGG16.yaml", "r101": "configs/faster_rcnn_R101.yaml"},
            {
                "vgg16": {"mAP@.5": 41.5, "mAP@[.5,.95]": 21.2},
                "r101": {"mAP@.5": 48.4, "mAP@[.5,.95]": 27.2},
            },
        ),
    ),
}
