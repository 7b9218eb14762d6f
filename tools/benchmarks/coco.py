"""COCO evaluation rows: our evaluator against plain pycocotools, on one generated problem.

The problem is COCO-like: ``num_images`` images with 0-14 objects each (5% crowd, COCO's 80
category ids, sizes over the small/medium/large ranges) and ``dets_per_image`` detections per
image, half near an object. Two rows:

- "COCO eval, tools/evaluate.py path": what ``tools/evaluate.py`` runs (read and check the
  results file, map them to the dataset, read the annotations, match, accumulate, summarise),
  with the default backend (faster-coco-eval) against the same path with pycocotools.
- "COCO eval, metric only": ``run_coco_eval`` against pycocotools' own COCO / loadRes /
  COCOeval on the same objects (the matching, accumulation and summary alone).
- "COCO segm eval, metric only" (row "coco_segm"): mask AP, ``run_coco_eval(iou_type="segm")``
  against pycocotools on polygons (ground truth) and RLE masks (results) drawn the same way.
- "COCO eval, end to end" and "COCO segm eval, end to end" (rows "coco_e2e" and
  "coco_segm_e2e"): whole processes, as a user sees them: ``python tools/evaluate.py
  --dataset coco_2017_val --results R --output O`` (start-up and imports included; the segm
  row adds ``--tasks segm``: mask AP alone, which is what the peer computes) against a
  Python script that loads the same files with pycocotools and runs COCOeval
  (:data:`PEER_SCRIPT`). The wall clock, or with ``clock="process"`` the CPU seconds of the
  child process; both sides' six AP numbers are compared (``max_abs_ap_diff``, as fractions).
- "COCO error analysis" (row "coco_errors"): ``analyze_errors`` (TIDE's dAP, cocoapi's
  analyze curves, the confusion matrix; no pictures) against the plain COCO evaluation
  (``run_coco_eval``) of the same objects: the analysis costs the ratio times the evaluation.

The AP of both sides is recorded with the row (``extra``): equal, as
tests/evaluation/test_fast_coco.py requires.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import resource
import subprocess
import sys
import time
import uuid
from typing import Any, Dict, List, Tuple

import numpy as np

from resnet_det.data.catalog import DatasetCatalog, MetadataCatalog
from resnet_det.data.datasets.builtin import COCO_CATEGORIES, register_coco_instances
from resnet_det.evaluation.coco_evaluation import COCOEvaluator, load_coco_gt
from resnet_det.evaluation.error_analysis import analyze_errors
from resnet_det.evaluation.fast_coco import run_coco_eval
from resnet_det.evaluation.results_file import read_results_file, score_results
from resnet_det.utils.bulk import collector_paused

from .harness import CLOCKS, BenchOptions, BenchRow, child_env, compare

__all__ = [
    "make_coco_problem",
    "make_segm_problem",
    "coco_rows",
    "coco_segm_rows",
    "coco_error_rows",
    "coco_e2e_rows",
    "PEER_SCRIPT",
]

TOOL = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "evaluate.py")
# The peer of the end-to-end rows: what a user of pycocotools runs on the same two files.
PEER_SCRIPT = """\
import json, sys
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

gt_path, results_path, iou_type, out_path = sys.argv[1:5]
gt = COCO(gt_path)
ev = COCOeval(gt, gt.loadRes(results_path), iou_type)
ev.evaluate()
ev.accumulate()
ev.summarize()
with open(out_path, "w") as f:
    json.dump([float(v) for v in ev.stats], f)
