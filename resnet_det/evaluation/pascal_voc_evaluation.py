"""PASCAL VOC detection AP, as the official devkit computes it.

The metric (Everingham et al., "The PASCAL Visual Object Classes Challenge", IJCV 2010, Sec.
4.2): per class, detections of all test images sorted by decreasing score are matched greedily
to ground truth; a detection is a true positive when its best-overlapping box has IoU above the
threshold, is not "difficult" and was not matched before (a second hit on the same box is a
false positive); a best match on a difficult box is ignored (neither true nor false positive),
and difficult boxes do not count towards recall. Boxes are in the devkit's inclusive pixel
coordinates: a box from x0 to x1 is x1 - x0 + 1 pixels wide.

AP (``voc_ap``) is one of ``VOC_AP_METRICS``:

- "11point" (VOC2007): the mean over 11 recall levels t of the highest precision at recall
  >= t, with the levels of detectron2's ``voc_eval`` and py-faster-rcnn's ``voc_ap``,
  ``np.arange(0.0, 1.1, 0.1)``. Those are not all exact tenths (the 4th is
  0.30000000000000004, then 0.6000000000000001 and 0.7000000000000001), so a recall of
  exactly 0.3, 0.6 or 0.7 does not reach its level. Every published VOC07 number of Faster
  R-CNN (Ren et al.; He et al. Table 7) came from that code, so it is the default; the sum is
  formed in the same order, so the AP equals theirs bit for bit.
- "11point_exact": the same with the exact tenths k / 10 as levels, the metric as the VOC
  paper defines it (Everingham et al. 2010, Sec. 4.2: t in {0, 0.1, ..., 1}). It differs
  from "11point" only where a recall equals 0.3, 0.6 or 0.7 exactly (on a held-out set that
  can move the mAP by tenths of a point).
- "area" (VOC2010+ devkit): the area under the precision/recall curve after making precision
  monotonically decreasing (what the PASCAL server reports for VOC 2012).

Dataset dicts store VOC boxes as (xmin - 1, ymin - 1, xmax, ymax) continuous coordinates (the
detectron2 convention, docs/internals.md); detections come in the same coordinates. Both get
1 added back to xmin/ymin, which gives the xml's values for ground truth, as detectron2 does when
it writes the devkit's results files.
"""

from __future__ import annotations

import logging
from collections import OrderedDict, defaultdict
from typing import Any, Dict, Hashable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from ..data.catalog import DatasetCatalog, MetadataCatalog
from ..utils.comm import all_gather, get_world_size, is_main_process
from ..utils.errors import DataError
from .evaluator import DatasetEvaluator

__all__ = [
    "PascalVOCDetectionEvaluator",
    "voc_ap",
    "voc_eval_class",
    "resolve_voc_metric",
    "VOC_IOU_THRESHOLDS",
    "VOC_AP_METRICS",
]

logger = logging.getLogger(__name__)

# detectron2's PascalVOCDetectionEvaluator reports AP as the mean over these (COCO-style)
# thresholds next to the classic AP50.
VOC_IOU_THRESHOLDS = tuple(range(50, 100, 5))

Detection = Tuple[Hashable, float, Sequence[float]]


VOC_AP_METRICS = ("11point", "11point_exact", "area")

# detectron2's / py-faster-rcnn's 11 recall levels, as they compute them (see the module doc).
_ARANGE_LEVELS = np.arange(0.0, 1.1, 0.1)
_EXACT_LEVELS = np.arange(11) / 10.0


def resolve_voc_metric(metric: Optional[str] = None, use_07_metric: Optional[bool] = None) -> str:
    """The metric name from either argument: ``metric`` (one of VOC_AP_METRICS) wins;
    otherwise ``use_07_metric`` True -> "11point", False -> "area". ValueError if neither is
    given or ``metric`` is unknown."""
    if metric is not None:
        if metric not in VOC_AP_METRICS:
            raise ValueError(f"VOC AP metric {metric!r} is not one of {list(VOC_AP_METRICS)}")
        return metric
    if use_07_metric is None:
        raise ValueError(
            f"give metric= (one of {list(VOC_AP_METRICS)}) or use_07_metric=True/False"
        )
    return "11point" if use_07_metric else "area"


