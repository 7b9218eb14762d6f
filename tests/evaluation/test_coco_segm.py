"""Mask AP ("segm"): our COCOEvaluator, fed a Mask R-CNN's outputs (float [N, 1, H, W] mask
probabilities in the original image), equals pycocotools' own COCOeval(iouType="segm") run on
the same detections to 1e-6 on every summary metric, with either backend, on randomised
problems: ground truth as polygons (one or two parts), compressed and uncompressed RLE, crowd
regions as uncompressed RLE (as COCO gives them), objects on both sides of the small / medium /
large borders; predictions near objects, on crowd regions, random, empty, tied scores.

The reference is built here without our code: pycocotools reads the annotation json, the
binarised masks (> 0.5) are encoded with pycocotools.mask.encode, and loadRes gets entries
without "bbox" (with one, loadRes would take the box's area for small / medium / large; our
evaluator leaves the box out for mask AP, as detectron2 does).
"""

import contextlib
import io
import json
import math

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO

from resnet_det.evaluation import COCOEvaluator, flatten_results
from resnet_det.evaluation.coco_evaluation import COCO_BOX_METRICS
from resnet_det.evaluation.fast_coco import run_coco_eval

from ._segm_problem import CATEGORY_IDS, reference

BACKENDS = ["pycocotools", "faster-coco-eval"]


def _backend(name):
    if name == "faster-coco-eval":
        pytest.importorskip("faster_coco_eval")
    return name


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("seed", range(4))
def test_mask_ap_equals_pycocotools_cocoeval(segm_dataset, tmp_path, seed, backend):
    name, json_file, outputs = segm_dataset(seed)
    ref, ref_results = reference(json_file, outputs)
    assert ref.stats[0] > 0.01  # not a degenerate case
    assert any(a["iscrowd"] for a in json.load(open(json_file))["annotations"])

    out_dir = tmp_path / f"out_{backend}"
    evaluator = COCOEvaluator(
        name,
        output_dir=str(out_dir),
        distributed=False,
        backend=_backend(backend),
        tasks=("bbox", "segm"),
    )
    evaluator.reset()
    for inp, out in outputs.values():
        evaluator.process([inp], [out])
    results = evaluator.evaluate()
    assert list(results) == ["bbox", "segm"]
    segm = results["segm"]
    # Every AP of the summary (percent in our metrics) equals pycocotools' to 1e-6 ...
    for i, key in enumerate(COCO_BOX_METRICS):
        if ref.stats[i] < 0:
            assert math.isnan(segm[key]), key
        else:
            assert abs(segm[key] / 100 - ref.stats[i]) <= 1e-6, (key, segm[key], ref.stats[i])
    # ... and so does each category's AP.
    for k, cat in enumerate(CATEGORY_IDS):
        p = ref.eval["precision"][:, :, k, 0, -1]
        expected = p[p > -1].mean() if (p > -1).any() else float("nan")
        got = segm[f"AP-c{cat}"] / 100
        assert (math.isnan(got) and math.isnan(expected)) or abs(got - expected) <= 1e-6, cat

    # The written results hold pycocotools' own RLE of the binarised masks, beside the boxes;
    # all 12 summary numbers (AP and AR) of the backend on that file equal the reference's.
    written = json.loads((out_dir / "coco_instances_results.json").read_text())
    assert [w["segmentation"] for w in written] == [r["segmentation"] for r in ref_results]
    assert all(len(w["bbox"]) == 4 for w in written)
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(json_file)
    mine = run_coco_eval(gt, written, iou_type="segm", backend=backend)
    np.testing.assert_allclose(mine.stats, ref.stats[:12], rtol=0, atol=1e-6)
    np.testing.assert_allclose(mine.precision, ref.eval["precision"], rtol=0, atol=1e-6)
    assert set(flatten_results(results)) >= {f"segm/{k}" for k in COCO_BOX_METRICS}


def test_tasks_follow_the_outputs(segm_dataset):
    name, _, outputs = segm_dataset(5)
    auto = COCOEvaluator(name, distributed=False)
    for inp, out in outputs.values():
        auto.process([inp], [out])
    assert list(auto.evaluate()) == ["bbox", "segm"]

    boxes_only = COCOEvaluator(name, distributed=False, tasks=("bbox",))
    assert not boxes_only.scores_masks()
    for inp, out in outputs.values():
        boxes_only.process([inp], [out])
    assert list(boxes_only.evaluate()) == ["bbox"]


def test_missing_or_mixed_masks_are_named(segm_dataset):
    name, _, outputs = segm_dataset(6)
    (inp1, out1), (inp2, out2) = list(outputs.values())[:2]
    no_masks = {k: v for k, v in out2.items() if k != "masks"}
    told = COCOEvaluator(name, distributed=False, tasks=("bbox", "segm"))
    with pytest.raises(ValueError, match=r"image 2 has no 'masks'"):
        told.process([inp2], [no_masks])
    auto = COCOEvaluator(name, distributed=False)
    auto.process([inp1, inp2], [out1, no_masks])
    with pytest.raises(ValueError, match=r"image 1 has masks but the one for image 2 has none"):
        auto.evaluate()
    wrong_size = dict(out1, masks=out1["masks"][:, :, :-1])
    with pytest.raises(ValueError, match=r"Image 1's masks"):
        auto.process([inp1], [wrong_size])
    for tasks in ((), ("segm", "segm"), ("keypoints",)):
        with pytest.raises(ValueError, match="tasks"):
            COCOEvaluator(name, tasks=tasks)


def test_ground_truth_without_masks_is_named(coco_dataset):
    # conftest's dataset has boxes only: mask AP cannot be computed, and the error says where.
    evaluator = COCOEvaluator(coco_dataset, distributed=False, tasks=("bbox", "segm"))
    masks = torch.zeros((1, 1, 100, 100))
    masks[0, 0, :20, :20] = 1
    evaluator.process(
        [{"image_id": 11, "height": 100, "width": 100}],
        [
            {
                "boxes": torch.tensor([[0.0, 0, 20, 20]]),
                "scores": torch.tensor([0.9]),
                "labels": torch.tensor([1]),
                "masks": masks,
            }
        ],
    )
    with pytest.raises(
        ValueError, match=r"instances.json: annotation id 1 \(image id 11\) has no 'segmentation'"
    ):
        evaluator.evaluate()
