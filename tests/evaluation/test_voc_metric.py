"""The devkit's VOC metric on hand-worked cases (voc_ap, voc_eval_class)."""

import math

import numpy as np
import pytest
import torch
from torchvision.ops import box_iou

from resnet_det.evaluation import voc_ap, voc_eval_class

# A PR curve with 4 ground-truth objects and detections TP, FP, TP, TP:
#   recall    0.25  0.25  0.50  0.75
#   precision 1     1/2   2/3   3/4
REC = [0.25, 0.25, 0.50, 0.75]
PREC = [1.0, 0.5, 2 / 3, 0.75]


def test_voc_ap_area_under_curve_hand_worked():
    # Envelope (best precision at this recall or beyond): 1 up to recall .25, then 3/4 up to
    # .75, then 0. Area: .25 * 1 + .25 * .75 + .25 * .75 + .25 * 0 = 0.625.
    assert voc_ap(REC, PREC, use_07_metric=False) == pytest.approx(0.625, abs=1e-12)


def test_voc_ap_11_point_hand_worked():
    # Max precision at recall >= t: t = 0, .1, .2 -> 1 (3 points); t = .3 .. .7 -> 3/4
    # (5 points: the recalls .5 and .75 qualify); t = .8, .9, 1 -> 0 (never reached).
    # AP = (3 * 1 + 5 * 0.75) / 11 = 6.75 / 11.
    assert voc_ap(REC, PREC, use_07_metric=True) == pytest.approx(6.75 / 11, abs=1e-12)


def test_voc_ap_11_point_levels_are_detectron2s_and_exact_tenths_by_name():
    # 5 objects, three found with precision 1: recall 0.2, 0.4, 0.6. detectron2's and
    # py-faster-rcnn's levels np.arange(0, 1.1, 0.1) have 0.6000000000000001 as the 7th, which
    # recall 0.6 does not reach: t = 0 .. .5 count (6/11). With exact tenths t = .6 counts too.
    rec = np.array([1, 2, 3]) / 5
    assert np.arange(0.0, 1.1, 0.1)[6] > 0.6 and rec[-1] == 0.6
    assert voc_ap(rec, [1.0, 1.0, 1.0], use_07_metric=True) == pytest.approx(6 / 11, abs=1e-15)
    assert voc_ap(rec, [1.0, 1.0, 1.0], metric="11point") == pytest.approx(6 / 11, abs=1e-15)
    assert voc_ap(rec, [1.0, 1.0, 1.0], metric="11point_exact") == pytest.approx(7 / 11, abs=1e-15)
    # metric= wins over use_07_metric; unknown names are refused.
    assert voc_ap(rec, [1.0, 1.0, 1.0], use_07_metric=True, metric="area") == pytest.approx(0.6)
    with pytest.raises(ValueError, match="'11pt' is not one of"):
        voc_ap(rec, [1.0, 1.0, 1.0], metric="11pt")


def test_voc_ap_perfect_and_empty():
    assert voc_ap([0.5, 1.0], [1.0, 1.0], use_07_metric=False) == pytest.approx(1.0)
    assert voc_ap([0.5, 1.0], [1.0, 1.0], use_07_metric=True) == pytest.approx(1.0)
    assert voc_ap([], [], use_07_metric=False) == 0.0
    assert voc_ap([], [], use_07_metric=True) == 0.0
    with pytest.raises(ValueError, match="rec has 2 points, prec 1"):
        voc_ap([0.5, 1.0], [1.0])


def _gt(*boxes, difficult=()):
    return [{"bbox": list(b), "difficult": i in difficult} for i, b in enumerate(boxes)]


def test_detection_on_difficult_box_is_neither_tp_nor_fp():
    ann = {"a": _gt([1, 1, 10, 10], [21, 21, 30, 30], difficult=(1,))}
    dets = [("a", 0.9, [21, 21, 30, 30]), ("a", 0.8, [1, 1, 10, 10])]
    rec, prec, ap = voc_eval_class(dets, ann, 0.5, use_07_metric=False)
    # Only the second detection counts: 1 TP out of 1 non-difficult object. Had the first
    # been a FP, precision would be [0, 1/2] and AP 0.5; had it been a TP, recall would pass 1.
    np.testing.assert_allclose(rec, [1.0])
    np.testing.assert_allclose(prec, [1.0])
    assert ap == pytest.approx(1.0)
    # The difficult object does not count towards recall either: finding only it gives 0.
    rec, prec, ap = voc_eval_class(dets[:1], ann, 0.5, use_07_metric=False)
    assert len(rec) == 0 and ap == 0.0


