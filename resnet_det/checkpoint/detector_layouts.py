"""Whole-detector checkpoints of torchvision and detectron2 -> our detector's names.

Our detector (resnet_det.modeling.detection.GeneralizedRCNN) names its parts:

    backbone.bottom_up.<our ResNet names> (FPN) / backbone.<our names> (C4, VGG)
    backbone.fpn.{inner,layer}_blocks.<i>.{0,1}   torchvision's FeaturePyramidNetwork (1 = norm)
    rpn.head.{conv.0.0, cls_logits, bbox_pred}    torchvision's RPNHead
    roi_heads.box_head.{fcs.<i>, res5.*, fc6, fc7}
    roi_heads.box_predictor.{cls_score, bbox_pred} torchvision's: class 0 is the background
    roi_heads.mask_head.<i>.{0,1} (convs; C4: mask_head.convs.<i>.*; its res5 is the box head's)
    roi_heads.mask_predictor.{conv5_mask, mask_fcn_logits}  one mask channel per class + background

torchvision's fasterrcnn_resnet50_fpn / maskrcnn_resnet50_fpn differ in backbone.body.<torchvision
ResNet names> and the box head's fc6 / fc7 (TwoMLPHead). detectron2's GeneralizedRCNN (FPN or C4,
with or without masks) names the FPN backbone.fpn_lateral<L> / fpn_output<L> (L = log2 of the
stride), the RPN proposal_generator.rpn_head.{conv, objectness_logits, anchor_deltas} with the
anchors of a location ordered by size, then aspect ratio (torchvision: aspect ratio, then size),
the C4 head roi_heads.res5, the FPN box head roi_heads.box_head.fc<k>, puts the background LAST
in cls_score and has no background rows in bbox_pred (4 per class, or 4 in all when class-
agnostic) nor a background channel in the mask predictor (roi_heads.mask_head.{mask_fcn<k>,
deconv, predictor}).
"""

import re
from collections import OrderedDict
from typing import Any, Collection, Dict, Mapping, Optional, Tuple

import torch

from .layouts import torchvision_to_resnet_det

__all__ = ["DETECTOR_LAYOUTS", "detect_detector_layout", "detector_to_resnet_det"]

DETECTOR_LAYOUTS = ("resnet_det", "torchvision", "detectron2")
StateDict = Dict[str, torch.Tensor]

# detectron2 buffers that are not weights (older checkpoints saved the normalisation).
_D2_DROP = re.compile(r"^(pixel_mean|pixel_std|proposal_generator\.anchor_generator\.)")


def detect_detector_layout(sd: Mapping[str, Any]) -> str:
    """ "torchvision", "detectron2" or "resnet_det" for a whole-detector state dict."""
    if any(k.startswith("backbone.body.") for k in sd):
        return "torchvision"
    if any(
        k.startswith(
            (
                "proposal_generator.",
                "backbone.fpn_lateral",
                "roi_heads.res5.",
                "roi_heads.mask_head.deconv.",
            )
        )
        for k in sd
    ):
        return "detectron2"
    return "resnet_det"


def _from_torchvision(sd: Mapping[str, torch.Tensor], target: Collection[str]) -> StateDict:
    body = OrderedDict(
        (k[len("backbone.body.") :], v) for k, v in sd.items() if k.startswith("backbone.body.")
    )
    out = OrderedDict(
        ("backbone.bottom_up." + k, v) for k, v in torchvision_to_resnet_det(body).items()
    )
    for key, value in sd.items():
        if key.startswith("backbone.body."):
            continue
        m = re.match(r"^roi_heads\.box_head\.fc([67])\.(.*)$", key)
        if m and key not in target:  # TwoMLPHead's fc6 / fc7 are our FastRCNNConvFCHead's fcs
            key = f"roi_heads.box_head.fcs.{int(m[1]) - 6}.{m[2]}"
        out[key] = value
    return out


def _anchor_order(
    num_anchors: int, anchors_per_location: Optional[Tuple[int, int]]
) -> Optional[torch.Tensor]:
    """Our anchor index -> detectron2's: ours r * S + s, detectron2's s * R + r."""
    if anchors_per_location is None:
        return None
    sizes, ratios = anchors_per_location
    if sizes * ratios != num_anchors or sizes == 1 or ratios == 1:
        return None
    return torch.tensor([s * ratios + r for r in range(ratios) for s in range(sizes)])


