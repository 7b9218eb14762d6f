"""The VOC evaluator's vectorised matching gives the numbers of the detection-by-detection loop
it replaced (kept below as the reference): recall, precision and AP equal to 1e-12 (in fact bit
for bit) on randomised cases with difficult boxes, duplicate hits, tied scores, images without
boxes and every IoU threshold the evaluator uses."""

import numpy as np
import pytest

from resnet_det.evaluation.pascal_voc_evaluation import (
    VOC_AP_METRICS,
    VOC_IOU_THRESHOLDS,
    _voc_eval_thresholds,
    voc_ap,
)


def _reference(detections, annotations, thresholds, metric):
    """The implementation before vectorisation: one detection at a time, in score order."""
    gt, npos = {}, 0
    for image_id, objs in annotations.items():
        boxes = np.array([o["bbox"] for o in objs], dtype=np.float64).reshape(-1, 4)
        difficult = np.array([bool(o["difficult"]) for o in objs], dtype=bool)
        gt[image_id] = (boxes, difficult)
        npos += int((~difficult).sum())
    scores = np.array([float(d[1]) for d in detections], dtype=np.float64)
    order = np.argsort(-scores, kind="stable")
    best_iou, best_gt, image_of = (
        np.full(len(order), -np.inf),
        np.zeros(len(order), dtype=np.int64),
        [],
    )
    for rank, d in enumerate(order):
        image_id, _, box = detections[d]
        image_of.append(image_id)
        gts = gt[image_id][0]
        if len(gts):
            box = np.asarray(box, dtype=np.float64)
            iw = np.maximum(
                np.minimum(gts[:, 2], box[2]) - np.maximum(gts[:, 0], box[0]) + 1.0, 0.0
            )
            ih = np.maximum(
                np.minimum(gts[:, 3], box[3]) - np.maximum(gts[:, 1], box[1]) + 1.0, 0.0
            )
            inter = iw * ih
            union = (
                (box[2] - box[0] + 1.0) * (box[3] - box[1] + 1.0)
                + (gts[:, 2] - gts[:, 0] + 1.0) * (gts[:, 3] - gts[:, 1] + 1.0)
                - inter
            )
            overlaps = inter / union
            best_gt[rank] = int(np.argmax(overlaps))
            best_iou[rank] = overlaps[best_gt[rank]]
    out = []
    for thresh in thresholds:
        matched = {i: np.zeros(len(g[0]), dtype=bool) for i, g in gt.items()}
        tp, fp, counted = (
            np.zeros(len(order)),
            np.zeros(len(order)),
            np.ones(len(order), dtype=bool),
        )
        for rank in range(len(order)):
            image_id = image_of[rank]
            if best_iou[rank] > thresh:
                j = best_gt[rank]
                if gt[image_id][1][j]:
                    counted[rank] = False
                elif not matched[image_id][j]:
                    tp[rank], matched[image_id][j] = 1.0, True
                else:
                    fp[rank] = 1.0
            else:
                fp[rank] = 1.0
        tp, fp = np.cumsum(tp[counted]), np.cumsum(fp[counted])
        rec = tp / npos if npos > 0 else np.full_like(tp, np.nan)
        prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
        out.append((rec, prec, voc_ap(rec, prec, metric=metric) if npos > 0 else float("nan")))
    return out


def _case(seed):
    rng = np.random.default_rng(seed)
    annotations, detections = {}, []
    for k in range(int(rng.integers(1, 30))):
        image_id = f"{k:06d}" if seed % 2 else k  # string stems (VOC) and ints
        objs = []
        for _ in range(int(rng.integers(0, 6))):
            x0, y0 = rng.integers(0, 80, 2)
            w, h = rng.integers(1, 60, 2)
            objs.append(
                {
                    "bbox": [float(x0), float(y0), float(x0 + w), float(y0 + h)],
                    "difficult": bool(rng.random() < 0.2),
                }
            )
        annotations[image_id] = objs
        for _ in range(int(rng.integers(0, 12))):
            if objs and rng.random() < 0.7:  # near a box (duplicates happen)
                box = np.asarray(objs[int(rng.integers(len(objs)))]["bbox"]) + rng.integers(
                    -6, 7, 4
                )
            else:
                x0, y0 = rng.integers(0, 80, 2)
                box = np.array([x0, y0, x0 + rng.integers(1, 60), y0 + rng.integers(1, 60)])
            score = float(rng.integers(0, 4)) / 3 if seed % 3 == 0 else float(rng.random())
            detections.append((image_id, score, [float(v) for v in box]))
    return detections, annotations


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # degenerate boxes: 0/0 in both
@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("metric", VOC_AP_METRICS)
def test_vectorised_matching_equals_the_loop(seed, metric):
    detections, annotations = _case(seed)
    thresholds = [t / 100.0 for t in VOC_IOU_THRESHOLDS]
    ours = _voc_eval_thresholds(detections, annotations, thresholds, metric)
    ref = _reference(detections, annotations, thresholds, metric)
    for (rec, prec, ap), (rec_r, prec_r, ap_r) in zip(ours, ref):
        np.testing.assert_allclose(rec, rec_r, rtol=0, atol=1e-12)
        np.testing.assert_allclose(prec, prec_r, rtol=0, atol=1e-12)
        if np.isnan(ap_r):
            assert np.isnan(ap)
        else:
            assert abs(ap - ap_r) <= 1e-12


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_cases_exercise_every_branch():
    # TPs, duplicates / misses (FP) and difficult hits (left out) all occur across the cases.
    tps = dups = ignored = 0
    for seed in range(12):
        detections, annotations = _case(seed)
        rec, prec, _ = _voc_eval_thresholds(detections, annotations, [0.5], "area")[0]
        tps += (
            int(
                np.round(rec[-1] * sum(not o["difficult"] for v in annotations.values() for o in v))
            )
            if len(rec)
            else 0
        )
        dups += int(len(prec) and prec[-1] < 1)
        ignored += len(detections) - len(rec)
    assert tps > 0 and dups > 0 and ignored > 0


def test_detection_on_unknown_image_is_named():
    with pytest.raises(KeyError, match="'b'"):
        _voc_eval_thresholds(
            [("a", 0.9, [0, 0, 1, 1]), ("b", 0.5, [0, 0, 1, 1])], {"a": []}, [0.5], "area"
        )
