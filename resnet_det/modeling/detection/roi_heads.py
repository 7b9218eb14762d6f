"""The RoI heads: torchvision's RoIHeads (fg/bg sampling, box coder, losses, per-class NMS, and
the mask loss with a mask branch) around our pooler, box head and mask head.

- ``build_standard_roi_heads`` (StandardROIHeads, the FPN paper's and Faster R-CNN's VGG-16
  head): RoIs pooled from ``in_features``, then the box head of MODEL.ROI_BOX_HEAD.NAME.
- ``build_res5_roi_heads`` (Res5ROIHeads, the paper's ResNet detector, Appendix A): RoIs pooled
  from res4, then res5 of the same ResNet and global average pooling (``Res5BoxHead``); with
  masks the mask branch runs the same res5 on RoIs pooled like the box branch's.
"""

from typing import Mapping, Optional, Sequence, Tuple

from torch import nn
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
from torchvision.models.detection.roi_heads import RoIHeads

from ...utils.errors import ArgumentError
from ..backbone import ShapeSpec
from ..layers import check_positive_int
from ..registry import ModelDescription
from .box_heads import Res5BoxHead
from .poolers import RoIPooler, check_pooler_type
from .sampling import SeededBalancedSampler

__all__ = ["build_standard_roi_heads", "build_res5_roi_heads", "check_roi_heads_arguments"]


def check_roi_heads_arguments(
    *,
    num_classes: int,
    pooler_type: str = "ROIAlignV2",
    iou_thresholds: Tuple[float, float] = (0.5, 0.5),
    bbox_reg_weights: Sequence[float] = (10.0, 10.0, 5.0, 5.0),
    **_,
) -> None:
    """The checks of the RoI heads' arguments that need no backbone."""
    check_positive_int("num_classes", num_classes)
    check_pooler_type(pooler_type)
    bg, fg = iou_thresholds
    if not 0.0 <= bg <= fg <= 1.0:
        raise ArgumentError(
            "iou_thresholds",
            f"RoI heads: iou_thresholds {list(iou_thresholds)} must be background_below <= "
            "foreground_from in [0, 1]",
        )
    if len(bbox_reg_weights) != 4:
        raise ArgumentError(
            "bbox_reg_weights", "RoI heads: bbox_reg_weights needs 4 values (dx, dy, dw, dh)"
        )


def _pooler(input_shapes, in_features, resolution, pooler_type, sampling_ratio) -> RoIPooler:
    try:
        return RoIPooler(
            in_features=in_features,
            strides=[input_shapes[f].stride for f in in_features],
            output_size=resolution,
            pooler_type=pooler_type,
            sampling_ratio=sampling_ratio,
        )
    except ArgumentError as e:
        if e.argument == "strides":  # the strides are those of the features pooled from
            raise ArgumentError("in_features", str(e)) from e
        raise


def _roi_heads(
    pooler: RoIPooler,
    box_head: nn.Module,
    *,
    num_classes: int,
    iou_thresholds: Tuple[float, float],
    batch_size_per_image: int,
    positive_fraction: float,
    bbox_reg_weights: Sequence[float],
    score_thresh: float,
    nms_thresh: float,
    detections_per_image: int,
    mask_branch,
) -> RoIHeads:
    # +1: torchvision's predictor reserves class 0 for background.
    predictor = FastRCNNPredictor(box_head.out_channels, num_classes + 1)
    # detectron2 / Fast R-CNN initialisation: small Gaussians keep early training stable.
    nn.init.normal_(predictor.cls_score.weight, std=0.01)
    nn.init.normal_(predictor.bbox_pred.weight, std=0.001)
    nn.init.zeros_(predictor.cls_score.bias)
    nn.init.zeros_(predictor.bbox_pred.bias)
    bg, fg = iou_thresholds
    roi_heads = RoIHeads(
        pooler,
        box_head,
        predictor,
        fg_iou_thresh=fg,
        bg_iou_thresh=bg,
        batch_size_per_image=batch_size_per_image,
        positive_fraction=positive_fraction,
        bbox_reg_weights=tuple(float(w) for w in bbox_reg_weights),
        score_thresh=score_thresh,
        nms_thresh=nms_thresh,
        detections_per_img=detections_per_image,
        **mask_branch(),
    )
    roi_heads.fg_bg_sampler = SeededBalancedSampler(batch_size_per_image, positive_fraction)
    return roi_heads


def _check_in_features(input_shapes: Mapping[str, ShapeSpec], in_features: Sequence[str]):
    if not in_features or any(f not in input_shapes for f in in_features):
        raise ArgumentError("in_features", f"the backbone outputs only {list(input_shapes)}")
    return list(in_features)


