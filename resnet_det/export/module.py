"""The detector with a tensor-only signature, which every export format can carry.

``GeneralizedRCNN`` takes and returns lists of dicts (docs/internals.md, "Detector I/O"); ONNX
and torch.export need tensors in and out. ``DetectorExportModule`` runs the same inference on
one image tensor: the same normalisation and zero padding as ``preprocess_image``, then the
backbone, RPN and RoI heads, and returns the detections in the input's pixels, so for an
input ``image`` its outputs equal ``model([{"image": image}])[0]``.

Resizing stays outside (the caller applies the config's test-time resize, as
``resnet_det.Predictor`` does): the detector's own resize is an antialiased one that the
formats do not all carry (docs/deployment.md).
"""

import contextlib
from typing import Dict, Iterator, Tuple

import torch
import torch.nn.functional as F
import torchvision
import torchvision.ops.boxes as box_ops
from torch import Tensor, nn
from torchvision.models.detection.image_list import ImageList

__all__ = [
    "DetectorExportModule",
    "MaskDetectorExportModule",
    "export_module",
    "INPUT_NAMES",
    "OUTPUT_NAMES",
    "MASK_OUTPUT_NAMES",
    "export_friendly_nms",
]

INPUT_NAMES = ("image",)
OUTPUT_NAMES = ("boxes", "scores", "labels")
MASK_OUTPUT_NAMES = OUTPUT_NAMES + ("masks",)


class DetectorExportModule(nn.Module):
    """``image`` -> ``(boxes, scores, labels)`` for one image.

    Input: float32 [3, H, W], values 0-255 in the detector's input_format channel order
    (INPUT.FORMAT), already resized by the config's test-time resize. Outputs: boxes [N, 4]
    (XYXY, in the input's pixels), scores [N], labels [N] (int64, 0-based class indices),
    in decreasing score order per class as the detector returns them.

    Args:
        model: a GeneralizedRCNN in eval mode (its parameters are shared, not copied).
    """

    output_names = OUTPUT_NAMES

    def __init__(self, model: nn.Module):
        super().__init__()
        if model.training:
            raise ValueError(
                "DetectorExportModule: the detector is in training mode; call "
                "model.eval() first (exports are for inference)"
            )
        self.model = model

    def detect(self, image: Tensor) -> Dict[str, Tensor]:
        """The RoI heads' detections for one image (input pixels, torchvision's 1-based labels)."""
        m = self.model
        x = (image.to(torch.float32) - m.pixel_mean) / m.pixel_std
        h, w = x.shape[-2], x.shape[-1]
        d = m.size_divisibility
        if d > 1:
            # Zeros after normalisation up to a multiple of d, as preprocess_image pads.
            x = F.pad(x, [0, (w + d - 1) // d * d - w, 0, (h + d - 1) // d * d - h])
        images = ImageList(x.unsqueeze(0), [(h, w)])
        features = m.backbone(images.tensors)
        proposals, _ = m.rpn(images, {f: features[f] for f in m.rpn_in_features})
        detections, _ = m.roi_heads(
            {f: features[f] for f in m.roi_in_features}, proposals, images.image_sizes
        )
        return detections[0]

    def forward(self, image: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        det = self.detect(image)
        # torchvision's RoIHeads reserve label 0 for background; ours are 0-based.
        return det["boxes"], det["scores"], det["labels"] - 1


class MaskDetectorExportModule(DetectorExportModule):
    """``image`` -> ``(boxes, scores, labels, masks)`` for one image, for a Mask R-CNN.

    ``masks``: float32 [N, 1, M, M], each detection's mask probabilities at the mask head's
    resolution (M = 28 for the FPN head, 14 for C4) in its box's frame: the detector's output
    before pasting, which every format carries (pasting crops by data-dependent sizes). Paste
    them into the image with ``torchvision.models.detection.roi_heads.paste_masks_in_image(masks,
    boxes, (H, W))``, as the detector does.

    Args:
        model: a GeneralizedRCNN with a mask head, in eval mode.
    """

    output_names = MASK_OUTPUT_NAMES

    def forward(self, image: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:  # type: ignore[override]
        det = self.detect(image)
        return det["boxes"], det["scores"], det["labels"] - 1, det["masks"]


def export_module(model: nn.Module) -> DetectorExportModule:
    """The export module for ``model``: with masks for a Mask R-CNN, without otherwise."""
    if getattr(model, "mask_on", False):
        return MaskDetectorExportModule(model)
    return DetectorExportModule(model)


def _batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
    """torchvision's batched_nms by its coordinate trick (boxes of each class shifted apart,
    one NMS) without its data-dependent branches: no "is it empty" test (the max also runs on
    an empty tensor) and no size-dependent choice of algorithm. The kept boxes are those
    per-class NMS keeps, up to float rounding of the shifted coordinates."""
    max_coordinate = torch.cat([boxes.reshape(-1), boxes.new_zeros(1)]).max()
    offsets = idxs.to(boxes) * (max_coordinate + 1)
    return torchvision.ops.nms(boxes + offsets[:, None], scores, iou_threshold)


@contextlib.contextmanager
def export_friendly_nms() -> Iterator[None]:
    """Within this block torchvision's detection heads use ``_batched_nms``: torch.export
    cannot branch on how many boxes there are, which torchvision's batched_nms does."""
    original = box_ops.batched_nms
    box_ops.batched_nms = _batched_nms
    try:
        yield
    finally:
        box_ops.batched_nms = original