"""
# metrics.json's keys of COCOeval.stats[:6], in order (x 100; NaN where stats has -1).
STAT_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl")

COCO_CATEGORY_IDS = [i for i, _ in COCO_CATEGORIES]  # COCO's 80 ids


def make_coco_problem(
    folder: str, *, num_images: int, dets_per_image: int, seed: int = 0
) -> Tuple[str, str]:
    """Write ``gt.json`` (instances layout) and ``results.json`` (results format) under folder."""
    rng = np.random.default_rng(seed)
    images, anns, results = [], [], []
    for image_id in range(1, num_images + 1):
        width, height = 640, 480
        images.append(
            {"id": image_id, "width": width, "height": height, "file_name": f"{image_id:012d}.jpg"}
        )
        objects = []
        for _ in range(int(rng.integers(0, 15))):
            w, h = rng.uniform(4, 300, 2)
            x, y = rng.uniform(0, width - w), rng.uniform(0, height - h)
            ann = {
                "id": len(anns) + 1,
                "image_id": image_id,
                "bbox": [x, y, w, h],
                "area": w * h,
                "category_id": int(rng.choice(COCO_CATEGORY_IDS)),
                "iscrowd": int(rng.random() < 0.05),
            }
            anns.append(ann)
            objects.append(ann)
        for _ in range(dets_per_image):
            if objects and rng.random() < 0.5:
                obj = objects[int(rng.integers(len(objects)))]
                box = np.asarray(obj["bbox"]) + rng.normal(0, 5, 4)
                box[2:] = np.abs(box[2:]) + 1
                cat = obj["category_id"]
            else:
                w, h = rng.uniform(4, 300, 2)
                box = [rng.uniform(0, width - w), rng.uniform(0, height - h), w, h]
                cat = int(rng.choice(COCO_CATEGORY_IDS))
            results.append(
                {
                    "image_id": image_id,
                    "category_id": cat,
                    "bbox": [round(float(v), 2) for v in box],
                    "score": round(float(rng.random()), 4),
                }
            )
    return _write_problem(folder, "", images, anns, results)


def _write_problem(
    folder: str, suffix: str, images: list, anns: list, results: list
) -> Tuple[str, str]:
    """Write gt<suffix>.json (COCO_CATEGORY_IDS as categories) and results<suffix>.json."""
    categories = [{"id": c, "name": f"class{c}"} for c in COCO_CATEGORY_IDS]
    os.makedirs(folder, exist_ok=True)
    gt_path = os.path.join(folder, f"gt{suffix}.json")
    res_path = os.path.join(folder, f"results{suffix}.json")
    with open(gt_path, "w") as f:
        json.dump({"images": images, "annotations": anns, "categories": categories}, f)
    with open(res_path, "w") as f:
        json.dump(results, f)
    return gt_path, res_path


def _polygon(rng, x: float, y: float, w: float, h: float, vertices: int = 8) -> np.ndarray:
    """A star-shaped polygon inside the box (x, y, w, h), flat [x0, y0, x1, y1, ...]."""
    angles = np.sort(rng.uniform(0, 2 * np.pi, vertices))
    radii = rng.uniform(0.6, 1.0, vertices)
    px = x + w / 2 * (1 + radii * np.cos(angles))
    py = y + h / 2 * (1 + radii * np.sin(angles))
    return np.round(np.stack([px, py], axis=1).ravel(), 2)


def make_segm_problem(
    folder: str, *, num_images: int, dets_per_image: int, seed: int = 0
) -> Tuple[str, str]:
    """The mask version of :func:`make_coco_problem`: ground-truth polygons (``gt_segm.json``;
    crowd regions as RLE, as in COCO) and results as compressed RLE (``results_segm.json``),
    half of them a jittered copy of an object's polygon."""
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(seed)
    width, height = 640, 480
    images, anns, results = [], [], []
    for image_id in range(1, num_images + 1):
        images.append(
            {"id": image_id, "width": width, "height": height, "file_name": f"{image_id:012d}.jpg"}
        )
        polygons = []
        for _ in range(int(rng.integers(0, 15))):
            w, h = rng.uniform(8, 300, 2)
            x, y = rng.uniform(0, width - w), rng.uniform(0, height - h)
            poly = _polygon(rng, x, y, w, h)
            area = float(
                mask_utils.area(mask_utils.frPyObjects([poly.tolist()], height, width)).sum()
            )
            cat = int(rng.choice(COCO_CATEGORY_IDS))
            iscrowd = int(rng.random() < 0.05)
            segmentation: Any = [poly.tolist()]
            if iscrowd:  # COCO gives crowd regions as RLE
                rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
                segmentation = {"size": rle["size"], "counts": rle["counts"].decode("ascii")}
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": image_id,
                    "segmentation": segmentation,
                    "bbox": [x, y, w, h],
                    "area": area,
                    "category_id": cat,
                    "iscrowd": iscrowd,
                }
            )
            polygons.append((poly, cat))
        for _ in range(dets_per_image):
            if polygons and rng.random() < 0.5:
                poly, cat = polygons[int(rng.integers(len(polygons)))]
                poly = np.round(poly + rng.normal(0, 4, poly.shape), 2)
            else:
                w, h = rng.uniform(8, 300, 2)
                poly = _polygon(rng, rng.uniform(0, width - w), rng.uniform(0, height - h), w, h)
                cat = int(rng.choice(COCO_CATEGORY_IDS))
            rle = mask_utils.frPyObjects([poly.tolist()], height, width)[0]
            results.append(
                {
                    "image_id": image_id,
                    "category_id": cat,
                    "score": round(float(rng.random()), 4),
                    "segmentation": {"size": rle["size"], "counts": rle["counts"].decode("ascii")},
                }
            )
    return _write_problem(folder, "_segm", images, anns, results)


def _tool_path(dataset_name: str, results_file: str, backend: str) -> Dict[str, float]:
    """tools/evaluate.py's work (evaluate_results_file) with the given COCO backend."""

    evaluator = COCOEvaluator(dataset_name, distributed=False, backend=backend)
    with collector_paused():  # as evaluate_results_file: one pause, the file checked once
        return score_results(evaluator, dataset_name, read_results_file(results_file))["bbox"]


