"""Detection augmentations applied jointly to an image, its boxes and its instance masks.

Only what the paper's detector uses (Sec. 4 / appendix A: shorter side 600, horizontal flip),
with detectron2's semantics (multi-scale "choice"/"range" sampling, longer-side cap). The
pixel work is torchvision.transforms.v2's functional ops, the boxes get the values of its box
kernels; masks (instance_masks.InstanceMasks) follow the same geometry.
Randomness comes from an explicit ``random.Random`` so the data loader can make every sample a
function of (seed, position in the stream); the masks never draw from it, so the draws, and
the image and boxes, are the same with or without masks.

Each transform first decides its operation from the image's size alone (``get_op``: a
``Resize`` or an ``HFlip``, or None), so the geometry (boxes, masks) can be worked out before
the pixels exist: ``plan_transforms`` does that for a chain, and ``apply_image_ops`` then
applies the operations to the pixels, wherever they were decoded (a loader worker, or a GPU
for a whole batch: resnet_det.data.device_decode).
"""

import random
import sys
from typing import List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torchvision.transforms.v2 import functional as F

from ..io import to_format
from .instance_masks import InstanceMasks

__all__ = [
    "Resize",
    "HFlip",
    "ResizeShortestEdge",
    "RandomFlip",
    "plan_transforms",
    "apply_image_ops",
    "apply_transforms",
]

Result = Union[Tuple[torch.Tensor, torch.Tensor], Tuple[torch.Tensor, torch.Tensor, InstanceMasks]]


class Resize(NamedTuple):
    """Resize an image to ``height`` x ``width`` (bilinear, antialiased); boxes scale by the
    new/old size per axis, masks with them."""

    height: int
    width: int


class HFlip(NamedTuple):
    """Flip an image of width ``width`` horizontally: x -> width - x on continuous box edges."""

    width: int


ImageOp = Union[Resize, HFlip]


def _apply_op_geometry(
    op: ImageOp,
    height: int,
    width: int,
    boxes: np.ndarray,
    masks: Optional[InstanceMasks],
) -> Tuple[int, int, np.ndarray, Optional[InstanceMasks]]:
    """(height, width, boxes, masks) after ``op`` on an image of ``height`` x ``width``.

    Boxes (a numpy array [N, 4] XYXY) get the values torchvision's XYXY box kernels give
    (F.resize_bounding_boxes: coordinates times new/old size per axis in float32;
    F.horizontal_flip_bounding_boxes: x -> width - x with the edges swapped), computed by a
    few numpy operations here in the boxes' dtype, as torch computes them: the kernels'
    indexing, and even torch's dispatch on a few boxes, cost more than the rest of a loader's
    bookkeeping for an image (tests/data/detection/test_transforms.py holds them equal)."""
    if isinstance(op, Resize):
        sx, sy = op.width / width, op.height / height
        boxes = boxes * np.array([sx, sy, sx, sy], dtype=boxes.dtype)
        masks = None if masks is None else masks.resize(op.height, op.width)
        return op.height, op.width, boxes, masks
    flipped = boxes.copy()
    flipped[:, 0], flipped[:, 2] = width - boxes[:, 2], width - boxes[:, 0]
    return height, width, flipped, None if masks is None else masks.hflip()


def _apply_op_image(image: torch.Tensor, op: ImageOp) -> torch.Tensor:
    if isinstance(op, Resize):
        return F.resize_image(image, [op.height, op.width], antialias=True)
    return F.horizontal_flip_image(image)


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

    def get_op(self, height: int, width: int, rng: random.Random) -> Optional[Resize]:
        """The resize for an image of ``height`` x ``width`` (draws the length from ``rng``);
        None when the size stays."""
        new_h, new_w = self.get_output_shape(height, width, self.sample_length(rng), self.max_size)
        return None if (new_h, new_w) == (height, width) else Resize(new_h, new_w)

    def __call__(
        self,
        image: torch.Tensor,
        boxes: torch.Tensor,
        rng: random.Random,
        masks: Optional[InstanceMasks] = None,
    ) -> Result:
        """(image, boxes) resized, and ``masks`` too when given (then a triple)."""
        return _apply_one(self, image, boxes, rng, masks)

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

    def get_op(self, height: int, width: int, rng: random.Random) -> Optional[HFlip]:
        """The flip for an image of width ``width``, or None (one draw from ``rng``)."""
        # Always draw, so the random stream does not depend on prob's value.
        return HFlip(width) if rng.random() < self.prob else None

    def __call__(
        self,
        image: torch.Tensor,
        boxes: torch.Tensor,
        rng: random.Random,
        masks: Optional[InstanceMasks] = None,
    ) -> Result:
        """(image, boxes) maybe flipped, and ``masks`` with them when given (then a triple)."""
        return _apply_one(self, image, boxes, rng, masks)

    def __repr__(self) -> str:
        return f"RandomFlip(prob={self.prob})"


def _apply_one(transform, image, boxes, rng, masks) -> Result:
    h, w = image.shape[-2:]
    op = transform.get_op(int(h), int(w), rng)
    if op is None:
        return _result(image, boxes, masks)
    _, _, planned, masks = _apply_op_geometry(op, int(h), int(w), boxes.numpy(), masks)
    return _result(_apply_op_image(image, op), torch.from_numpy(planned), masks)


def plan_transforms(
    transforms: Sequence,
    height: int,
    width: int,
    boxes: torch.Tensor,
    rng: random.Random,
    masks: Optional[InstanceMasks] = None,
) -> Tuple[List[ImageOp], torch.Tensor, Optional[InstanceMasks]]:
    """The chain's operations for an image of ``height`` x ``width`` (drawing from ``rng`` as
    ``apply_transforms`` does), with ``boxes`` [N, 4] XYXY and ``masks`` transformed: (ops,
    boxes, masks). ``apply_image_ops(image, ops)`` then gives the transformed image."""
    ops: List[ImageOp] = []
    planned = boxes.numpy()
    for t in transforms:
        op = t.get_op(height, width, rng)
        if op is not None:
            ops.append(op)
            height, width, planned, masks = _apply_op_geometry(op, height, width, planned, masks)
    return ops, torch.from_numpy(planned) if ops else boxes, masks


def apply_image_ops(
    image: torch.Tensor, ops: Sequence[ImageOp], format: str = "RGB"
) -> torch.Tensor:
    """The RGB ``image`` [3, H, W] (on any device) after ``ops`` (plan_transforms), as a
    contiguous tensor in channel order ``format``.

    A trailing flip is made by the copy that sets the channel order and makes the image
    contiguous (resnet_det.data.io.to_format): one pass over the pixels less.
    """
    ops = list(ops)
    hflip = bool(ops) and isinstance(ops[-1], HFlip)
    for op in ops[:-1] if hflip else ops:
        image = _apply_op_image(image, op)
    return to_format(image, format, hflip=hflip)


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
    h, w = image.shape[-2:]
    ops, boxes, masks = plan_transforms(transforms, int(h), int(w), boxes, rng, masks)
    for op in ops:
        image = _apply_op_image(image, op)
    return _result(image, boxes, masks)
