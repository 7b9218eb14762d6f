"""The region proposal network (Ren et al., Sec. 3.1): torchvision's AnchorGenerator, RPNHead
and RegionProposalNetwork on the backbone's features, with a per-image seeded fg/bg sampler."""

from typing import Mapping, Sequence, Tuple

from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.rpn import RegionProposalNetwork, RPNHead

from ...utils.errors import ArgumentError
from ..backbone import ShapeSpec
from .sampling import SeededBalancedSampler

__all__ = ["build_rpn", "check_rpn_arguments"]


def check_rpn_arguments(
    *,
    in_features: Sequence[str],
    sizes: Sequence[Sequence[float]],
    aspect_ratios: Sequence[Sequence[float]],
    iou_thresholds: Tuple[float, float],
    min_size: float = 0.0,
    **_,
) -> None:
    """The checks of ``build_rpn``'s arguments that need no backbone."""
    if not in_features:
        raise ArgumentError("in_features", "RPN: in_features names no feature")
    if len(sizes) != len(in_features) or len(aspect_ratios) != len(in_features):
        raise ArgumentError(
            "sizes", f"RPN: one list of anchor sizes and aspect ratios per feature {in_features}"
        )
    per_location = {len(s) * len(r) for s, r in zip(sizes, aspect_ratios)}
    if len(per_location) != 1:
        raise ArgumentError(
            "sizes", "RPN: the shared RPN head needs the same number of anchors on every feature"
        )
    bg, fg = iou_thresholds
    if not 0.0 <= bg <= fg <= 1.0:
        raise ArgumentError(
            "iou_thresholds",
            f"RPN: iou_thresholds {list(iou_thresholds)} must be background_below <= "
            "foreground_from in [0, 1]",
        )
    if not min_size >= 0:
        raise ArgumentError("min_size", "RPN: min_size must be >= 0 (pixels of the network input)")


def build_rpn(
    input_shapes: Mapping[str, ShapeSpec],
    *,
    in_features: Sequence[str],
    sizes: Sequence[Sequence[float]],
    aspect_ratios: Sequence[Sequence[float]],
    conv_depth: int = 1,
    iou_thresholds: Tuple[float, float] = (0.3, 0.7),
    batch_size_per_image: int = 256,
    positive_fraction: float = 0.5,
    pre_nms_topk_train: int = 12000,
    pre_nms_topk_test: int = 6000,
    post_nms_topk_train: int = 2000,
    post_nms_topk_test: int = 1000,
    nms_thresh: float = 0.7,
    min_size: float = 0.0,
) -> RegionProposalNetwork:
    """The RPN on the backbone features ``in_features``.

    Args:
        input_shapes: the backbone's ``output_shape()``.
        in_features: the features it runs on (one shared head: equal channels).
        sizes, aspect_ratios: the anchors of each feature (one tuple per feature; the same
            number of anchors per location on each).
        conv_depth: 3x3 convs of the head before its two 1x1 outputs.
        iou_thresholds: (background below, foreground from) for the anchors' labels.
        batch_size_per_image, positive_fraction: the anchors sampled per image for the loss.
        pre_nms_topk_train, pre_nms_topk_test, post_nms_topk_train, post_nms_topk_test:
            proposals kept per image before / after NMS, in training / testing.
        nms_thresh: NMS IoU threshold of the proposals.
        min_size: proposals with a side under this (pixels of the network input) are dropped
            before NMS; 0 keeps torchvision's own floor (1e-3, any non-empty box, as 0 does
            in detectron2).
    """
    check_rpn_arguments(
        in_features=in_features,
        sizes=sizes,
        aspect_ratios=aspect_ratios,
        iou_thresholds=iou_thresholds,
        min_size=min_size,
    )
    in_features = list(in_features)
    if any(f not in input_shapes for f in in_features):
        raise ArgumentError("in_features", f"the backbone outputs only {list(input_shapes)}")
    channels = {input_shapes[f].channels for f in in_features}
    if len(channels) != 1:
        raise ArgumentError(
            "in_features", "the shared RPN head needs equal channels on every feature"
        )
    anchors = AnchorGenerator(sizes=tuple(sizes), aspect_ratios=tuple(aspect_ratios))
    head = RPNHead(channels.pop(), anchors.num_anchors_per_location()[0], conv_depth=conv_depth)
    bg, fg = iou_thresholds
    rpn = RegionProposalNetwork(
        anchors,
        head,
        fg_iou_thresh=fg,
        bg_iou_thresh=bg,
        batch_size_per_image=batch_size_per_image,
        positive_fraction=positive_fraction,
        pre_nms_top_n=dict(training=pre_nms_topk_train, testing=pre_nms_topk_test),
        post_nms_top_n=dict(training=post_nms_topk_train, testing=post_nms_topk_test),
        nms_thresh=nms_thresh,
    )
    rpn.fg_bg_sampler = SeededBalancedSampler(batch_size_per_image, positive_fraction)
    if min_size > 0:
        rpn.min_size = float(min_size)
    return rpn
