"""TIDE's error breakdown (evaluation/tide.py) equals tidecv's on randomised problems, boxes
and masks: every dAP, the AP50 and the error counts (ties in score, crowd regions, classes
without ground truth included)."""

import pytest

from resnet_det.evaluation.error_data import ErrorAnalysisData
from resnet_det.evaluation.tide import TIDE_MAIN_ERRORS, TIDE_SPECIAL_ERRORS, tide_errors

from ._analyze_reference import _coco
from ._error_problem import random_problem, tidecv_errors, write_problem

pytest.importorskip("tidecv", reason="tidecv (the reference) is not installed: pip install tidecv")

CASES = [("bbox", seed) for seed in range(6)] + [("segm", seed) for seed in range(3)]


@pytest.mark.parametrize("mode,seed", CASES)
def test_equals_tidecv(mode, seed, tmp_path):
    gt, results = random_problem(seed, masks=mode == "segm")
    gt_path, res_path = write_problem(tmp_path, gt, results)
    ref, ref_ap, ref_counts = tidecv_errors(gt_path, res_path, mode, counts=True)
    ours = tide_errors(ErrorAnalysisData.build(_coco(gt), results, iou_type=mode))
    assert ours.ap50 == pytest.approx(ref_ap, abs=1e-9)
    for k in TIDE_MAIN_ERRORS + TIDE_SPECIAL_ERRORS:
        assert ours.dap[k] == pytest.approx(ref[k], abs=1e-9), (k, ours.dap, ref)
    assert dict(ours.counts) == ref_counts


def test_problems_exercise_every_error():
    """The randomised problems are not degenerate: each error type occurs and costs AP."""
    totals = dict.fromkeys(TIDE_MAIN_ERRORS, 0.0)
    for mode, seed in CASES:
        gt, results = random_problem(seed, masks=mode == "segm")
        out = tide_errors(ErrorAnalysisData.build(_coco(gt), results, iou_type=mode))
        for k in TIDE_MAIN_ERRORS:
            totals[k] += out.dap[k]
            assert out.counts[k] > 0 or k == "miss"
    assert all(v > 0 for v in totals.values()), totals


def test_no_detections_is_all_missed():
    gt, _ = random_problem(0)
    out = tide_errors(ErrorAnalysisData.build(_coco(gt), [], iou_type="bbox"))
    assert out.ap50 == 0.0
    assert out.counts["miss"] == sum(1 for a in gt["annotations"] if not a["iscrowd"])
    assert out.dap["cls"] == out.dap["loc"] == out.dap["false_pos"] == 0.0
