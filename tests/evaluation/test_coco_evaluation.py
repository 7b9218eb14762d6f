"""COCOEvaluator against pycocotools on a hand-worked two-image case."""

import json
import logging
import math

import pytest
import torch

from resnet_det.evaluation import COCOEvaluator, build_evaluator

# Contiguous labels: dog 0, cat 1 (see conftest: COCO ids 3 and 7).
DOG, CAT = 0, 1


def _out(boxes, scores, labels):
    return {
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "scores": torch.tensor(scores, dtype=torch.float32),
        "labels": torch.tensor(labels, dtype=torch.int64),
    }


def _inp(image_id):
    return {"image_id": image_id, "height": 100, "width": 100}


def _run(evaluator, per_image):
    evaluator.reset()
    for image_id, out in per_image.items():
        evaluator.process([_inp(image_id)], [out])
    return evaluator.evaluate()["bbox"]


# cat, ranked by score: d1 (.9) = G1 exactly (TP), d2 (.8) on image 12 overlapping G2 by
# 10x10 / (400 + 400 - 100) = 0.14 (FP), d3 (.7) = G2 exactly (TP). Two cat objects:
#   precision 1, 1/2, 2/3;  recall 1/2, 1/2, 1.
# COCO interpolates: precision at recall r is the best precision at recall >= r, read at the
# 101 recall points 0, .01, ..., 1: points 0 ... .50 (51 of them) -> 1, points .51 ... 1 (50)
# -> 2/3. AP = (51 + 50 * 2/3) / 101 = 83.498 %, the same at every IoU threshold (IoUs are 1 or
# 0.14).
CAT_AP = (51 + 50 * 2 / 3) / 101 * 100
# dog: one detection covering 20 x 13.6 of the 20 x 20 object: IoU 0.68 -> a TP at IoU
# thresholds .50, .55, .60, .65 (AP 100) and a miss at .70 ... .95 (AP 0): AP 40, AP50 100,
# AP75 0.
DOG_AP = 40.0
PREDICTIONS = {
    11: _out([[0, 0, 20, 20], [10, 40, 30, 53.6]], [0.9, 0.6], [CAT, DOG]),
    12: _out([[60, 60, 80, 80], [50, 50, 70, 70]], [0.8, 0.7], [CAT, CAT]),
}


def test_hand_worked_ap_through_pycocotools(coco_dataset, tmp_path):
    out_dir = tmp_path / "out"
    metrics = _run(
        COCOEvaluator(coco_dataset, output_dir=str(out_dir), distributed=False), PREDICTIONS
    )
    assert metrics["AP-cat"] == pytest.approx(CAT_AP, abs=1e-6)
    assert metrics["AP-dog"] == pytest.approx(DOG_AP, abs=1e-6)
    assert metrics["AP"] == pytest.approx((CAT_AP + DOG_AP) / 2, abs=1e-6)
    assert metrics["AP50"] == pytest.approx((CAT_AP + 100) / 2, abs=1e-6)
    assert metrics["AP75"] == pytest.approx((CAT_AP + 0) / 2, abs=1e-6)
    # Every object is small (20x20 < 32^2): APs is AP; no medium/large objects -> NaN.
    assert metrics["APs"] == pytest.approx(metrics["AP"], abs=1e-6)
    assert math.isnan(metrics["APm"]) and math.isnan(metrics["APl"])

    # The results file: XYWH boxes and the dataset's own category ids.
    written = json.loads((out_dir / "coco_instances_results.json").read_text())
    assert len(written) == 4
    first = next(r for r in written if r["image_id"] == 11 and r["category_id"] == 3)
    assert first["bbox"] == pytest.approx([10, 40, 20, 13.6], abs=1e-4)
    assert first["score"] == pytest.approx(0.6)
    assert {r["category_id"] for r in written} == {3, 7}
    assert not list(out_dir.glob("*.tmp"))  # written through a temporary file


def test_perfect_detections_give_100(coco_dataset):
    perfect = {
        11: _out([[0, 0, 20, 20], [10, 40, 30, 60]], [0.9, 0.8], [CAT, DOG]),
        12: _out([[50, 50, 70, 70]], [0.7], [CAT]),
    }
    metrics = _run(build_evaluator(coco_dataset, distributed=False), perfect)
    for key in ("AP", "AP50", "AP75", "APs", "AP-cat", "AP-dog"):
        assert metrics[key] == pytest.approx(100.0), key


def test_no_detections_give_0_with_warning(coco_dataset, caplog):
    empty = {11: _out([], [], []), 12: _out([], [], [])}
    with caplog.at_level(logging.WARNING):
        metrics = _run(COCOEvaluator(coco_dataset, distributed=False), empty)
    assert "No detections" in caplog.text
    for key in ("AP", "AP50", "AP75", "AP-cat", "AP-dog"):
        assert metrics[key] == 0.0, key


def test_label_outside_classes_names_image(coco_dataset):
    evaluator = COCOEvaluator(coco_dataset, distributed=False)
    with pytest.raises(ValueError, match=r"Image 12: label 5"):
        evaluator.process([_inp(12)], [_out([[0, 0, 5, 5]], [0.5], [5])])


def test_unknown_image_id_is_named(coco_dataset):
    evaluator = COCOEvaluator(coco_dataset, distributed=False)
    evaluator.process([_inp(99)], [_out([[0, 0, 5, 5]], [0.5], [CAT])])
    with pytest.raises(ValueError, match="image_id 99"):
        evaluator.evaluate()


def test_dataset_without_json_file_is_refused(register):
    name = register("eval_nojson", lambda: [], evaluator_type="coco")
    with pytest.raises(ValueError, match=f"{name}.*json_file"):
        COCOEvaluator(name)
