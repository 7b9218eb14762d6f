"""Sanity rules shared by the detection readers (COCO json and VOC xml).

One documented policy for both: a box with zero or negative width/height, or lying entirely
outside its image, is dropped and counted (a warning names the first few image ids); a box
partly outside is clipped to the image. Such boxes exist in real annotation files (COCO has a
few degenerate ones) and cannot be trained on, so dropping them is the useful default; they are
never dropped silently.
"""
import logging
from typing import List, Optional, Sequence, Tuple

logger = logging.getLogger(__name__)

__all__ = ["BoxSanitizer"]


class BoxSanitizer:
    """Clips boxes to the image, drops degenerate / outside ones and remembers which images
    lost boxes, for one warning per file read."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.num_degenerate = 0
        self.num_outside = 0
        self.num_clipped = 0
        self._image_ids: List = []

    def __call__(
        self, box: Sequence[float], width: float, height: float, image_id
    ) -> Optional[Tuple[float, float, float, float]]:
        """Return the XYXY box clipped to [0, width] x [0, height], or None if dropped."""
        x0, y0, x1, y1 = (float(v) for v in box)
        if x1 - x0 <= 0 or y1 - y0 <= 0:
            self.num_degenerate += 1
            self._note(image_id)
            return None
        if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
            self.num_outside += 1
            self._note(image_id)
            return None
        cx0, cy0 = max(x0, 0.0), max(y0, 0.0)
        cx1, cy1 = min(x1, float(width)), min(y1, float(height))
        if (cx0, cy0, cx1, cy1) != (x0, y0, x1, y1):
            self.num_clipped += 1
        return (cx0, cy0, cx1, cy1)

    def _note(self, image_id) -> None:
        if image_id not in self._image_ids:
            self._image_ids.append(image_id)

    @property
    def num_dropped(self) -> int:
        return self.num_degenerate + self.num_outside

    def report(self) -> None:
        """Log one warning if anything was dropped (and an info line for clipped boxes)."""
        if self.num_dropped:
            shown = ", ".join(str(i) for i in self._image_ids[:5])
            more = f" and {len(self._image_ids) - 5} more" if len(self._image_ids) > 5 else ""
            logger.warning(
                "%s: dropped %d boxes (%d with width or height <= 0, %d entirely outside the "
                "image) in images %s%s",
                self.source, self.num_dropped, self.num_degenerate, self.num_outside, shown, more,
            )
        if self.num_clipped:
            logger.info("%s: clipped %d boxes partly outside their image", self.source,
                        self.num_clipped)
