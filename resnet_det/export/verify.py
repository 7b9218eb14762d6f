"""Does an exported detector give the eager detector's outputs?

Detections are compared one to one: each eager detection is paired with the exported detection
of the same class, overlapping it (IoU >= 0.5), that is closest to it (in the order the detector
ranks them, greedily), and the largest box-coordinate and score differences over the pairs are
reported. A detection left without a partner is a failure unless its score lies within the
score tolerance of a cut-off the detector applies (the score threshold, or the lowest score kept
when the detection count is capped): there a rounding difference may legitimately keep it on
one side only.
"""

from dataclasses import asdict, dataclass
from typing import Dict, Optional, Sequence, Tuple

import torch
from torch import Tensor
from torchvision.ops import box_iou

__all__ = ["Tolerance", "ImageComparison", "compare_detections", "DEFAULT_TOLERANCE"]

Detections = Tuple[Tensor, Tensor, Tensor]  # boxes [N, 4], scores [N], labels [N]


@dataclass(frozen=True)
class Tolerance:
    """Largest accepted differences: box coordinates in input pixels, scores in probability."""

    boxes: float = 1e-2
    scores: float = 1e-4


DEFAULT_TOLERANCE = Tolerance()


@dataclass
class ImageComparison:
    """The outcome of comparing one image's detections (JSON-friendly with ``to_dict``)."""

    image: str
    size: Tuple[int, int]
    num_eager: int
    num_exported: int
    num_matched: int
    max_box_diff: float
    max_score_diff: float
    unexplained: int
    passed: bool

    def to_dict(self) -> Dict:
        return asdict(self)

    def describe(self) -> str:
        state = "ok" if self.passed else "FAILED"
        extra = f", {self.unexplained} detections without a partner" if self.unexplained else ""
        return (
            f"{self.image} ({self.size[0]}x{self.size[1]}): {self.num_eager} eager / "
            f"{self.num_exported} exported detections, largest difference boxes "
            f"{self.max_box_diff:.3g} px, scores {self.max_score_diff:.3g}{extra}: {state}"
        )


def _as_cpu(dets: Sequence) -> Detections:
    boxes, scores, labels = (torch.as_tensor(t).detach().cpu() for t in dets)
    return boxes.double().reshape(-1, 4), scores.double().reshape(-1), labels.long().reshape(-1)


def _near_cutoff(score: float, cutoffs: Sequence[float], tol: float) -> bool:
    return any(abs(score - c) <= tol for c in cutoffs)


def compare_detections(
    eager: Sequence,
    exported: Sequence,
    *,
    image: str = "",
    size: Tuple[int, int] = (0, 0),
    tolerance: Tolerance = DEFAULT_TOLERANCE,
    score_thresh: float = 0.0,
    max_detections: Optional[int] = None,
) -> ImageComparison:
    """Pair ``exported`` detections with ``eager`` ones and measure the differences.

    Args:
        eager, exported: (boxes [N, 4], scores [N], labels [N]) each (tensors or arrays).
        image, size: what the comparison was made on (for the report).
        tolerance: the largest accepted differences.
        score_thresh: the detector's score threshold (MODEL.ROI_HEADS.SCORE_THRESH_TEST).
        max_detections: the detector's cap on detections per image, if any.
    """
    (eb, es, el), (xb, xs, xl) = _as_cpu(eager), _as_cpu(exported)
    used = torch.zeros(len(xs), dtype=torch.bool)
    box_diff = score_diff = 0.0
    matched = 0
    unmatched_eager = []
    for i in range(len(es)):
        # Partners: unused detections of the same class that overlap it (IoU >= 0.5).
        candidates = (~used) & (xl == el[i])
        if len(xb):
            candidates &= box_iou(eb[i : i + 1], xb)[0] >= 0.5
        if not bool(candidates.any()):
            unmatched_eager.append(float(es[i]))
            continue
        d_box = (xb - eb[i]).abs().amax(dim=1)
        d_score = (xs - es[i]).abs()
        cost = torch.maximum(d_box / tolerance.boxes, d_score / tolerance.scores)
        cost[~candidates] = float("inf")
        j = int(cost.argmin())
        used[j] = True
        matched += 1
        box_diff = max(box_diff, float(d_box[j]))
        score_diff = max(score_diff, float(d_score[j]))
    unmatched_exported = [float(s) for s in xs[~used]]
    cutoffs = [score_thresh]
    for scores in (es, xs):
        if max_detections is not None and len(scores) >= max_detections:
            cutoffs.append(float(scores.min()))
    unexplained = sum(
        not _near_cutoff(s, cutoffs, tolerance.scores) for s in unmatched_eager + unmatched_exported
    )
    passed = unexplained == 0 and box_diff <= tolerance.boxes and score_diff <= tolerance.scores
    return ImageComparison(
        image=image,
        size=(int(size[0]), int(size[1])),
        num_eager=len(es),
        num_exported=len(xs),
        num_matched=matched,
        max_box_diff=box_diff,
        max_score_diff=score_diff,
        unexplained=unexplained,
        passed=passed,
    )
