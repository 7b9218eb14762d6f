"""COCO box AP ("bbox") and mask AP ("segm"): the official COCO metric, pycocotools' COCOeval
or faster-coco-eval's C++ implementation of it, which gives the same numbers (fast_coco.py).

Detections are turned into COCO's results format (XYWH boxes, the dataset's own category ids,
and for a model with masks the binarised mask as compressed RLE), optionally written to
``coco_instances_results.json``, and scored against the dataset's annotation json. AP values
are reported in percent, as detectron2 does.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections import OrderedDict
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from iopath.common.file_io import g_pathmgr
from pycocotools.coco import COCO

from ..data.catalog import DatasetCatalog, MetadataCatalog
from ..utils.comm import all_gather, get_world_size, is_main_process
from ..utils.errors import DataError, MissingFileError
from ..utils.file_io import atomic_write_json
from .error_analysis import analyze_errors
from .error_report import write_error_report
from .evaluator import DatasetEvaluator
from .fast_coco import IOU_TYPES, resolve_backend, run_coco_eval
from .masks import binarize_masks, encode_masks

__all__ = ["COCOEvaluator", "evaluate_coco_results", "instances_to_coco_json", "load_coco_gt"]

logger = logging.getLogger(__name__)

# COCOeval.stats order for boxes and masks alike; the first six are AP numbers.
COCO_BOX_METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl")


def load_coco_gt(json_file: str) -> COCO:
    """Read a COCO annotation file with pycocotools (its chatter goes to the debug log)."""
    if not g_pathmgr.exists(json_file):
        raise MissingFileError(f"COCO annotation file {json_file!r} does not exist")
    local = g_pathmgr.get_local_path(json_file)
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):
            coco = COCO(local)
    except Exception as e:  # pycocotools raises bare json / key errors: say which file
        raise DataError(f"Cannot read COCO annotations {json_file!r}: {e}") from e
    logger.debug(buf.getvalue())
    return coco


def instances_to_coco_json(
    boxes_xyxy: np.ndarray,
    scores: np.ndarray,
    labels: np.ndarray,
    image_id: Any,
    contiguous_to_dataset_id: Sequence[int],
    segmentations: Optional[Sequence[Dict[str, Any]]] = None,
) -> List[Dict[str, Any]]:
    """One image's detections in COCO's results format.

    Args:
        boxes_xyxy: float [N, 4] boxes, XYXY in original image coordinates.
        scores: float [N].
        labels: int [N] contiguous 0-based labels.
        image_id: the dataset's id of the image.
        contiguous_to_dataset_id: dataset category id of each contiguous label.
        segmentations: None, or N compressed RLE masks ({"size", "counts": str}, e.g. from
            masks.encode_masks), written as each entry's "segmentation".
    """
    boxes_xyxy = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    labels = np.asarray(labels).reshape(-1)
    if not (len(boxes_xyxy) == len(scores) == len(labels)):
        raise ValueError(
            f"Image {image_id!r}: {len(boxes_xyxy)} boxes, {len(scores)} scores and "
            f"{len(labels)} labels; they must match"
        )
    num_classes = len(contiguous_to_dataset_id)
    bad = (labels < 0) | (labels >= num_classes)
    if bad.any():
        raise ValueError(
            f"Image {image_id!r}: label {int(labels[bad][0])} outside [0, {num_classes}) "
            "(the dataset's number of classes)"
        )
    xywh = boxes_xyxy.copy()
    xywh[:, 2:] -= xywh[:, :2]
    # tolist() gives the same Python floats / ints as float() / int() per element, at numpy speed.
    category_ids = np.asarray(contiguous_to_dataset_id, dtype=np.int64)[labels.astype(np.int64)]
    entries = [
        {"image_id": image_id, "category_id": category_id, "bbox": box, "score": score}
        for box, score, category_id in zip(xywh.tolist(), scores.tolist(), category_ids.tolist())
    ]
    if segmentations is not None:
        if len(segmentations) != len(entries):
            raise ValueError(
                f"Image {image_id!r}: {len(segmentations)} masks for {len(entries)} boxes"
            )
        for entry, segm in zip(entries, segmentations):
            entry["segmentation"] = segm
    return entries


def _check_gt_masks(coco_gt: COCO, source: str) -> None:
    """Mask AP needs every annotation's mask: pycocotools would stop on the first without one
    with a bare KeyError."""
    for ann in coco_gt.dataset.get("annotations", []):
        if not ann.get("segmentation"):
            raise DataError(
                f"{source}: annotation id {ann.get('id')!r} (image id {ann.get('image_id')!r}) has "
                "no "
                "'segmentation'; mask AP (segm) needs the mask of every annotation: evaluate boxes "
                "only (MODEL.MASK_ON False) or use annotations with masks"
            )


def evaluate_coco_results(
    coco_gt: COCO,
    coco_results: List[Dict[str, Any]],
    class_names: Optional[Sequence[str]] = None,
    *,
    iou_type: str = "bbox",
    backend: str = "auto",
    source: str = "the ground truth",
    mask_areas: Optional[Sequence[float]] = None,
) -> OrderedDict[str, float]:
    """AP metrics of ``coco_results`` against ``coco_gt`` (every image of coco_gt counts).

    Args:
        coco_gt: ground truth.
        coco_results: COCO results entries (image_id, category_id, score, and bbox XYWH for
            "bbox" or an RLE "segmentation" for "segm").
        class_names: names of coco_gt's categories in sorted-id order, for the per-category
            "AP-<name>" entries (None: the categories' own "name" fields).
        iou_type: "bbox" (box AP) or "segm" (mask AP).
        backend: "auto" (faster-coco-eval when installed), "faster-coco-eval" or
            "pycocotools" (the reference); every backend gives the same numbers.
        source: how errors refer to coco_gt (e.g. its json file).
        mask_areas: for "segm", each result's mask area when the caller has them
            (run_coco_eval); None: computed.

    For "segm" a result's "bbox" is not used (run_coco_eval): its mask's area decides
    small / medium / large, as in detectron2.

    Returns:
        AP, AP50, AP75, APs, APm, APl and AP-<class> in percent; NaN where COCOeval has no
        ground truth to measure against (e.g. APs without small objects).
    """
    cat_ids = sorted(coco_gt.getCatIds())
    if class_names is None:
        class_names = [coco_gt.cats[c]["name"] for c in cat_ids]
    if len(class_names) != len(cat_ids):
        raise ValueError(
            f"{len(class_names)} class names for {len(cat_ids)} categories in the ground truth"
        )
    if iou_type not in IOU_TYPES:
        raise ValueError(f"COCO evaluation iou_type {iou_type!r}: expected one of {IOU_TYPES}")
    if iou_type == "segm":
        _check_gt_masks(coco_gt, source)

    if len(coco_results) == 0:
        # pycocotools cannot load an empty results list; the metric is 0 by definition
        # (nothing found), NaN only where there is nothing to find.
        logger.warning("No detections to evaluate: every AP is 0.")
        metrics: OrderedDict[str, float] = OrderedDict((k, 0.0) for k in COCO_BOX_METRICS)
        for cat_id, name in zip(cat_ids, class_names):
            has_gt = len(coco_gt.getAnnIds(catIds=[cat_id], iscrowd=False)) > 0
            metrics[f"AP-{name}"] = 0.0 if has_gt else float("nan")
        return metrics

    gt_image_ids = set(coco_gt.getImgIds())
    image_ids = {r["image_id"] for r in coco_results}
    category_ids = {r["category_id"] for r in coco_results}
    # Checked as sets first (fast); the loop below only runs to name the first bad entry.
    if not (image_ids <= gt_image_ids and category_ids <= coco_gt.cats.keys()):
        for i, r in enumerate(coco_results):
            if r["image_id"] not in gt_image_ids:
                raise DataError(
                    f"Detection {i}: image_id {r['image_id']!r} is not in the ground truth"
                )
            if r["category_id"] not in coco_gt.cats:
                raise DataError(
                    f"Detection {i}: category_id {r['category_id']!r} is not in the ground truth"
                )
    if iou_type == "segm":
        missing = next((i for i, r in enumerate(coco_results) if "segmentation" not in r), None)
        if missing is not None:
            raise DataError(
                f"Detection {missing} has no 'segmentation': mask AP needs a mask for "
                "every detection"
            )

    result = run_coco_eval(
        coco_gt, coco_results, iou_type=iou_type, backend=backend, mask_areas=mask_areas
    )
    logger.info("COCO evaluation (%s, %s):\n%s", iou_type, result.backend, result.summary)

    stats = result.stats
    metrics = OrderedDict(
        (name, float(stats[i] * 100) if stats[i] >= 0 else float("nan"))
        for i, name in enumerate(COCO_BOX_METRICS)
    )
    # precision: [IoU thresholds, recall points, categories, area ranges, max dets];
    # area "all" (0) and the largest max-dets (-1) give the headline AP per category.
    precision = result.precision
    for k, name in enumerate(class_names):
        p = precision[:, :, k, 0, -1]
        p = p[p > -1]
        metrics[f"AP-{name}"] = float(np.mean(p) * 100) if p.size else float("nan")
    return metrics


class COCOEvaluator(DatasetEvaluator):
    """COCO box AP ("bbox") and, for a model with masks, mask AP ("segm") of a detector on a
    registered COCO-format dataset."""

    def __init__(
        self,
        dataset_name: str,
        output_dir: Optional[str] = None,
        distributed: bool = True,
        *,
        backend: str = "auto",
        tasks: Optional[Sequence[str]] = None,
        error_analysis: bool = False,
    ):
        """
        Args:
            dataset_name: a registered dataset whose metadata has json_file, thing_classes and
                thing_dataset_id_to_contiguous_id.
            output_dir: where to write coco_instances_results.json (None: not written).
            distributed: gather predictions from all ranks; rank 0 evaluates.
            backend: COCO metric implementation: "auto" (faster-coco-eval when installed),
                "faster-coco-eval" or "pycocotools" (the reference); same numbers from each.
            tasks: ("bbox",), ("bbox", "segm") (a Mask R-CNN, MODEL.MASK_ON) or ("segm",)
                (mask AP alone, as detectron2's COCOEvaluator(tasks=...)): "segm" then needs
                masks in every output. None: "bbox", and "segm" when the outputs carry masks.
            error_analysis: also run the error analyses of each task (error_analysis.py):
                the dAP metrics join the task's metrics, ``error_analyses`` keeps the rest,
                and with ``output_dir`` the pictures and report.html are written there.
        """
        resolve_backend(backend)  # an unknown or missing backend fails here, not after inference
        self._backend = backend
        if tasks is not None:
            tasks = tuple(tasks)
            if not tasks or not set(tasks) <= set(IOU_TYPES) or len(set(tasks)) != len(tasks):
                raise ValueError(
                    f"COCOEvaluator: tasks {tasks!r}; expected one or both of {IOU_TYPES}, e.g. "
                    "('bbox',), ('bbox', 'segm') or ('segm',)"
                )
        self._tasks: Optional[Tuple[str, ...]] = tasks

        self._dataset_name = dataset_name
        self._output_dir = output_dir
        self._distributed = distributed
        self._meta = MetadataCatalog.get(dataset_name)
        if not hasattr(self._meta, "json_file"):
            raise DataError(
                f"COCOEvaluator: dataset {dataset_name!r} has no metadata 'json_file'; "
                "register it with register_coco_instances (COCO-format json)"
            )
        self._json_file: str = self._meta.json_file
        self._contiguous_to_dataset_id: Optional[List[int]] = None  # resolved on first use
        self._class_names: List[str] = []
        self._coco_gt: Optional[COCO] = None  # read lazily: only rank 0 needs it
        self._predictions: List[Dict[str, Any]] = []
        self._mask_flags: List[Tuple[Any, bool]] = []  # (image id, whether its output had masks)
        # The masks' areas where every prediction came with them (results files: their check
        # counts them), so that the metric does not decode the masks again; None otherwise.
        self._mask_areas: Optional[List[np.ndarray]] = []
        self._error_analysis = bool(error_analysis)
        self.error_analyses: Dict[str, Any] = {}  # task -> ErrorAnalysis of the last evaluate()

    def results_category_ids(self) -> List[int]:
        """Dataset category id of each contiguous label, from the metadata the COCO reader
        records (docs/internals.md); reads the dataset once if nobody has loaded it yet."""
        if self._contiguous_to_dataset_id is not None:
            return self._contiguous_to_dataset_id
        keys = ("thing_classes", "thing_dataset_id_to_contiguous_id")
        if not all(hasattr(self._meta, k) for k in keys):
            DatasetCatalog.get(self._dataset_name)  # load_coco_json(..., dataset_name) sets them
        for key in keys:
            if not hasattr(self._meta, key):
                raise DataError(
                    f"COCOEvaluator: dataset {self._dataset_name!r} has no metadata {key!r} even "
                    "after loading it; its reader must record it (load_coco_json with dataset_name)"
                )
        id_map: Mapping[int, int] = self._meta.thing_dataset_id_to_contiguous_id
        if sorted(id_map.values()) != list(range(len(id_map))):
            raise DataError(
                f"Dataset {self._dataset_name!r}: thing_dataset_id_to_contiguous_id values "
                f"{sorted(id_map.values())} are not 0..{len(id_map) - 1}"
            )
        mapping = [0] * len(id_map)
        for dataset_id, contiguous in id_map.items():
            mapping[contiguous] = int(dataset_id)
        self._class_names = list(self._meta.thing_classes)
        self._contiguous_to_dataset_id = mapping
        return mapping

    def scores_masks(self) -> bool:
        return self._tasks is None or "segm" in self._tasks

    def scores_boxes(self) -> bool:
        # The error analysis of mask AP reads the detections' boxes too.
        return self._tasks is None or "bbox" in self._tasks or self._error_analysis

    def reset(self) -> None:
        self._predictions = []
        self._mask_flags = []
        self._mask_areas = []

    def _no_masks(self, image_id: Any) -> DataError:
        return DataError(
            f"COCOEvaluator on {self._dataset_name!r} evaluates masks (segm: MODEL.MASK_ON), "
            f"but the output for image {image_id!r} has no 'masks'"
        )

    def _segmentations(self, inp, out) -> Optional[List[Dict[str, Any]]]:
        """The output's masks as RLE (None when it has none or boxes only are evaluated)."""
        if not self.scores_masks():
            return None
        if "masks_rle" in out:  # masks already RLE (results_file.DatasetResults.model_io)
            return list(out["masks_rle"])
        if "masks" not in out:
            if self._tasks is not None:
                raise self._no_masks(inp["image_id"])
            return None
        where = f"Image {inp['image_id']!r}'s masks"
        size = (inp["height"], inp["width"]) if "height" in inp and "width" in inp else None
        return encode_masks(binarize_masks(out["masks"].detach(), image_size=size, where=where))

    def process(self, inputs, outputs) -> None:
        for inp, out in zip(inputs, outputs):
            boxes = out["boxes"].detach().to("cpu").numpy()
            scores = out["scores"].detach().to("cpu").numpy()
            labels = out["labels"].detach().to("cpu").numpy()
            segmentations = self._segmentations(inp, out)
            self._mask_flags.append((inp["image_id"], segmentations is not None))
            self._mask_areas = None  # a model's masks: the metric counts their areas
            self._predictions.extend(
                instances_to_coco_json(
                    boxes,
                    scores,
                    labels,
                    inp["image_id"],
                    self.results_category_ids(),
                    segmentations,
                )
            )

    def process_results(self, results) -> None:
        """A results file's detections (results_file.DatasetResults) as COCO results entries
        with the file's own numbers: its XYWH boxes are not turned into XYXY and back, so
        that they are scored as pycocotools scores the file."""
        with_masks = results.masks is not None and self.scores_masks()
        if results.masks is None and len(results) and self._tasks is not None:
            if "segm" in self._tasks:
                raise DataError(
                    f"COCOEvaluator on {self._dataset_name!r}: task 'segm' (mask AP) needs a "
                    "'segmentation' in every results entry, and the results have none (entry 0, "
                    f"image {results.image_ids[0]!r}); score their boxes with task 'bbox'"
                )
        self._predictions.extend(results.coco_entries(with_masks=with_masks))
        if with_masks and results.mask_areas is not None and self._mask_areas is not None:
            self._mask_areas.append(results.mask_areas)
        else:
            self._mask_areas = None
        self._mask_flags.extend(
            (image_id, with_masks) for image_id in dict.fromkeys(results.image_ids)
        )

    def _tasks_to_run(self, mask_flags: List[Tuple[Any, bool]]) -> Tuple[str, ...]:
        if self._tasks is not None:
            return self._tasks
        with_masks = [image_id for image_id, has in mask_flags if has]
        if not with_masks:
            return ("bbox",)
        without = next((image_id for image_id, has in mask_flags if not has), None)
        if without is not None:
            raise DataError(
                f"COCOEvaluator on {self._dataset_name!r}: the output for image {with_masks[0]!r} "
                "has "
                f"masks but the one for image {without!r} has none; mask AP needs masks for every "
                "image"
            )
        return ("bbox", "segm")

    def evaluate(self) -> OrderedDict[str, Dict[str, float]]:
        predictions, mask_flags = self._predictions, self._mask_flags
        mask_areas = np.concatenate(self._mask_areas) if self._mask_areas else None
        if self._distributed and get_world_size() > 1:
            gathered = all_gather((predictions, mask_flags))
            if not is_main_process():
                return OrderedDict()
            predictions = [p for per_rank in gathered for p in per_rank[0]]
            mask_flags = [f for per_rank in gathered for f in per_rank[1]]
            mask_areas = None
        tasks = self._tasks_to_run(mask_flags)

        if self._output_dir:
            path = os.path.join(self._output_dir, "coco_instances_results.json")
            atomic_write_json(path, predictions)
            logger.info("Wrote %d detections to %s", len(predictions), path)

        if self._coco_gt is None:
            self._coco_gt = load_coco_gt(self._json_file)
        contiguous_to_dataset_id = self.results_category_ids()
        gt_cat_ids = sorted(self._coco_gt.getCatIds())
        if gt_cat_ids != sorted(contiguous_to_dataset_id):
            raise DataError(
                f"{self._json_file}: categories {gt_cat_ids} differ from dataset "
                f"{self._dataset_name!r}'s thing_dataset_id_to_contiguous_id keys"
            )
        # Metadata lists classes in contiguous order, which is sorted dataset-id order.
        names_by_id = dict(zip(contiguous_to_dataset_id, self._class_names))
        class_names = [names_by_id[c] for c in gt_cat_ids]
        results: OrderedDict[str, Dict[str, float]] = OrderedDict()
        for task in tasks:
            metrics = evaluate_coco_results(
                self._coco_gt,
                predictions,
                class_names,
                iou_type=task,
                backend=self._backend,
                source=self._json_file,
                mask_areas=mask_areas,
            )
            logger.info(
                "COCO %s AP on %s: %.2f",
                "box" if task == "bbox" else "mask",
                self._dataset_name,
                metrics["AP"],
            )
            results[task] = dict(metrics)
        if self._error_analysis:
            self._analyze_errors(predictions, class_names, results)
        return results

    def _analyze_errors(self, predictions, class_names, results) -> None:
        """The error analyses of each task: dAP metrics into ``results``, pictures and
        report.html into the output folder."""
        self.error_analyses = {}
        for task in results:
            analysis = analyze_errors(
                self._coco_gt, predictions, iou_type=task, class_names=class_names
            )
            results[task].update(analysis.metrics())
            self.error_analyses[task] = analysis
        if self._output_dir:
            write_error_report(
                self.error_analyses, results, self._output_dir, title=self._dataset_name
            )