def _plain_pycocotools(
    gt_path: str, results: List[Dict[str, Any]], iou_type: str = "bbox"
) -> float:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(gt_path)
        ev = COCOeval(gt, gt.loadRes([dict(r) for r in results]), iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[0])


def coco_rows(
    folder: str, opts: BenchOptions, *, num_images: int = 2000, dets_per_image: int = 100
) -> List[BenchRow]:
    """Both COCO rows on a problem generated under ``folder``."""

    gt_path, res_path = make_coco_problem(
        folder, num_images=num_images, dets_per_image=dets_per_image
    )
    name = f"benchmark_coco_{uuid.uuid4().hex[:8]}"
    register_coco_instances(name, {}, gt_path, folder)
    size = f"{num_images} images x {dets_per_image} detections"
    aps: Dict[str, float] = {}

    def tool(backend: str, key: str):
        def run() -> None:
            aps[key] = _tool_path(name, res_path, backend)["AP"]

        return run

    try:
        rows = [
            compare(
                "COCO eval, tools/evaluate.py path",
                tool("faster-coco-eval", "ours"),
                tool("pycocotools", "peer"),
                peer_name="same path with pycocotools",
                opts=opts,
                unit="s",
                note=size,
            )
        ]
        rows[0].extra.update(ours_AP=aps["ours"], peer_AP=aps["peer"])
    finally:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)

    with open(res_path) as f:
        results = json.load(f)

    def metric() -> None:
        aps["metric"] = float(
            run_coco_eval(load_coco_gt(gt_path), results, backend="faster-coco-eval").stats[0]
        )

    def plain() -> None:
        aps["plain"] = _plain_pycocotools(gt_path, results)

    rows.append(
        compare(
            "COCO eval, metric only",
            metric,
            plain,
            peer_name="pycocotools COCOeval",
            opts=opts,
            unit="s",
            note=size + " (load gt, loadRes, evaluate, accumulate, summarize)",
        )
    )
    rows[1].extra.update(ours_AP=100 * aps["metric"], peer_AP=100 * aps["plain"])
    return rows


def coco_segm_rows(
    folder: str, opts: BenchOptions, *, num_images: int = 2000, dets_per_image: int = 100
) -> List[BenchRow]:
    """Mask AP ("segm"): ``run_coco_eval(iou_type="segm")`` against pycocotools' own COCO /
    loadRes / COCOeval on a generated problem (:func:`make_segm_problem`)."""

    gt_path, res_path = make_segm_problem(
        folder, num_images=num_images, dets_per_image=dets_per_image
    )
    with open(res_path) as f:
        results = json.load(f)
    aps: Dict[str, float] = {}

    def metric() -> None:
        result = run_coco_eval(
            load_coco_gt(gt_path), results, iou_type="segm", backend="faster-coco-eval"
        )
        aps["ours"] = float(result.stats[0])

    def plain() -> None:
        aps["peer"] = _plain_pycocotools(gt_path, results, "segm")

    row = compare(
        "COCO segm eval, metric only",
        metric,
        plain,
        peer_name="pycocotools COCOeval (segm)",
        opts=opts,
        unit="s",
        note=f"{num_images} images x {dets_per_image} RLE masks "
        "(load gt, loadRes, evaluate, accumulate, summarize)",
    )
    row.extra.update(ours_AP=100 * aps["ours"], peer_AP=100 * aps["peer"])
    return [row]


def coco_error_rows(
    folder: str, opts: BenchOptions, *, num_images: int = 2000, dets_per_image: int = 100
) -> List[BenchRow]:
    """The error analysis (``analyze_errors``: TIDE's dAP, cocoapi's analyze curves, the
    confusion matrix; pictures not drawn) against the plain COCO evaluation (``run_coco_eval``
    with faster-coco-eval, the default) on the same ground truth and results
    (:func:`make_coco_problem`)."""

    gt_path, res_path = make_coco_problem(
        folder, num_images=num_images, dets_per_image=dets_per_image
    )
    gt = load_coco_gt(gt_path)
    with open(res_path) as f:
        results = json.load(f)
    out: Dict[str, Any] = {}

    def analysis() -> None:
        out["analysis"] = analyze_errors(gt, results, iou_type="bbox")

    def evaluation() -> None:
        out["AP50"] = float(run_coco_eval(gt, results, backend="faster-coco-eval").stats[1])

    row = compare(
        "COCO error analysis",
        analysis,
        evaluation,
        peer_name="the plain COCO evaluation (faster-coco-eval)",
        opts=opts,
        unit="s",
        note=f"{num_images} images x {dets_per_image} detections (TIDE dAP, analyze curves, "
        "confusion matrix; no pictures)",
    )
    row.extra.update(
        tide_AP50=out["analysis"].tide.ap50,
        coco_AP50=100 * out["AP50"],
        **{k: round(v, 3) for k, v in out["analysis"].metrics().items()},
    )
    return [row]


