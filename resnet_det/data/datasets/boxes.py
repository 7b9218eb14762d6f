"""Sanity rules shared by the detection readers (COCO json and VOC xml).

One documented policy for both (docs/datasets.md "Bad data"): a box with zero or negative
width/height, or lying entirely outside its image, is dropped and counted under either
DATALOADER.ON_BAD_IMAGE policy; a box partly outside is clipped to the image. Such boxes exist
in real annotation files and cannot be trained on, so dropping them is the useful default
(detectron2 and mmdetection drop them too); they are never dropped silently: the reader's
summary line and metrics.json count them.
"""

from typing import Optional, Sequence, Tuple

from ..skips import FaultPolicy

__all__ = ["BoxSanitizer"]


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
        x0, y0, x1, y1 = (float(v) for v in box)
        if not x1 - x0 > 0 or not y1 - y0 > 0:  # also NaN
            self.policy.drop("degenerate box", image_id=image_id)
            return None
        if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
            self.policy.drop("outside image", image_id=image_id)
            return None
        cx0, cy0 = max(x0, 0.0), max(y0, 0.0)
        cx1, cy1 = min(x1, float(width)), min(y1, float(height))
        if (cx0, cy0, cx1, cy1) != (x0, y0, x1, y1):
            self.policy.num_clipped += 1
        return (cx0, cy0, cx1, cy1)