def voc_ap(
    rec: Sequence[float],
    prec: Sequence[float],
    use_07_metric: bool = False,
    *,
    metric: Optional[str] = None,
) -> float:
    """Average precision from a precision/recall curve (detections in decreasing score order).

    Args:
        rec: recall after each detection (non-decreasing).
        prec: precision after each detection.
        use_07_metric: True: "11point", False: "area" (when ``metric`` is not given).
        metric: one of VOC_AP_METRICS (module doc): "11point" (VOC2007, equal bit for bit to
            detectron2's voc_eval and py-faster-rcnn), "11point_exact" (exact tenths as
            recall levels) or "area" (VOC2010+ devkit).
    """
    metric = resolve_voc_metric(metric, use_07_metric)
    rec = np.asarray(rec, dtype=np.float64).reshape(-1)
    prec = np.asarray(prec, dtype=np.float64).reshape(-1)
    if rec.shape != prec.shape:
        raise ValueError(f"voc_ap: rec has {rec.size} points, prec {prec.size}")
    if metric != "area":
        levels = _ARANGE_LEVELS if metric == "11point" else _EXACT_LEVELS
        ap = 0.0
        for t in levels:
            reached = prec[rec >= t]
            # Accumulated term by term in level order, as the reference code does, so that
            # the float result is the same.
            ap = ap + (np.max(reached) if reached.size else 0.0) / 11.0
        return float(ap)
    # Sentinels: recall runs from 0 to 1, precision falls to 0 past the last detection.
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    # Precision envelope: the best precision at this recall or any higher one.
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    # Sum rectangles where recall changes.
    i = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def _inclusive_iou(boxes: np.ndarray, gts: np.ndarray) -> np.ndarray:
    """IoU [len(boxes), len(gts)] in inclusive pixel coordinates (+1 on sides); the devkit's
    per-detection formula, operation for operation, so every value is the same float."""
    box = boxes[:, None, :]
    ixmin = np.maximum(gts[:, 0], box[..., 0])
    iymin = np.maximum(gts[:, 1], box[..., 1])
    ixmax = np.minimum(gts[:, 2], box[..., 2])
    iymax = np.minimum(gts[:, 3], box[..., 3])
    iw = np.maximum(ixmax - ixmin + 1.0, 0.0)
    ih = np.maximum(iymax - iymin + 1.0, 0.0)
    inter = iw * ih
    union = (
        (box[..., 2] - box[..., 0] + 1.0) * (box[..., 3] - box[..., 1] + 1.0)
        + (gts[:, 2] - gts[:, 0] + 1.0) * (gts[:, 3] - gts[:, 1] + 1.0)
        - inter
    )
    return inter / union


def _voc_eval_thresholds(
    detections: Sequence[Detection],
    annotations: Mapping[Hashable, Sequence[Mapping[str, Any]]],
    iou_thresholds: Sequence[float],
    metric: str,
) -> List[Tuple[np.ndarray, np.ndarray, float]]:
    """voc_eval_class for several thresholds, computing the overlaps once."""
    gt: Dict[Hashable, Tuple[np.ndarray, np.ndarray]] = {}
    npos = 0
    for image_id, objs in annotations.items():
        boxes = np.array([o["bbox"] for o in objs], dtype=np.float64).reshape(-1, 4)
        difficult = np.array([bool(o["difficult"]) for o in objs], dtype=bool)
        gt[image_id] = (boxes, difficult)
        npos += int((~difficult).sum())

    # Stable sort: ties keep input order (MATLAB's sort, which the devkit uses, is stable).
    scores = np.array([float(d[1]) for d in detections], dtype=np.float64)
    order = np.argsort(-scores, kind="stable")
    n = len(order)
    gt_list = list(gt.values())
    index_of = {image_id: k for k, image_id in enumerate(gt)}
    image_index = np.array([index_of.get(d[0], -1) for d in detections], dtype=np.int64)[order]
    if (image_index < 0).any():
        d = int(order[int(np.argmax(image_index < 0))])
        raise KeyError(
            f"Detection {d} is on image {detections[d][0]!r}, which has no ground-truth entry "
            "(annotations must list every test image, with [] for images without objects)"
        )
    boxes = np.array([d[2] for d in detections], dtype=np.float64).reshape(-1, 4)[order]
    # Each detection's best-overlapping box (the devkit's argmax, whether matched or not),
    # computed image by image as one detections x boxes matrix.
    best_iou = np.full(n, -np.inf)
    best_gt = np.zeros(n, dtype=np.int64)
    best_difficult = np.zeros(n, dtype=bool)
    by_image = np.argsort(image_index, kind="stable")
    starts = np.flatnonzero(np.diff(image_index[by_image], prepend=-1))
    for ranks in np.split(by_image, starts[1:]):
        if ranks.size == 0:
            continue
        gt_boxes, difficult = gt_list[image_index[ranks[0]]]
        if len(gt_boxes):
            overlaps = _inclusive_iou(boxes[ranks], gt_boxes)
            j = np.argmax(overlaps, axis=1)
            best_gt[ranks] = j
            best_iou[ranks] = overlaps[np.arange(len(ranks)), j]
            best_difficult[ranks] = difficult[j]
    num_boxes = max((len(g[0]) for g in gt_list), default=0) + 1

    results = []
    for thresh in iou_thresholds:
        # Above, not at, the threshold: the devkit's Python port (and detectron2) use ">".
        hit = best_iou > thresh
        counted = ~(hit & best_difficult)  # a hit on a difficult box: neither TP nor FP
        candidate = np.flatnonzero(hit & counted)
        # The first detection (in score order) on a box is its TP; later ones are duplicates
        # (FP), as are detections that hit nothing.
        _, first = np.unique(
            image_index[candidate] * num_boxes + best_gt[candidate], return_index=True
        )
        tp = np.zeros(n)
        tp[candidate[first]] = 1.0
        fp = (counted & (tp == 0.0)).astype(np.float64)
        tp = np.cumsum(tp[counted])
        fp = np.cumsum(fp[counted])
        rec = tp / npos if npos > 0 else np.full_like(tp, np.nan)
        prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
        ap = voc_ap(rec, prec, metric=metric) if npos > 0 else float("nan")
        results.append((rec, prec, ap))
    return results