def build_standard_roi_heads(
    input_shapes: Mapping[str, ShapeSpec],
    *,
    in_features: Sequence[str],
    num_classes: int,
    box_head: ModelDescription,
    mask_head: Optional[ModelDescription] = None,
    pooler_type: str = "ROIAlignV2",
    pooler_sampling_ratio: int = 0,
    iou_thresholds: Tuple[float, float] = (0.5, 0.5),
    batch_size_per_image: int = 512,
    positive_fraction: float = 0.25,
    bbox_reg_weights: Sequence[float] = (10.0, 10.0, 5.0, 5.0),
    score_thresh: float = 0.05,
    nms_thresh: float = 0.5,
    detections_per_image: int = 100,
) -> RoIHeads:
    """RoIs pooled from ``in_features`` at the box head's ``pooler_resolution``, the box head
    ``box_head`` builds (given the pooled channels), the box predictor, and the mask branch of
    ``mask_head`` (Mask R-CNN) if given.

    Args:
        input_shapes: the backbone's ``output_shape()``.
        in_features: the backbone features the RoIs are pooled from (equal channels).
        num_classes: object classes (without the background).
        box_head, mask_head: descriptions of the box head (BOX_HEADS) and mask head
            (MASK_HEADS).
        pooler_type, pooler_sampling_ratio: the box pooler (``RoIPooler``).
        iou_thresholds: (background below, foreground from) for the proposals' labels.
        batch_size_per_image, positive_fraction: the proposals sampled per image for the loss.
        bbox_reg_weights: the box coder's (dx, dy, dw, dh) weights.
        score_thresh, nms_thresh, detections_per_image: inference's filtering.
    """
    in_features = _check_in_features(input_shapes, in_features)
    resolution = box_head["pooler_resolution"]
    pooler = _pooler(input_shapes, in_features, resolution, pooler_type, pooler_sampling_ratio)
    channels = {input_shapes[f].channels for f in in_features}
    if len(channels) != 1:
        raise ArgumentError("in_features", "pooled features need equal channels")
    head = box_head.build(in_channels=channels.pop())

    def mask_branch():
        if mask_head is None:
            return {}
        return mask_head.build(input_shapes, in_features=in_features, num_classes=num_classes)

    return _roi_heads(
        pooler,
        head,
        num_classes=num_classes,
        iou_thresholds=iou_thresholds,
        batch_size_per_image=batch_size_per_image,
        positive_fraction=positive_fraction,
        bbox_reg_weights=bbox_reg_weights,
        score_thresh=score_thresh,
        nms_thresh=nms_thresh,
        detections_per_image=detections_per_image,
        mask_branch=mask_branch,
    )


def build_res5_roi_heads(
    input_shapes: Mapping[str, ShapeSpec],
    *,
    in_features: Sequence[str],
    num_classes: int,
    res5: ModelDescription,
    mask_head: Optional[ModelDescription] = None,
    pooler_type: str = "ROIAlignV2",
    pooler_resolution: int = 14,
    pooler_sampling_ratio: int = 0,
    iou_thresholds: Tuple[float, float] = (0.5, 0.5),
    batch_size_per_image: int = 512,
    positive_fraction: float = 0.25,
    bbox_reg_weights: Sequence[float] = (10.0, 10.0, 5.0, 5.0),
    score_thresh: float = 0.05,
    nms_thresh: float = 0.5,
    detections_per_image: int = 100,
) -> RoIHeads:
    """RoIs pooled from res4 (``in_features``), then ``res5`` (the backbone's res5 stage, first
    block at stride 2) and global average pooling as the box head; the mask branch of
    ``mask_head`` (Mask R-CNN) runs the same res5 on RoIs pooled as the box branch's (its own
    pooler settings do not apply), as detectron2's Res5ROIHeads. Other arguments: as
    ``build_standard_roi_heads``."""
    in_features = _check_in_features(input_shapes, in_features)
    pooler = _pooler(
        input_shapes, in_features, pooler_resolution, pooler_type, pooler_sampling_ratio
    )
    res5_stage = res5.build()
    head = Res5BoxHead(res5=res5_stage, out_channels=res5_stage.out_channels)

    def mask_branch():
        if mask_head is None:
            return {}
        return mask_head.build(
            input_shapes,
            in_features=in_features,
            num_classes=num_classes,
            res5=head.res5,
            pooler_type=pooler_type,
            pooler_resolution=pooler_resolution,
            pooler_sampling_ratio=pooler_sampling_ratio,
        )

    return _roi_heads(
        pooler,
        head,
        num_classes=num_classes,
        iou_thresholds=iou_thresholds,
        batch_size_per_image=batch_size_per_image,
        positive_fraction=positive_fraction,
        bbox_reg_weights=bbox_reg_weights,
        score_thresh=score_thresh,
        nms_thresh=nms_thresh,
        detections_per_image=detections_per_image,
        mask_branch=mask_branch,
    )
