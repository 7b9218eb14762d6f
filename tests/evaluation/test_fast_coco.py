"""faster-coco-eval gives pycocotools' numbers: every summary metric, the precision array and the
per-category APs, on randomised datasets (crowd and ignore flags, small/medium/large objects and
areas on the range borders, more than 100 detections per image, tied scores, images without
ground truth or without detections, categories without ground truth), for boxes and masks.
Speed is measured in tools/benchmark.py, not here."""

import contextlib
import copy
import io
import math

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from resnet_det.evaluation.coco_evaluation import evaluate_coco_results
from resnet_det.evaluation.fast_coco import resolve_backend, run_coco_eval

pytest.importorskip("faster_coco_eval")  # a dependency in pyproject; skip only a broken install


def _coco(dataset):
    api = COCO()
    api.dataset = copy.deepcopy(dataset)
    with contextlib.redirect_stdout(io.StringIO()):
        api.createIndex()
    return api


def _side(rng):
    # sqrt(area) on both sides of COCO's area range borders (32 and 96), and on them.
    return float(
        rng.choice([rng.uniform(2, 31), 32.0, rng.uniform(33, 95), 96.0, rng.uniform(97, 150)])
    )


def _polygon(x, y, w, h):
    # A quadrilateral inside the box, so mask and box areas differ.
    return [[x + w / 2, y, x + w, y + h / 2, x + w / 2, y + h, x, y + h / 2]]


def _random_problem(seed, *, num_images, num_cats, max_gt, max_dets, tied_scores, masks=False):
    """A ground truth dict and a results list (category ids not contiguous: 3, 6, 9, ...)."""
    rng = np.random.default_rng(seed)
    width, height = 200, 160
    images, anns, results = [], [], []
    for image_id in range(1, num_images + 1):
        images.append(
            {"id": image_id, "width": width, "height": height, "file_name": f"{image_id}.jpg"}
        )
        gts = []
        for _ in range(int(rng.integers(0, max_gt + 1))):
            side = _side(rng)
            w = min(side * rng.uniform(0.6, 1.6), width - 1)
            h = min(side * side / w, height - 1)
            x, y = rng.uniform(0, width - w), rng.uniform(0, height - h)
            ann = {
                "id": len(anns) + 1,
                "image_id": image_id,
                "category_id": 3 * int(rng.integers(1, num_cats + 1)),
                "bbox": [x, y, w, h],
                "area": w * h,
                "iscrowd": int(rng.random() < 0.1),
            }
            if masks:
                ann["segmentation"] = _polygon(x, y, w, h)
                ann["area"] = w * h / 2
            if rng.random() < 0.1:
                ann["ignore"] = 1  # COCOeval lets iscrowd decide: must be ignored the same way
            anns.append(ann)
            gts.append(ann)
        for _ in range(int(rng.integers(0, max_dets + 1))):
            if gts and rng.random() < 0.6:  # near an object, mostly of its category
                g = gts[int(rng.integers(len(gts)))]
                box = np.asarray(g["bbox"]) * (1 + rng.normal(0, 0.1, 4))
                box[2:] = np.abs(box[2:]) + 0.5
                cat = (
                    g["category_id"]
                    if rng.random() < 0.9
                    else 3 * int(rng.integers(1, num_cats + 1))
                )
            else:
                w, h = rng.uniform(1, 150, 2)
                box = [rng.uniform(0, width - 1), rng.uniform(0, height - 1), w, h]
                cat = 3 * int(rng.integers(1, num_cats + 1))
            box = [float(v) for v in box]
            score = float(rng.integers(0, 5) / 4) if tied_scores else float(rng.random())
            r = {"image_id": image_id, "category_id": cat, "score": score}
            if masks:
                rle = mask_utils.frPyObjects(_polygon(*box), height, width)[0]
                rle["counts"] = rle["counts"].decode("ascii")
                r["segmentation"] = rle
            else:
                r["bbox"] = box
            results.append(r)
    categories = [{"id": 3 * c, "name": f"c{c}"} for c in range(1, num_cats + 1)]
    return {"images": images, "annotations": anns, "categories": categories}, results


CASES = [  # (seed, images, categories, max gt per image, max detections per image, tied scores)
    (0, 30, 4, 6, 8, False),
    (1, 12, 3, 6, 150, True),  # > 100 detections per image: maxDets cuts, ties broken alike
    (2, 25, 5, 1, 30, False),  # many images without ground truth
    (3, 8, 1, 8, 150, False),
    (4, 20, 6, 3, 2, True),  # few detections: many images without any
    (5, 1, 2, 5, 120, False),  # a single image
]


def _assert_equal(gt, results, iou_type):
    ref = run_coco_eval(_coco(gt), results, iou_type=iou_type, backend="pycocotools")
    fast = run_coco_eval(_coco(gt), results, iou_type=iou_type, backend="faster-coco-eval")
    assert (ref.backend, fast.backend) == ("pycocotools", "faster-coco-eval")
    assert ref.stats.shape == fast.stats.shape == (12,)
    np.testing.assert_allclose(fast.stats, ref.stats, rtol=0, atol=1e-6)
    np.testing.assert_allclose(fast.precision, ref.precision, rtol=0, atol=1e-6)
    return ref