def voc_eval_class(
    detections: Sequence[Detection],
    annotations: Mapping[Hashable, Sequence[Mapping[str, Any]]],
    iou_thresh: float = 0.5,
    use_07_metric: bool = False,
    *,
    metric: Optional[str] = None,
) -> Tuple[np.ndarray, np.ndarray, float]:
    """The devkit's per-class evaluation.

    Args:
        detections: (image_id, score, [x0, y0, x1, y1]) for one class over the test set, boxes
            in inclusive pixel coordinates (the xml's values).
        annotations: image_id -> list of {"bbox": [x0, y0, x1, y1] (inclusive pixels, as in
            the xml), "difficult": bool} of this class; every test image must be present
            (with [] when it has no object of the class).
        iou_thresh: a detection matches when its IoU with a box is above this.
        use_07_metric: "11point" AP (VOC2007) instead of "area" (when ``metric`` is not given).
        metric: one of VOC_AP_METRICS (see ``voc_ap``).

    Returns:
        (recall, precision, ap): recall and precision after each counted detection in score
        order (detections ignored for hitting a difficult box are left out, which leaves AP
        unchanged), and the AP. AP and recall are NaN when the class has no non-difficult
        ground truth.
    """
    return _voc_eval_thresholds(
        detections, annotations, [iou_thresh], resolve_voc_metric(metric, use_07_metric)
    )[0]