def _rpn(name: str, value: torch.Tensor, anchors_per_location) -> Tuple[str, torch.Tensor]:
    leaf = name.rsplit(".", 1)[1]
    if name.startswith("objectness_logits."):
        order = _anchor_order(value.shape[0], anchors_per_location)
        return f"rpn.head.cls_logits.{leaf}", value if order is None else value[order]
    if name.startswith("anchor_deltas."):
        order = _anchor_order(value.shape[0] // 4, anchors_per_location)
        if order is not None:  # 4 deltas per anchor, consecutive in both layouts
            value = value.reshape(-1, 4, *value.shape[1:])[order].reshape(value.shape)
        return f"rpn.head.bbox_pred.{leaf}", value
    return f"rpn.head.conv.0.0.{name[len('conv.') :]}", value


def _box_predictor(name: str, value: torch.Tensor, num_classes: Optional[int]) -> torch.Tensor:
    if name.startswith("cls_score."):  # background from last to first
        return torch.cat([value[-1:], value[:-1]])
    # bbox_pred: no background rows in detectron2; torchvision's are never used, zeros here.
    if value.shape[0] == 4 and num_classes is not None and num_classes > 1:
        # Class-agnostic regression: the same deltas for every class decode the same boxes.
        return torch.cat([torch.zeros_like(value)] + [value] * (num_classes - 1))
    return torch.cat([torch.zeros_like(value[:4]), value])


def _from_detectron2(
    sd: Mapping[str, torch.Tensor],
    target: Collection[str],
    anchors_per_location: Optional[Tuple[int, int]],
) -> StateDict:
    levels = sorted(
        {int(m[1]) for m in (re.match(r"^backbone\.fpn_lateral(\d+)\.", k) for k in sd) if m}
    )
    cls = sd.get("roi_heads.box_predictor.cls_score.weight")
    num_classes = None if cls is None else cls.shape[0]  # including the background
    out = OrderedDict()
    for key, value in sd.items():
        if _D2_DROP.match(key):
            continue
        m = re.match(r"^backbone\.fpn_(lateral|output)(\d+)\.(norm\.)?(.*)$", key)
        mask = re.match(r"^roi_heads\.mask_head\.mask_fcn(\d+)\.(norm\.)?(.*)$", key)
        if m:
            blocks = "inner_blocks" if m[1] == "lateral" else "layer_blocks"
            key = f"backbone.fpn.{blocks}.{levels.index(int(m[2]))}.{1 if m[3] else 0}.{m[4]}"
        elif key.startswith("proposal_generator.rpn_head."):
            key, value = _rpn(
                key[len("proposal_generator.rpn_head.") :], value, anchors_per_location
            )
        elif key.startswith("roi_heads.res5."):
            key = "roi_heads.box_head." + key[len("roi_heads.") :]
        elif re.match(r"^roi_heads\.box_head\.fc\d+\.", key) and key not in target:
            k, rest = re.match(r"^roi_heads\.box_head\.fc(\d+)\.(.*)$", key).groups()
            key = f"roi_heads.box_head.fcs.{int(k) - 1}.{rest}"
        elif key.startswith("roi_heads.box_predictor."):
            value = _box_predictor(key[len("roi_heads.box_predictor.") :], value, num_classes)
        elif mask:
            sub = f"{int(mask[1]) - 1}.{1 if mask[2] else 0}.{mask[3]}"
            key = (
                f"roi_heads.mask_head.convs.{sub}"
                if f"roi_heads.mask_head.convs.{sub}" in target
                else f"roi_heads.mask_head.{sub}"
            )
        elif key.startswith("roi_heads.mask_head.deconv."):
            key = "roi_heads.mask_predictor.conv5_mask." + key[len("roi_heads.mask_head.deconv.") :]
        elif key.startswith("roi_heads.mask_head.predictor."):
            key = (
                "roi_heads.mask_predictor.mask_fcn_logits."
                + key[len("roi_heads.mask_head.predictor.") :]
            )
            if value.shape[0] > 1:  # per-class masks: add torchvision's background channel
                value = torch.cat([torch.zeros_like(value[:1]), value])
        out[key] = value
    return out


def detector_to_resnet_det(
    sd: Mapping[str, torch.Tensor],
    *,
    target_keys: Collection[str],
    anchors_per_location: Optional[Tuple[int, int]] = None,
    layout: Optional[str] = None,
) -> Tuple[StateDict, str]:
    """A whole detector's state dict (torchvision, detectron2 or ours) -> our detector's names.

    Args:
        sd: flat {name: tensor} (``layouts.unwrap_checkpoint`` unwraps checkpoint files).
        target_keys: the state-dict keys of the detector it is for; where a name could map to
            two of our layouts (VGG's fc6 or the FPN head's fcs.0; C4's mask convs), the one
            the detector has is chosen.
        anchors_per_location: (sizes, aspect ratios) of each RPN location, to reorder
            detectron2's RPN outputs when both are above one (C4's 5 sizes x 3 ratios); None
            leaves them in the file's order.
        layout: the source's layout (default: detected).
    Returns:
        (state dict in our names, the source's layout).
    """
    layout = layout or detect_detector_layout(sd)
    if layout not in DETECTOR_LAYOUTS:
        raise ValueError(
            f"resnet_det: detector layout {layout!r} is not one of {', '.join(DETECTOR_LAYOUTS)}"
        )
    target = set(target_keys)
    if layout == "torchvision":
        out = _from_torchvision(sd, target)
    elif layout == "detectron2":
        out = _from_detectron2(sd, target, anchors_per_location)
    else:
        out = OrderedDict(sd)
    # BatchNorm's step counter has no place in a FrozenBN (torchvision's detectors built without
    # weights train plain BN): not a weight, dropped where the detector has none.
    return OrderedDict(
        (k, v)
        for k, v in out.items()
        if not (k.endswith(".num_batches_tracked") and k not in target)
    ), layout
