"""Running COCO's metric: pycocotools (the reference) or faster-coco-eval (the same metric in C++).

pycocotools' ``COCOeval`` matches every (image, category, area range) in Python; on 2,000
images with 100 detections each that is most of an evaluation's time. faster-coco-eval
(``faster_coco_eval.COCOeval_faster``) implements the same matching and accumulation in C++
and gives the same numbers (tests/evaluation/test_fast_coco.py holds every summary metric and
the precision array equal to pycocotools' on randomised datasets, box and mask). Both are
driven through :func:`run_coco_eval`, which takes the IoU type as a parameter so that mask AP
("segm") goes the same way as box AP ("bbox").

Backends: "pycocotools" (the reference path), "faster-coco-eval", and "auto" (the default):
faster-coco-eval when it is installed (it is a dependency of this package), else pycocotools;
the log says which one ran.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from ..utils.bulk import collector_paused

__all__ = ["COCO_EVAL_BACKENDS", "CocoEvalResult", "resolve_backend", "run_coco_eval"]

logger = logging.getLogger(__name__)

COCO_EVAL_BACKENDS = ("auto", "faster-coco-eval", "pycocotools")
IOU_TYPES = ("bbox", "segm")
# COCOeval.stats holds these 12 numbers in this order for "bbox" and "segm" (faster-coco-eval
# appends AR50/AR75 after them; only the common 12 are returned).
NUM_SUMMARY_STATS = 12


@dataclass
class CocoEvalResult:
    """What one COCO evaluation gives.

    Attributes:
        stats: the 12 summary numbers (AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs,
            ARm, ARl) as fractions; -1 where there is no ground truth to measure against.
        precision: COCOeval's eval["precision"], [IoU thresholds, recall points, categories
            (sorted id order), area ranges, max dets]; -1 where undefined.
        summary: the summary table as the backend printed it.
        backend: "pycocotools" or "faster-coco-eval".
    """

    stats: np.ndarray
    precision: np.ndarray
    summary: str
    backend: str


def _faster_available() -> bool:
    try:
        import faster_coco_eval  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_backend(backend: str) -> str:
    """The backend that ``backend`` stands for ("auto" -> the fastest installed).

    Raises:
        ValueError: an unknown name.
        ImportError: "faster-coco-eval" asked for but not installed (the message says how).
    """
    if backend not in COCO_EVAL_BACKENDS:
        raise ValueError(
            f"COCO evaluation backend {backend!r}: expected one of {COCO_EVAL_BACKENDS}"
        )
    if backend == "auto":
        return "faster-coco-eval" if _faster_available() else "pycocotools"
    if backend == "faster-coco-eval" and not _faster_available():
        raise ImportError(
            "COCO evaluation backend 'faster-coco-eval' is not installed: "
            "pip install faster-coco-eval (or use backend 'pycocotools')"
        )
    return backend


def _check_iou_type(iou_type: str) -> None:
    if iou_type not in IOU_TYPES:
        raise ValueError(f"COCO evaluation iou_type {iou_type!r}: expected one of {IOU_TYPES}")


def _run_pycocotools(coco_gt, coco_results: List[Dict[str, Any]], iou_type: str):
    from pycocotools.cocoeval import COCOeval

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        coco_dt = coco_gt.loadRes(coco_results)
        coco_eval = COCOeval(coco_gt, coco_dt, iou_type)
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    # pycocotools' own progress lines come before the table; keep the table only.
    lines = [ln for ln in buf.getvalue().splitlines() if ln.startswith(" Average")]
    return coco_eval, "\n".join(lines)


def _faster_gt(coco_gt):
    """faster-coco-eval's COCO over the same ground truth as a pycocotools ``COCO``.

    The annotation dicts are copied one level deep: the evaluation writes keys into them
    ("ignore", and a mask's RLE for "segm") that the caller's object should not see.
    """
    from faster_coco_eval import COCO as FasterCOCO

    dataset = dict(coco_gt.dataset)
    dataset["annotations"] = [dict(a) for a in dataset.get("annotations", [])]
    return FasterCOCO(dataset, print_function=logger.debug)


def _faster_box_results(gt, coco_results: List[Dict[str, Any]]):
    """The results as loadRes makes them for boxes (area w * h, ids from 1, not crowd), without
    the box-shaped polygon loadRes also adds: box IoU never reads it, and making 100 of them
    per image costs about a quarter of the evaluation's time."""
    for i, r in enumerate(coco_results):
        w, h = r["bbox"][2], r["bbox"][3]
        r["area"], r["id"], r["iscrowd"] = w * h, i + 1, 0
    return _faster_results(gt, coco_results)


def _faster_mask_results(gt, coco_results: List[Dict[str, Any]], areas: Optional[np.ndarray]):
    """The results as loadRes makes them for masks (area of each RLE mask, ids from 1, not
    crowd), without the box loadRes also derives from each mask: mask IoU never reads it (a
    result's area comes from "area"), and decoding every mask once more for it would cost as
    much as computing the areas. ``areas`` (None: computed here, by faster-coco-eval's mask
    function for all masks in one call) are the ones the caller already has."""
    if areas is None:
        from faster_coco_eval.core import mask as mask_utils

        areas = mask_utils.area([r["segmentation"] for r in coco_results])
    for i, r in enumerate(coco_results):
        r["area"], r["id"], r["iscrowd"] = areas[i], i + 1, 0
    return _faster_results(gt, coco_results)


def _faster_results(gt, annotations: List[Dict[str, Any]]):
    """faster-coco-eval's COCO of prepared results over the images and categories of ``gt``."""
    from faster_coco_eval import COCO as FasterCOCO

    dt = FasterCOCO(print_function=logger.debug)
    dt.dataset = {
        "images": list(gt.dataset["images"]),
        "categories": list(gt.dataset["categories"]),
        "annotations": annotations,
    }
    dt.createIndex()
    return dt


# faster-coco-eval's default rle_iou_max_workers (COCOeval_faster's keyword).
_FASTER_RLE_IOU_WORKERS = 8


def _rle_iou_workers() -> int:
    """Threads for faster-coco-eval's mask IoU: its own default where cores are to spare, one
    on a machine of two or fewer, where the pool's threads and the main one share the cores
    and the GIL, and one thread was faster on both clocks (docs/benchmarks.md, "End to
    end")."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return 1 if cpus <= 2 else _FASTER_RLE_IOU_WORKERS


def _run_faster(
    coco_gt, coco_results: List[Dict[str, Any]], iou_type: str, mask_areas: Optional[np.ndarray]
):
    from faster_coco_eval import COCOeval_faster

    gt = _faster_gt(coco_gt)
    if iou_type == "bbox":
        dt = _faster_box_results(gt, coco_results)
    else:
        dt = _faster_mask_results(gt, coco_results, mask_areas)
    lines: List[str] = []
    coco_eval = COCOeval_faster(
        gt, dt, iou_type, print_function=logger.debug, rle_iou_max_workers=_rle_iou_workers()
    )
    coco_eval.evaluate()
    coco_eval.accumulate()
    coco_eval.print_function = lambda line: lines.append(str(line))
    coco_eval.summarize()
    return coco_eval, "\n".join(ln for ln in lines if ln.lstrip().startswith("Average"))


def _evaluate(
    coco_gt,
    coco_results: Sequence[Dict[str, Any]],
    iou_type: str,
    backend: str,
    mask_areas: Optional[np.ndarray],
):
    """(the backend's COCOeval after summarize, its summary table)."""
    # loadRes writes "area", "id" (and for boxes a polygon) into the entries: give it copies.
    results = [dict(r) for r in coco_results]
    if iou_type == "segm":
        # loadRes takes a result's area from its "bbox" when it has one, so that box areas
        # would decide small / medium / large; the mask's own area must (as detectron2 drops
        # "bbox" for mask AP).
        for r in results:
            r.pop("bbox", None)
    if backend == "faster-coco-eval":
        return _run_faster(coco_gt, results, iou_type, mask_areas)
    return _run_pycocotools(coco_gt, results, iou_type)


def run_coco_eval(
    coco_gt,
    coco_results: Sequence[Dict[str, Any]],
    *,
    iou_type: str = "bbox",
    backend: str = "auto",
    mask_areas: Optional[Sequence[float]] = None,
) -> CocoEvalResult:
    """Evaluate COCO-format results against ``coco_gt`` with COCO's metric.

    Args:
        coco_gt: the ground truth as a pycocotools ``COCO`` (every image of it counts).
        coco_results: non-empty list of COCO results entries (image_id, category_id, score and
            "bbox" [x, y, w, h] for "bbox", "segmentation" RLE for "segm"); not modified.
        iou_type: "bbox" (box AP) or "segm" (mask AP; a result's "bbox" is then left out,
            so that the mask's area, not the box's, puts it in small / medium / large).
        backend: "auto", "faster-coco-eval" or "pycocotools" (see the module docstring).
        mask_areas: for "segm", each result's mask area in pixels as pycocotools'
            mask.area gives it, when the caller has them (the check of a results file's
            masks decodes every mask and counts them): not computed again. None: computed.
            pycocotools' loadRes always computes its own.
    """
    _check_iou_type(iou_type)
    if len(coco_results) == 0:
        raise ValueError("run_coco_eval: no results (the COCO tools cannot load an empty list)")
    areas = None
    if mask_areas is not None and iou_type == "segm":
        areas = np.asarray(mask_areas)
        if areas.shape != (len(coco_results),):
            raise ValueError(
                f"run_coco_eval: {areas.shape[0] if areas.ndim else 'no'} mask areas for "
                f"{len(coco_results)} results"
            )
    name = resolve_backend(backend)
    with collector_paused():  # hundreds of thousands of entries and matches, no cycles
        coco_eval, summary = _evaluate(coco_gt, coco_results, iou_type, name, areas)
    stats = np.asarray(coco_eval.stats[:NUM_SUMMARY_STATS], dtype=np.float64)
    return CocoEvalResult(
        stats=stats,
        precision=np.asarray(coco_eval.eval["precision"]),
        summary=summary,
        backend=name,
    )