class PascalVOCDetectionEvaluator(DatasetEvaluator):
    """VOC AP of a detector on a registered VOC-layout dataset (devkit metric).

    Reports ``{"bbox": {"AP": mean over IoU .50:.95, "AP50", "AP75", "AP50-<class>": ...}}`` in
    percent. Ground truth comes from the dataset's dicts (with their "difficult" flags).
    """

    def __init__(
        self,
        dataset_name: str,
        use_07_metric: Optional[bool] = None,
        distributed: bool = True,
        *,
        metric: Optional[str] = None,
    ):
        """
        Args:
            dataset_name: a registered dataset with metadata thing_classes and year.
            use_07_metric: True: VOC2007 11-point AP; False: area under the curve (VOC2010+);
                None: 11-point exactly when the dataset's year is 2007 (as detectron2 does).
            distributed: gather predictions from all ranks; rank 0 evaluates.
            metric: one of VOC_AP_METRICS ("11point", "11point_exact", "area"); overrides
                ``use_07_metric`` when given.
        """
        self._dataset_name = dataset_name
        self._distributed = distributed
        meta = MetadataCatalog.get(dataset_name)
        if not hasattr(meta, "thing_classes"):
            raise DataError(
                f"PascalVOCDetectionEvaluator: dataset {dataset_name!r} has no metadata "
                "'thing_classes'"
            )
        self._class_names: List[str] = list(meta.thing_classes)
        if metric is None and use_07_metric is None:
            if not hasattr(meta, "year"):
                raise DataError(
                    f"PascalVOCDetectionEvaluator: dataset {dataset_name!r} has no metadata "
                    "'year'; "
                    "pass use_07_metric=True/False"
                )
            use_07_metric = int(meta.year) == 2007
        self._metric = resolve_voc_metric(metric, use_07_metric)
        self._predictions: Dict[int, List[Detection]] = defaultdict(list)

    @property
    def metric(self) -> str:
        """The AP metric in use, one of VOC_AP_METRICS."""
        return self._metric

    def reset(self) -> None:
        self._predictions = defaultdict(list)

    def results_category_ids(self) -> List[int]:
        """VOC has no category ids of its own: a results file names a class by its 1-based
        index in the dataset's class order (aeroplane=1 .. tvmonitor=20 for VOC)."""
        return list(range(1, len(self._class_names) + 1))

    def process(self, inputs, outputs) -> None:
        for inp, out in zip(inputs, outputs):
            self._add(
                inp["image_id"],
                out["boxes"].detach().to("cpu").numpy(),
                out["scores"].detach().to("cpu").numpy(),
                out["labels"].detach().to("cpu").numpy(),
            )

    def process_results(self, results) -> None:
        """A results file's detections (results_file.DatasetResults), image by image as a
        detector's outputs come (the stable sort of voc_eval_class keeps that order)."""
        xyxy = results.boxes_xyxy()
        for record, rows in results.per_image():
            self._add(record["image_id"], xyxy[rows], results.scores[rows], results.labels[rows])

    def _add(
        self, image_id: Hashable, boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray
    ) -> None:
        """One image's detections: boxes XYXY [N, 4], scores [N], labels [N] (0-based)."""
        num_classes = len(self._class_names)
        boxes = boxes.astype(np.float64).reshape(-1, 4)
        for box, score, label in zip(boxes, scores.tolist(), labels.tolist()):
            if not 0 <= label < num_classes:
                raise ValueError(
                    f"Image {image_id!r}: label {label} outside [0, {num_classes}) "
                    f"(dataset {self._dataset_name!r})"
                )
            # To the devkit's 1-based inclusive pixels, as the ground truth below.
            x0, y0, x1, y1 = box.tolist()
            self._predictions[int(label)].append(
                (image_id, float(score), [x0 + 1.0, y0 + 1.0, x1, y1])
            )

    def _ground_truth(self) -> List[Dict[Hashable, List[Dict[str, Any]]]]:
        """Per class: image_id -> [{"bbox" in devkit coordinates, "difficult"}] for every image."""
        dicts = DatasetCatalog.get(self._dataset_name)
        per_class: List[Dict[Hashable, List[Dict[str, Any]]]] = [{} for _ in self._class_names]
        for record in dicts:
            image_id = record["image_id"]
            for cls in per_class:
                cls[image_id] = []
            for ann in record.get("annotations", []):
                if "difficult" not in ann:
                    raise DataError(
                        f"Dataset {self._dataset_name!r}, image {image_id!r}: annotation without "
                        "'difficult' flag; the VOC reader must keep it (docs/internals.md)"
                    )
                x0, y0, x1, y1 = (float(v) for v in ann["bbox"])
                per_class[int(ann["category_id"])][image_id].append(
                    {"bbox": [x0 + 1.0, y0 + 1.0, x1, y1], "difficult": bool(ann["difficult"])}
                )
        return per_class

    def _gathered_predictions(self) -> Optional[Dict[int, List[Detection]]]:
        """label -> detections (devkit coordinates) of every rank; None on ranks other than 0
        of a distributed run."""
        predictions = self._predictions
        if self._distributed and get_world_size() > 1:
            gathered = all_gather(dict(predictions))
            if not is_main_process():
                return None
            predictions = defaultdict(list)
            for per_rank in gathered:
                for label, dets in per_rank.items():
                    predictions[label].extend(dets)
        return predictions

    def evaluate(self) -> OrderedDict[str, Dict[str, float]]:
        predictions = self._gathered_predictions()
        if predictions is None:
            return OrderedDict()
        ground_truth = self._ground_truth()
        logger.info(
            "Evaluating %s with the %s VOC metric",
            self._dataset_name,
            {
                "11point": "2007 11-point (detectron2 / py-faster-rcnn levels)",
                "11point_exact": "11-point (exact tenths)",
                "area": "area-under-curve",
            }[self._metric],
        )
        thresholds = [t / 100.0 for t in VOC_IOU_THRESHOLDS]
        aps: Dict[int, List[float]] = {t: [] for t in VOC_IOU_THRESHOLDS}
        for label in range(len(self._class_names)):
            per_thresh = _voc_eval_thresholds(
                predictions.get(label, []), ground_truth[label], thresholds, self._metric
            )
            for t, (_, _, ap) in zip(VOC_IOU_THRESHOLDS, per_thresh):
                aps[t].append(ap * 100.0)
        no_gt = [n for n, ap in zip(self._class_names, aps[50]) if np.isnan(ap)]
        if no_gt:
            logger.warning(
                "Dataset %s has no non-difficult ground truth for %s: their AP is NaN and the "
                "means are over the other classes",
                self._dataset_name,
                no_gt,
            )
        mean_ap = {t: _nanmean(v) for t, v in aps.items()}
        metrics: Dict[str, float] = {
            "AP": _nanmean(list(mean_ap.values())),
            "AP50": mean_ap[50],
            "AP75": mean_ap[75],
        }
        for name, ap in zip(self._class_names, aps[50]):
            metrics[f"AP50-{name}"] = ap
        return OrderedDict([("bbox", metrics)])


def _nanmean(values: Sequence[float]) -> float:
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[~np.isnan(arr)]
    return float(arr.mean()) if arr.size else float("nan")
