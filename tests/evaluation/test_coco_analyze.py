"""cocoapi's analyze curves (evaluation/coco_analyze.py): C75 / C50 / Loc equal pycocotools'
precision at IoU .75 / .5 / .1, Sim and Oth equal COCOeval run as the Matlab analyze runs it
(the other categories' objects ignored, not removed), on randomised problems; and one
hand-worked case for every curve."""

import numpy as np
import pytest

from resnet_det.evaluation.coco_analyze import CURVES, REC_THRS, analyze_curves
from resnet_det.evaluation.error_data import ErrorAnalysisData

from ._analyze_reference import _coco, reference_analyze
from ._error_problem import random_problem


@pytest.mark.parametrize("mode,seed", [("bbox", 0), ("bbox", 1), ("bbox", 2), ("segm", 0)])
def test_equals_cocoapi_analyze(mode, seed):
    gt, results = random_problem(seed, num_images=8, masks=mode == "segm")
    ref = reference_analyze(gt, results, mode)
    curves = analyze_curves(ErrorAnalysisData.build(_coco(gt), results, iou_type=mode))
    np.testing.assert_array_equal(curves.raw, ref)
    # The settings do differ on these problems (else the test would not tell them apart).
    assert (ref[3] != ref[2]).any() and (ref[4] != ref[3]).any() and (ref[1] != ref[0]).any()
    # The plotted curves: undefined -> 0, BG = Oth > 0, FN = 1; each above the previous.
    p = curves.precision
    np.testing.assert_array_equal(p[:5], np.where(ref == -1, 0, ref))
    np.testing.assert_array_equal(p[5], p[4] > 0)
    assert (p[6] == 1).all()
    assert (np.diff(p, axis=0) >= -1e-12).all()


# One 200x200 image. Category a (id 1) and b (id 2) share supercategory X; c (id 3) is Y.
HAND_GT = {
    "images": [{"id": 1, "width": 200, "height": 200, "file_name": "1.png"}],
    "categories": [
        {"id": 1, "name": "a", "supercategory": "X"},
        {"id": 2, "name": "b", "supercategory": "X"},
        {"id": 3, "name": "c", "supercategory": "Y"},
    ],
    "annotations": [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 50, 50]},  # A1
        {"id": 2, "image_id": 1, "category_id": 1, "bbox": [100, 0, 50, 50]},  # A2
        {"id": 3, "image_id": 1, "category_id": 2, "bbox": [0, 100, 50, 50]},  # B1
        {"id": 4, "image_id": 1, "category_id": 3, "bbox": [100, 100, 50, 50]},  # C1
        {"id": 5, "image_id": 1, "category_id": 1, "bbox": [150, 150, 40, 40]},  # A3
    ],
}
for _a in HAND_GT["annotations"]:
    _a.update(area=_a["bbox"][2] * _a["bbox"][3], iscrowd=0)
HAND_RESULTS = [  # all of category a
    {"image_id": 1, "category_id": 1, "score": 0.9, "bbox": [0, 0, 50, 50]},  # A1, IoU 1
    {"image_id": 1, "category_id": 1, "score": 0.8, "bbox": [100, 0, 50, 30]},  # A2, IoU .6
    {"image_id": 1, "category_id": 1, "score": 0.7, "bbox": [0, 100, 50, 50]},  # on B1
    {"image_id": 1, "category_id": 1, "score": 0.6, "bbox": [100, 100, 50, 50]},  # on C1
    {"image_id": 1, "category_id": 1, "score": 0.5, "bbox": [150, 150, 40, 10]},  # A3, IoU .25
    {"image_id": 1, "category_id": 1, "score": 0.4, "bbox": [60, 60, 20, 20]},  # background
]


def test_hand_worked():
    """Category a, 3 objects, detections d1..d6 (score order), per curve (T = true positive,
    F = false positive, - = ignored):

        C75: T F F F F F  -> precision 1 up to recall 1/3
        C50: T T F F F F  -> 1 up to 2/3
        Loc: T T F F T F  -> 1 up to 2/3, then 3/5 (d5 at IoU .25 finds A3)
        Sim: T T - F T F  -> 1 up to 2/3, then 3/4 (d3 on b, a similar class, forgiven)
        Oth: T T - - T F  -> 1 up to recall 1 (d4 on c forgiven too)
        BG: 1 where Oth > 0; FN: 1.
    """
    curves = analyze_curves(ErrorAnalysisData.build(_coco(HAND_GT), HAND_RESULTS))
    r = REC_THRS
    expected = {
        "C75": np.where(r <= 1 / 3, 1.0, 0.0),
        "C50": np.where(r <= 2 / 3, 1.0, 0.0),
        "Loc": np.where(r <= 2 / 3, 1.0, 0.6),
        "Sim": np.where(r <= 2 / 3, 1.0, 0.75),
        "Oth": np.ones_like(r),
        "BG": np.ones_like(r),
        "FN": np.ones_like(r),
    }
    for i, name in enumerate(CURVES):
        np.testing.assert_allclose(curves.precision[i, :, 0, 0], expected[name], atol=1e-12)
    # Legend numbers (area under each curve): 34/101, 67/101, (67 + 34 * .6)/101, ...
    aps = curves.aps(0)[:, 0]
    np.testing.assert_allclose(
        aps[:5], [34 / 101, 67 / 101, (67 + 34 * 0.6) / 101, (67 + 34 * 0.75) / 101, 1.0]
    )
    # Categories b and c have no detections: their curves are 0 up to Oth, BG 0, FN 1.
    assert (curves.precision[:6, :, 1:, 0] == 0).all() and (curves.precision[6] == 1).all()
    # All objects are medium: small and large are undefined (-1) in the raw precisions.
    assert (curves.raw[:, :, 0, 1] == -1).all() and (curves.raw[:, :, 0, 3] == -1).all()
    np.testing.assert_array_equal(curves.raw[:, :, 0, 2], curves.raw[:, :, 0, 0])
    np.testing.assert_array_equal(curves.raw, reference_analyze(HAND_GT, HAND_RESULTS, "bbox"))
    # TensorBoard's counts come from C50: d1, d2 true positives, 3 objects.
    pr = curves.pr[0]
    assert pr.num_gt == 3 and pr.tp.tolist() == [True, True, False, False, False, False]


def test_pr_counts_for_tensorboard():
    """The hand-worked case's C50 detections (scores .9 ... .4; d1, d2 true) as TensorBoard's
    counts at the thresholds 0, .05, ..., 1."""
    curves = analyze_curves(ErrorAnalysisData.build(_coco(HAND_GT), HAND_RESULTS))
    c = curves.pr[0].threshold_counts(21)
    t = {round(x, 2): i for i, x in enumerate(np.linspace(0, 1, 21))}
    assert (c["true_positive_counts"][t[0.0]], c["false_positive_counts"][t[0.0]]) == (2, 4)
    assert (c["true_positive_counts"][t[0.45]], c["false_positive_counts"][t[0.45]]) == (2, 3)
    assert (c["true_positive_counts"][t[0.85]], c["false_positive_counts"][t[0.85]]) == (1, 0)
    assert c["true_positive_counts"][t[0.95]] == 0 and c["precision"][t[0.95]] == 0
    np.testing.assert_array_equal(c["false_negative_counts"], 3 - c["true_positive_counts"])
    assert c["precision"][t[0.45]] == pytest.approx(2 / 5)
    assert c["recall"][t[0.85]] == pytest.approx(1 / 3)
