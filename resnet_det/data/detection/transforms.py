"""Detection augmentations applied jointly to an image, its boxes and its instance masks.

Only what the paper's detector uses (Sec. 4 / appendix A: shorter side 600, horizontal flip),
with detectron2's semantics (multi-scale "choice"/"range" sampling, longer-side cap). The
pixel work is torchvision.transforms.v2's functional ops on tensors and tv_tensors boxes;
masks (resnet_det.data.segmentation.InstanceMasks) follow the same geometry. Randomness comes
from an explicit ``random.Random`` so the data loader can make every sample a function of
(seed, position in the stream); the masks never draw from it, so the draws, and the image and
boxes, are the same with or without masks.
"""

import random
import sys
from typing import Optional, Sequence, Tuple, Union

import torch
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as F

from ..segmentation import InstanceMasks

__all__ = ["ResizeShortestEdge", "RandomFlip", "apply_transforms"]

Result = Union[Tuple[torch.Tensor, torch.Tensor], Tuple[torch.Tensor, torch.Tensor, InstanceMasks]]


def _as_boxes(boxes: torch.Tensor, height: int, width: int) -> tv_tensors.BoundingBoxes:
    return tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=(height, width))


def _result(image, boxes, masks: Optional[InstanceMasks]) -> Result:
    return (image, boxes) if masks is None else (image, boxes, masks)


class ResizeShortestEdge:
    """Resize so the shorter side equals a sampled length, capping the longer side.

    Args:
        short_edge_length: candidate shorter-side lengths ("choice") or the [min, max]
            interval ("range", sampled uniformly, integers inclusive).
        max_size: the longer side is at most this after resizing (the scale shrinks to fit).
        sample_style: "choice" or "range".
    """

    def __init__(
        self,
        short_edge_length: Sequence[int],
        max_size: int = sys.maxsize,
        sample_style: str = "choice",
    ) -> None:
        if isinstance(short_edge_length, int):
            short_edge_length = (short_edge_length,)
        short_edge_length = tuple(int(s) for s in short_edge_length)
        if sample_style not in ("choice", "range"):
            raise ValueError(
                f"ResizeShortestEdge: sample_style must be 'choice' or 'range', "
                f"got {sample_style!r}"
            )
        if not short_edge_length or any(s <= 0 for s in short_edge_length):
            raise ValueError(
                f"ResizeShortestEdge: short_edge_length must be positive "
                f"lengths, got {short_edge_length}"
            )
        if sample_style == "range" and (
            len(short_edge_length) != 2 or short_edge_length[0] > short_edge_length[1]
        ):
            raise ValueError(
                f"ResizeShortestEdge: 'range' needs [min, max], got {short_edge_length}"
            )
        if max_size <= 0:
            raise ValueError(f"ResizeShortestEdge: max_size must be positive, got {max_size}")
        self.short_edge_length = short_edge_length
        self.max_size = int(max_size)
        self.sample_style = sample_style

    def sample_length(self, rng: random.Random) -> int:
        if self.sample_style == "range":
            return rng.randint(self.short_edge_length[0], self.short_edge_length[1])
        return self.short_edge_length[rng.randrange(len(self.short_edge_length))]

    @staticmethod
    def get_output_shape(
        height: int, width: int, short_edge: int, max_size: int
    ) -> Tuple[int, int]:
        """(new_height, new_width), rounded to the nearest integer, as detectron2 computes."""
        scale = short_edge / min(height, width)
        if max(height, width) * scale > max_size:
            scale = max_size / max(height, width)
        return int(height * scale + 0.5), int(width * scale + 0.5)

    def __call__(
        self,
        image: torch.Tensor,
        boxes: torch.Tensor,
        rng: random.Random,
        masks: Optional[InstanceMasks] = None,
    ) -> Result:
        """(image, boxes) resized, and ``masks`` too when given (then a triple)."""
        h, w = image.shape[-2:]
        new_h, new_w = self.get_output_shape(h, w, self.sample_length(rng), self.max_size)
        if (new_h, new_w) == (h, w):
            return _result(image, boxes, masks)
        image = F.resize(image, [new_h, new_w], antialias=True)
        # Boxes scale by new/old size per axis (continuous coordinates), exactly.
        boxes = F.resize(_as_boxes(boxes, h, w), [new_h, new_w]).as_subclass(torch.Tensor)
        return _result(image, boxes, None if masks is None else masks.resize(new_h, new_w))

    def __repr__(self) -> str:
        return (
            f"ResizeShortestEdge(short_edge_length={self.short_edge_length}, "
            f"max_size={self.max_size}, sample_style={self.sample_style!r})"
        )


class RandomFlip:
    """Flip horizontally with probability ``prob``: x -> width - x on continuous box edges.

    Args:
        prob: probability of flipping, in [0, 1].
    """

    def __init__(self, prob: float = 0.5) -> None:
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"RandomFlip: prob must be in [0, 1], got {prob}")
        self.prob = float(prob)

    def __call__(
        self,
        image: torch.Tensor,
        boxes: torch.Tensor,
        rng: random.Random,
        masks: Optional[InstanceMasks] = None,
    ) -> Result:
        """(image, boxes) maybe flipped, and ``masks`` with them when given (then a triple)."""
        # Always draw, so the random stream does not depend on prob's value.
        if rng.random() >= self.prob:
            return _result(image, boxes, masks)
        h, w = image.shape[-2:]
        image = F.horizontal_flip(image)
        boxes = F.horizontal_flip(_as_boxes(boxes, h, w)).as_subclass(torch.Tensor)
        return _result(image, boxes, None if masks is None else masks.hflip())

    def __repr__(self) -> str:
        return f"RandomFlip(prob={self.prob})"


def apply_transforms(
    transforms: Sequence,
    image: torch.Tensor,
    boxes: torch.Tensor,
    rng: random.Random,
    masks: Optional[InstanceMasks] = None,
) -> Result:
    """Apply each transform in order to (image [C, H, W], boxes [N, 4] XYXY), and to
    ``masks`` (the same N instances) when given: returns (image, boxes), or (image, boxes,
    masks) with masks."""
    if masks is None:
        for t in transforms:
            image, boxes = t(image, boxes, rng)
        return image, boxes
    for t in transforms:
        image, boxes, masks = t(image, boxes, rng, masks)
    return image, boxes, masks
