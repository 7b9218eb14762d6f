"""Sanity rules shared by the detection readers (COCO json and VOC xml).

One documented policy for both (docs/datasets.md "Bad data"): a box with zero or negative
width/height, or lying entirely outside its image, is dropped and counted under either
DATALOADER.ON_BAD_IMAGE policy; a box partly outside is clipped to the image. Such boxes exist
in real annotation files and cannot be trained on, so dropping them is the useful default
(detectron2 and mmdetection drop them too); they are never dropped silently: the reader's
summary line and metrics.json count them.
"""

from typing import Optional, Sequence, Tuple, Union

import numpy as np

from ..skips import FaultPolicy

__all__ = ["KEEP", "CLIPPED", "DEGENERATE", "OUTSIDE", "sanitize_boxes", "BoxSanitizer"]

# What becomes of a box.
KEEP, CLIPPED, DEGENERATE, OUTSIDE = 0, 1, 2, 3
_Size = Union[float, np.ndarray]


def sanitize_boxes(boxes: np.ndarray, width: _Size, height: _Size) -> Tuple[np.ndarray, np.ndarray]:
    """The XYXY ``boxes`` (float64 [N, 4]) of images of ``width`` x ``height`` (numbers, or one
    per box) clipped to [0, width] x [0, height], and each one's fate: KEEP, CLIPPED (partly
    outside), DEGENERATE (width or height <= 0, or NaN) or OUTSIDE (entirely outside), the last
    two to be dropped. Clipping is Python's max(x0, 0.0) / min(x1, width): -0.0 stays -0.0."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    x0, y0, x1, y1 = boxes.T
    width = np.asarray(width, dtype=np.float64)
    height = np.asarray(height, dtype=np.float64)
    degenerate = ~(x1 - x0 > 0) | ~(y1 - y0 > 0)
    outside = (x1 <= 0) | (y1 <= 0) | (x0 >= width) | (y0 >= height)
    clipped = np.stack(
        [
            np.where(0.0 > x0, 0.0, x0),
            np.where(0.0 > y0, 0.0, y0),
            np.where(width < x1, width, x1),
            np.where(height < y1, height, y1),
        ],
        axis=1,
    )
    fate = np.where((clipped != boxes).any(axis=1), CLIPPED, KEEP).astype(np.uint8)
    fate[outside] = OUTSIDE
    fate[degenerate] = DEGENERATE
    return clipped, fate


class BoxSanitizer:
    """Clips boxes to the image and drops degenerate / outside ones, counting both in the
    reader's FaultPolicy.

    Args:
        policy: the FaultPolicy of the file being read.
    """

    def __init__(self, policy: FaultPolicy) -> None:
        self.policy = policy

    def __call__(
        self, box: Sequence[float], width: float, height: float, image_id
    ) -> Optional[Tuple[float, float, float, float]]:
        """Return the XYXY box clipped to [0, width] x [0, height], or None if dropped."""
        clipped, fate = sanitize_boxes(
            np.array([[float(v) for v in box]]), float(width), float(height)
        )
        if fate[0] == DEGENERATE:
            self.policy.drop("degenerate box", image_id=image_id)
            return None
        if fate[0] == OUTSIDE:
            self.policy.drop("outside image", image_id=image_id)
            return None
        self.policy.num_clipped += int(fate[0] == CLIPPED)
        return tuple(clipped[0].tolist())
