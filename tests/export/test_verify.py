"""Pairing exported detections with eager ones (resnet_det.export.verify)."""

import torch

from resnet_det.export import Tolerance, compare_detections

BOXES = torch.tensor([[10.0, 10.0, 50.0, 60.0], [30.0, 5.0, 90.0, 40.0], [0.0, 0.0, 20.0, 20.0]])
SCORES = torch.tensor([0.9, 0.6, 0.07])
LABELS = torch.tensor([0, 2, 0])
EAGER = (BOXES, SCORES, LABELS)


def test_identical_and_reordered_detections_pass():
    c = compare_detections(EAGER, EAGER)
    assert c.passed and c.num_matched == 3 and c.max_box_diff == 0 and c.max_score_diff == 0
    order = torch.tensor([1, 2, 0])
    moved = (BOXES[order] + 1e-3, SCORES[order] + 1e-5, LABELS[order])
    c = compare_detections(EAGER, moved)
    assert c.passed and c.num_matched == 3
    assert abs(c.max_box_diff - 1e-3) < 1e-6 and abs(c.max_score_diff - 1e-5) < 1e-7


def test_differences_beyond_the_tolerance_fail():
    c = compare_detections(EAGER, (BOXES + 0.05, SCORES, LABELS), tolerance=Tolerance(boxes=0.01))
    assert not c.passed and abs(c.max_box_diff - 0.05) < 1e-5  # float32 boxes
    c = compare_detections(EAGER, (BOXES, SCORES - 1e-3, LABELS))
    assert not c.passed and abs(c.max_score_diff - 1e-3) < 1e-7
    # Another class is not a partner, whatever the box.
    c = compare_detections(EAGER, (BOXES, SCORES, torch.tensor([1, 2, 0])))
    assert not c.passed and c.unexplained == 2


def test_a_missing_detection_passes_only_at_a_cutoff():
    # The 0.07 detection lost by the export: fine when 0.07 is the score threshold...
    kept = (BOXES[:2], SCORES[:2], LABELS[:2])
    assert compare_detections(EAGER, kept, score_thresh=0.07 - 1e-5).passed
    # ...a failure otherwise.
    c = compare_detections(EAGER, kept, score_thresh=0.05)
    assert not c.passed and c.unexplained == 1
    # The lowest kept score of a full list (max_detections) is a cut-off too.
    assert compare_detections(EAGER, kept, max_detections=3).passed
