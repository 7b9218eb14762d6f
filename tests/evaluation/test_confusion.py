"""The confusion matrix (evaluation/confusion.py, mmdetection's definition) on a hand-worked
image."""

import numpy as np

from resnet_det.evaluation.confusion import confusion_matrix
from resnet_det.evaluation.error_data import ErrorAnalysisData

from ._analyze_reference import _coco
from .test_coco_analyze import HAND_GT


def test_hand_worked():
    results = [
        {"image_id": 1, "category_id": 1, "score": 0.9, "bbox": [0, 0, 50, 50]},  # a on A1
        {"image_id": 1, "category_id": 2, "score": 0.8, "bbox": [100, 0, 50, 45]},  # b on A2
        {"image_id": 1, "category_id": 3, "score": 0.7, "bbox": [100, 100, 50, 50]},  # c on C1
        {"image_id": 1, "category_id": 3, "score": 0.2, "bbox": [0, 100, 50, 50]},  # below 0.3
        {"image_id": 1, "category_id": 2, "score": 0.6, "bbox": [60, 60, 20, 20]},  # background
        {"image_id": 1, "category_id": 1, "score": 0.5, "bbox": [150, 150, 40, 10]},  # IoU .25
    ]
    cm = confusion_matrix(ErrorAnalysisData.build(_coco(HAND_GT), results))
    expected = np.zeros((4, 4), int)
    expected[0, 0] = 1  # A1 found as a
    expected[0, 1] = 1  # A2 detected as b
    expected[2, 2] = 1  # C1 found as c
    expected[3, 1] = 1  # background detected as b
    expected[3, 0] = 1  # the IoU .25 detection overlaps nothing at 0.5: background
    expected[0, 3] = 2  # A2 and A3 missed (no detection of class a on them)
    expected[1, 3] = 1  # B1 missed (its detection scores below 0.3)
    np.testing.assert_array_equal(cm, expected)
