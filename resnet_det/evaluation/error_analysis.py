"""Where the AP is lost: one call that runs every error analysis of a COCO evaluation on the
same ground truth and detections (tools/evaluate.py --errors, TEST.ERROR_ANALYSIS).

- TIDE's error breakdown as dAP (tide.py), reported as the metrics ``dAP/cls``, ``dAP/loc``,
  ``dAP/both``, ``dAP/dupe``, ``dAP/bkg``, ``dAP/miss``, ``dAP/false_pos``, ``dAP/false_neg``
  of the task (metrics.json: ``bbox/dAP/cls``, ..., ``segm/dAP/...``);
- cocoapi's analyze PR curves C75, C50, Loc, Sim, Oth, BG, FN per category and area
  (coco_analyze.py);
- a confusion matrix (confusion.py).

The pictures and report.html of these are drawn by error_plots.py and error_report.py.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

from .coco_analyze import AnalyzeCurves, analyze_curves
from .confusion import confusion_matrix
from .error_data import ErrorAnalysisData, class_names_of
from .tide import TIDE_MAIN_ERRORS, TIDE_SPECIAL_ERRORS, TideResult, tide_errors

__all__ = ["DAP_KEYS", "ErrorAnalysis", "analyze_errors"]

logger = logging.getLogger(__name__)

# The metric names, in TIDE's order (main errors, then the special ones).
DAP_KEYS = tuple(f"dAP/{k}" for k in TIDE_MAIN_ERRORS + TIDE_SPECIAL_ERRORS)


@dataclass
class ErrorAnalysis:
    """The error analyses of one task ("bbox" or "segm") of one evaluation.

    Attributes:
        iou_type: "bbox" or "segm".
        class_names: category names in sorted-id order.
        tide: TIDE's AP50, dAP of each error, error counts.
        curves: cocoapi's analyze PR curves.
        confusion: [K + 1, K + 1] counts, ground-truth class (rows, last = background) by
            detected class (columns, last = missed), see confusion.py.
        seconds: time the analyses took.
    """

    iou_type: str
    class_names: List[str]
    tide: TideResult
    curves: AnalyzeCurves
    confusion: np.ndarray
    seconds: float = 0.0

    def metrics(self) -> OrderedDict[str, float]:
        """The dAP metrics of the task, ``{"dAP/cls": x, ...}``, in AP points."""
        return OrderedDict(
            (f"dAP/{k}", float(self.tide.dap[k])) for k in TIDE_MAIN_ERRORS + TIDE_SPECIAL_ERRORS
        )

    def pr_curves(self, num_thresholds: int = 101) -> Dict[str, Dict[str, np.ndarray]]:
        """Category name -> its PR curve at IoU 0.5 as TensorBoard's PR-curve counts
        (coco_analyze.PRCounts.threshold_counts)."""
        return OrderedDict(
            (name, pr.threshold_counts(num_thresholds))
            for name, pr in zip(self.class_names, self.curves.pr)
        )

    def to_json(self) -> Dict[str, Any]:
        """Everything as plain JSON (error_analysis.json)."""
        return {
            "iou_type": self.iou_type,
            "class_names": list(self.class_names),
            "tide": {
                "ap50": self.tide.ap50,
                "dap": dict(self.tide.dap),
                "counts": dict(self.tide.counts),
                "per_class_dap": {
                    k: [None if np.isnan(v) else float(v) for v in vals]
                    for k, vals in self.tide.per_class_dap.items()
                },
            },
            "analyze": self.curves.summary(self.class_names),
            "confusion": {
                "rows": list(self.class_names) + ["background"],
                "columns": list(self.class_names) + ["missed"],
                "counts": self.confusion.astype(int).tolist(),
            },
        }


def analyze_errors(
    coco_gt,
    coco_results: Sequence[Mapping[str, Any]],
    *,
    iou_type: str = "bbox",
    class_names: Optional[Sequence[str]] = None,
) -> ErrorAnalysis:
    """Run every error analysis on COCO results against ``coco_gt`` (pycocotools ``COCO``).

    Args:
        coco_gt: the ground truth (every image of it counts).
        coco_results: COCO results entries with the dataset's ids ("bbox" XYWH for boxes, an
            RLE "segmentation" for masks).
        iou_type: "bbox" or "segm".
        class_names: names in sorted category-id order (None: the categories' names).
    """
    start = time.perf_counter()
    names = class_names_of(coco_gt, class_names)
    data = ErrorAnalysisData.build(coco_gt, coco_results, iou_type=iou_type)
    tide = tide_errors(data)
    curves = analyze_curves(data)
    confusion = confusion_matrix(data)
    seconds = time.perf_counter() - start
    logger.info(
        "Error analysis (%s, %d images, %d detections): TIDE AP50 %.2f, dAP %s (%.2f s)",
        iou_type,
        data.num_images,
        len(data.dt_score),
        tide.ap50,
        ", ".join(f"{k} {v:.2f}" for k, v in tide.dap.items()),
        seconds,
    )
    return ErrorAnalysis(
        iou_type=iou_type,
        class_names=names,
        tide=tide,
        curves=curves,
        confusion=confusion,
        seconds=seconds,
    )
