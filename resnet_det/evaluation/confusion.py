"""A detector's confusion matrix, as mmdetection's tools/analysis_tools/confusion_matrix.py
defines it: which class each ground-truth object was detected as.

Detections scoring at least ``score_threshold`` (0.3) count. Each detection adds 1 to
[ground-truth class, detected class] for every regular (not crowd) ground truth it overlaps
with IoU >= ``iou_threshold`` (0.5), whatever their classes, and 1 to [background, detected
class] when it overlaps none. Each ground truth that no detection of its own class overlaps so
adds 1 to [its class, missed]. Rows: the K classes then "background"; columns: the K classes
then "missed". The IoU is COCO's (box or mask).
"""

from __future__ import annotations

import numpy as np

from .error_data import ErrorAnalysisData

__all__ = ["confusion_matrix"]


def confusion_matrix(
    data: ErrorAnalysisData, *, score_threshold: float = 0.3, iou_threshold: float = 0.5
) -> np.ndarray:
    """[K + 1, K + 1] counts (see the module docstring)."""
    K = data.num_categories
    cm = np.zeros((K + 1, K + 1), np.int64)
    d, g = data.pairs()
    hit = (data.iou >= iou_threshold) & ~data.gt_crowd[g] & (data.dt_score[d] >= score_threshold)
    d, g = d[hit], g[hit]
    np.add.at(cm, (data.gt_cat[g], data.dt_cat[d]), 1)
    counted = data.dt_score >= score_threshold
    overlaps = np.bincount(d, minlength=len(data.dt_score)) > 0
    np.add.at(cm, (K, data.dt_cat[counted & ~overlaps]), 1)
    found = np.zeros(len(data.gt_cat), bool)
    found[g[data.gt_cat[g] == data.dt_cat[d]]] = True
    lost = ~data.gt_crowd & ~found
    np.add.at(cm, (data.gt_cat[lost], K), 1)
    return cm