def test_duplicate_detection_is_fp():
    ann = {"a": _gt([1, 1, 10, 10]), "b": _gt([5, 5, 20, 20])}
    dets = [("a", 0.9, [1, 1, 10, 10]), ("a", 0.8, [1, 1, 10, 10]), ("b", 0.7, [5, 5, 20, 20])]
    rec, prec, ap = voc_eval_class(dets, ann, 0.5, use_07_metric=False)
    # TP, FP (same object again), TP: recall .5 .5 1, precision 1 1/2 2/3.
    np.testing.assert_allclose(rec, [0.5, 0.5, 1.0])
    np.testing.assert_allclose(prec, [1.0, 0.5, 2 / 3])
    # AUC: .5 * 1 + .5 * 2/3 = 5/6. 11-point: t = 0...5 -> 1 (6), t = .6...1 -> 2/3 (5).
    assert ap == pytest.approx(5 / 6)
    assert voc_eval_class(dets, ann, 0.5, use_07_metric=True)[2] == pytest.approx(
        (6 + 5 * 2 / 3) / 11
    )


def test_detections_sorted_by_score_across_images():
    ann = {"a": _gt([1, 1, 10, 10]), "b": _gt([5, 5, 20, 20])}
    # Given in the wrong order: the FP (score .95) ranks first after sorting.
    dets = [("a", 0.5, [1, 1, 10, 10]), ("b", 0.6, [5, 5, 20, 20]), ("b", 0.95, [50, 50, 60, 60])]
    rec, prec, _ = voc_eval_class(dets, ann, 0.5)
    np.testing.assert_allclose(rec, [0.0, 0.5, 1.0])
    np.testing.assert_allclose(prec, [0.0, 0.5, 2 / 3])


def test_inclusive_pixel_iou_decides_a_match():
    # Ground truth covers pixels 1..10 x 1..10 (10 x 10 = 100 pixels in the devkit). The
    # detection 1..10 x 1..5.2 covers 10 x 5.2 = 52 of them: inclusive IoU 0.52 > 0.5, a TP.
    # In continuous coordinates (no +1) the same numbers give 9 * 4.2 / 81 = 0.467: a FP.
    gt_box, det_box = [1, 1, 10, 10], [1, 1, 10, 5.2]
    continuous = box_iou(
        torch.tensor([det_box], dtype=torch.float64), torch.tensor([gt_box], dtype=torch.float64)
    )
    assert continuous.item() == pytest.approx(9 * 4.2 / 81) and continuous.item() < 0.5
    rec, prec, ap = voc_eval_class([("a", 1.0, det_box)], {"a": _gt(gt_box)}, 0.5)
    assert (rec.tolist(), prec.tolist(), ap) == ([1.0], [1.0], 1.0)
    # At 0.55 the same detection misses (0.52 < 0.55).
    assert voc_eval_class([("a", 1.0, det_box)], {"a": _gt(gt_box)}, 0.55)[2] == 0.0


def test_threshold_is_strict_and_best_overlap_wins():
    # Inclusive IoU exactly 0.5 (50 of 100 pixels) is not a match ("ovmax > thresh").
    ann = {"a": _gt([1, 1, 10, 10], [1, 11, 10, 20])}
    rec, _, _ = voc_eval_class([("a", 1.0, [1, 1, 10, 5])], ann, 0.5)
    assert rec.tolist() == [0.0]
    # A box overlapping both objects is matched to the one it overlaps most (the second).
    rec, _, _ = voc_eval_class([("a", 1.0, [1, 4, 10, 20])], ann, 0.5)
    assert rec.tolist() == [0.5]


def test_class_without_ground_truth_is_nan_and_unknown_image_raises():
    rec, prec, ap = voc_eval_class([("a", 0.9, [1, 1, 5, 5])], {"a": []}, 0.5)
    assert math.isnan(ap) and prec.tolist() == [0.0]
    with pytest.raises(KeyError, match="'zzz'"):
        voc_eval_class([("zzz", 0.9, [1, 1, 5, 5])], {"a": []}, 0.5)