@pytest.mark.parametrize("case", CASES, ids=[f"seed{c[0]}" for c in CASES])
def test_box_ap_equal_to_pycocotools(case):
    seed, num_images, num_cats, max_gt, max_dets, tied = case
    gt, results = _random_problem(
        seed,
        num_images=num_images,
        num_cats=num_cats,
        max_gt=max_gt,
        max_dets=max_dets,
        tied_scores=tied,
    )
    ref = _assert_equal(gt, results, "bbox")
    # The cases are not degenerate: some AP is neither 0 nor undefined.
    assert ref.stats[0] > 0

    # The evaluator's own metrics (percent, per category, NaN for undefined) agree too.
    by_backend = {
        b: evaluate_coco_results(_coco(gt), results, backend=b)
        for b in ("pycocotools", "faster-coco-eval")
    }
    ref_m, fast_m = by_backend["pycocotools"], by_backend["faster-coco-eval"]
    assert list(ref_m) == list(fast_m)
    for key in ref_m:
        if math.isnan(ref_m[key]):
            assert math.isnan(fast_m[key]), key
        else:
            assert fast_m[key] == pytest.approx(ref_m[key], abs=1e-4), key  # percent: 1e-6 of 100


def test_category_without_ground_truth_is_nan_in_both():
    gt, results = _random_problem(
        7, num_images=10, num_cats=3, max_gt=4, max_dets=10, tied_scores=False
    )
    gt["annotations"] = [a for a in gt["annotations"] if a["category_id"] != 9]
    metrics = {
        b: evaluate_coco_results(_coco(gt), results, backend=b)
        for b in ("pycocotools", "faster-coco-eval")
    }
    assert math.isnan(metrics["pycocotools"]["AP-c3"]) and math.isnan(
        metrics["faster-coco-eval"]["AP-c3"]
    )
    assert metrics["faster-coco-eval"]["AP"] == pytest.approx(
        metrics["pycocotools"]["AP"], abs=1e-4
    )


def test_only_crowd_ground_truth():
    gt, results = _random_problem(
        8, num_images=6, num_cats=2, max_gt=5, max_dets=20, tied_scores=False
    )
    for a in gt["annotations"]:
        a["iscrowd"] = 1
    ref = _assert_equal(gt, results, "bbox")
    assert (ref.stats == -1).all()  # nothing to find: every metric undefined


@pytest.mark.parametrize("seed", [10, 11])
def test_mask_ap_equal_to_pycocotools(seed):
    gt, results = _random_problem(
        seed,
        num_images=10,
        num_cats=3,
        max_gt=5,
        max_dets=30,
        tied_scores=bool(seed % 2),
        masks=True,
    )
    ref = _assert_equal(gt, results, "segm")
    assert ref.stats[0] > 0


def test_given_mask_areas_are_the_ones_scored():
    gt, results = _random_problem(
        10, num_images=10, num_cats=3, max_gt=5, max_dets=30, tied_scores=False, masks=True
    )
    ref = run_coco_eval(_coco(gt), results, iou_type="segm", backend="pycocotools")
    areas = mask_utils.area([dict(r["segmentation"]) for r in results])
    given = run_coco_eval(
        _coco(gt), results, iou_type="segm", backend="faster-coco-eval", mask_areas=areas
    )
    np.testing.assert_allclose(given.stats, ref.stats, rtol=0, atol=1e-6)
    np.testing.assert_allclose(given.precision, ref.precision, rtol=0, atol=1e-6)
    # They are used, not recomputed: every detection called large moves APs / APm / APl.
    large = run_coco_eval(
        _coco(gt),
        results,
        iou_type="segm",
        backend="faster-coco-eval",
        mask_areas=np.full(len(results), 10**6),
    )
    assert large.stats[5] != ref.stats[5] or large.stats[3] != ref.stats[3]
    with pytest.raises(ValueError, match=f"{len(results) - 1} mask areas for {len(results)}"):
        run_coco_eval(
            _coco(gt),
            results,
            iou_type="segm",
            backend="faster-coco-eval",
            mask_areas=areas[:-1],
        )


def test_mask_iou_threads_follow_the_cores(monkeypatch):
    from resnet_det.evaluation import fast_coco

    monkeypatch.setattr(fast_coco.os, "sched_getaffinity", lambda pid: {0, 1})
    assert fast_coco._rle_iou_workers() == 1
    monkeypatch.setattr(fast_coco.os, "sched_getaffinity", lambda pid: set(range(16)))
    assert fast_coco._rle_iou_workers() == fast_coco._FASTER_RLE_IOU_WORKERS > 1


def test_empty_results_same_for_both_backends():
    gt, _ = _random_problem(12, num_images=4, num_cats=2, max_gt=3, max_dets=0, tied_scores=False)
    with pytest.raises(ValueError, match="no results"):
        run_coco_eval(_coco(gt), [], backend="faster-coco-eval")
    a = evaluate_coco_results(_coco(gt), [], backend="pycocotools")
    b = evaluate_coco_results(_coco(gt), [], backend="faster-coco-eval")
    assert a == b and a["AP"] == 0.0


def test_results_and_ground_truth_not_modified():
    gt, results = _random_problem(
        13, num_images=5, num_cats=2, max_gt=3, max_dets=5, tied_scores=False
    )
    api, before = _coco(gt), copy.deepcopy(results)
    anns_before = copy.deepcopy(api.dataset["annotations"])
    run_coco_eval(api, results, backend="faster-coco-eval")
    assert results == before
    assert api.dataset["annotations"] == anns_before


def test_backend_names():
    assert resolve_backend("auto") == "faster-coco-eval"
    assert resolve_backend("pycocotools") == "pycocotools"
    with pytest.raises(ValueError, match="pycocotools"):
        resolve_backend("fast")
    gt, results = _random_problem(
        14, num_images=2, num_cats=1, max_gt=2, max_dets=2, tied_scores=False
    )
    with pytest.raises(ValueError, match="iou_type"):
        run_coco_eval(_coco(gt), results, iou_type="keypoints")