def _timed_process(cmd: List[str], env: Dict[str, str]) -> Tuple[float, float]:
    """(wall seconds, CPU seconds of the child) of running ``cmd`` to completion."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.decode()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def coco_e2e_rows(
    folder: str,
    opts: BenchOptions,
    *,
    iou_type: str = "bbox",
    num_images: int = 2000,
    dets_per_image: int = 100,
) -> List[BenchRow]:
    """One end-to-end row: tools/evaluate.py as a process against :data:`PEER_SCRIPT`, taking
    turns, ``opts.repetitions`` times each (no warm-up: both start cold as a user's command
    does, with the files in the page cache after the first call)."""
    make = make_coco_problem if iou_type == "bbox" else make_segm_problem
    gt_path, res_path = make(folder, num_images=num_images, dets_per_image=dets_per_image)
    # The tool scores registered datasets: coco_2017_val (COCO's category names) under its own
    # datasets folder; the peer reads the same file.
    root = os.path.join(folder, f"datasets_{iou_type}")
    with open(gt_path) as f:
        gt = json.load(f)
    gt["categories"] = [{"id": i, "name": name} for i, name in COCO_CATEGORIES]
    gt_path = os.path.join(root, "coco", "annotations", "instances_val2017.json")
    os.makedirs(os.path.dirname(gt_path), exist_ok=True)
    with open(gt_path, "w") as f:
        json.dump(gt, f)
    peer_path = os.path.join(folder, "pycocotools_peer.py")
    with open(peer_path, "w") as f:
        f.write(PEER_SCRIPT)
    out_dir, peer_out = os.path.join(folder, f"out_{iou_type}"), os.path.join(folder, "peer.json")
    # The cache off: every turn reads the ground truth as a first run does.
    env = child_env(RESNET_DET_DATASETS=root, RESNET_DET_CACHE="off")
    commands = {
        # Mask AP alone, as the peer computes it (without --tasks the tool scores the boxes
        # of a mask results file too).
        "ours": [sys.executable, TOOL, "--dataset", "coco_2017_val", "--results", res_path]
        + ["--output", out_dir]
        + ([] if iou_type == "bbox" else ["--tasks", "segm"]),
        "peer": [sys.executable, peer_path, gt_path, res_path, iou_type, peer_out],
    }
    times: Dict[str, Dict[str, List[float]]] = {c: {"ours": [], "peer": []} for c in CLOCKS}
    for _ in range(opts.repetitions):
        for side, cmd in commands.items():
            wall, cpu = _timed_process(cmd, env)
            times["wall"][side].append(wall)
            times["process"][side].append(cpu)
    med = {c: {side: float(np.median(v)) for side, v in t.items()} for c, t in times.items()}
    other = "process" if opts.clock == "wall" else "wall"
    with open(os.path.join(out_dir, "metrics.json")) as f:
        metrics = json.load(f)
    with open(peer_out) as f:
        peer_stats = json.load(f)
    # metrics.json holds 100 x COCOeval's stats, NaN where stats has -1 (no ground truth).
    ours_stats = [
        -1.0 if math.isnan(v) else v / 100 for v in (metrics[f"{iou_type}/{k}"] for k in STAT_KEYS)
    ]
    what = "detections" if iou_type == "bbox" else "RLE masks"
    row = BenchRow(
        row="COCO eval, end to end" if iou_type == "bbox" else "COCO segm eval, end to end",
        unit="s",
        ours=med[opts.clock]["ours"],
        peer=med[opts.clock]["peer"],
        peer_name="a pycocotools script (COCO, loadRes, COCOeval"
        + ("" if iou_type == "bbox" else " segm")
        + ")",
        ratio=med[opts.clock]["ours"] / med[opts.clock]["peer"],
        note=f"{num_images} images x {dets_per_image} {what}; whole processes "
        "(python tools/evaluate.py --dataset --results --output"
        + ("" if iou_type == "bbox" else " --tasks segm")
        + ")",
        extra={
            f"ours_{other}_s": med[other]["ours"],
            f"peer_{other}_s": med[other]["peer"],
            "ours_AP": 100 * ours_stats[0],
            "peer_AP": 100 * peer_stats[0],
            "max_abs_ap_diff": max(abs(a - b) for a, b in zip(ours_stats, peer_stats)),
            **{
                f"{side}_{c}_all": [round(v, 3) for v in times[c][side]]
                for c in CLOCKS
                for side in ("ours", "peer")
            },
        },
    )
    return [row]
