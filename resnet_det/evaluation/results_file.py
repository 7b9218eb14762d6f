"""Reading a detection results file and scoring it with a dataset's evaluator.

A results file is COCO's results format, a JSON list of
``{"image_id", "category_id", "bbox": [x, y, w, h], "score"}``, with the dataset's own ids
(docs/results_files.md): COCO datasets use COCO image and category ids; VOC datasets use the
image's file stem ("000005") and the 1-based index of the class in the dataset's class order
(for VOC: aeroplane=1 .. tvmonitor=20). Boxes are in continuous pixel coordinates of the
original image, the coordinates the detector outputs (for VOC, those of the dataset dicts:
xmin - 1, ymin - 1). Which category id stands for which label is the evaluator's to say
(``DatasetEvaluator.results_category_ids``), so a file is read with the ids its evaluator writes.

Instance segmentation results add a "segmentation" to every entry: the mask as COCO RLE,
``{"size": [height, width], "counts": str}`` (pycocotools.mask.encode, counts decoded to str;
an uncompressed list of run lengths is accepted too). Such an entry may leave "bbox" out: its
mask's tight box is used, as pycocotools' loadRes does. Masks are checked before pycocotools
sees them (its C code trusts the run lengths): the size must be the image's and the runs must
cover it exactly.

The file is only parsed as JSON (never unpickled), validated entry by entry, converted to the
detector's output format and fed to the dataset's evaluator, so a results file is scored exactly
as the same detections coming from a model would be. ``resnet_det.evaluation.evaluate_results``
and ``evaluate_results_file`` choose that evaluator by the dataset's name.
"""

from __future__ import annotations

import json
import logging
import math
from collections import OrderedDict, defaultdict
from numbers import Real
from typing import Any, Dict, List, Mapping, Sequence, Tuple

import numpy as np
import torch

from ..data.catalog import DatasetCatalog
from ..utils.errors import DataError, MissingFileError
from .evaluator import DatasetEvaluator
from .masks import compressed_rle_totals, rle_boxes

__all__ = [
    "load_results_file",
    "results_to_model_io",
    "score_results",
    "flatten_results",
]

logger = logging.getLogger(__name__)

REQUIRED_KEYS = ("image_id", "category_id", "bbox", "score")
_RLE_FIX = "encode each mask with pycocotools.mask.encode (counts as a str) at its image's size"


def _is_number(v: Any) -> bool:
    try:
        return isinstance(v, Real) and not isinstance(v, bool) and math.isfinite(float(v))
    except OverflowError:  # a json int beyond float's range
        return False


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _validate_segmentation(i: int, segm: Any, source: str) -> None:
    """The form of an RLE mask; its size and runs are checked with the image (_check_masks)."""
    if isinstance(segm, list):
        raise DataError(
            f"{source}: entry {i} has a polygon 'segmentation'; results give masks as "
            f"RLE ({{'size': [height, width], 'counts': ...}}): {_RLE_FIX}"
        )
    if not isinstance(segm, Mapping) or set(segm) != {"size", "counts"}:
        raise DataError(
            f"{source}: entry {i} has 'segmentation' {segm!r:.80}; expected an RLE "
            f"object with exactly 'size' and 'counts': {_RLE_FIX}"
        )
    size, counts = segm["size"], segm["counts"]
    if not (isinstance(size, list) and len(size) == 2 and all(_is_int(v) and v > 0 for v in size)):
        raise DataError(
            f"{source}: entry {i} has an RLE 'size' {size!r:.60}; expected [height, width], "
            "two positive ints"
        )
    if not (
        isinstance(counts, str)
        or (isinstance(counts, list) and all(_is_int(v) and v >= 0 for v in counts))
    ):
        raise DataError(
            f"{source}: entry {i} has RLE 'counts' {counts!r:.60}; expected pycocotools' "
            f"compressed string or a list of non-negative ints: {_RLE_FIX}"
        )


def _validate_entry(i: int, entry: Any, source: str) -> None:
    if not isinstance(entry, Mapping):
        raise DataError(f"{source}: entry {i} is a {type(entry).__name__}, expected an object")
    # A mask result may leave its box out (pycocotools' loadRes takes the mask's box).
    required = [k for k in REQUIRED_KEYS if not (k == "bbox" and "segmentation" in entry)]
    missing = [k for k in required if k not in entry]
    if missing:
        raise DataError(
            f"{source}: entry {i} lacks key(s) {missing} (needs {list(REQUIRED_KEYS)}, "
            "or 'segmentation' in place of 'bbox')"
        )
    image_id, category_id = entry["image_id"], entry["category_id"]
    if isinstance(image_id, bool) or not isinstance(image_id, (int, str)):
        raise DataError(
            f"{source}: entry {i} has image_id {image_id!r}; expected an int or a string"
        )
    if not _is_int(category_id):
        raise DataError(f"{source}: entry {i} has category_id {category_id!r}; expected an int")
    if "bbox" in entry:
        bbox = entry["bbox"]
        if not (
            isinstance(bbox, (list, tuple)) and len(bbox) == 4 and all(_is_number(v) for v in bbox)
        ):
            raise DataError(
                f"{source}: entry {i} has bbox {bbox!r}; expected 4 finite numbers [x, y, w, h]"
            )
        if bbox[2] < 0 or bbox[3] < 0:
            raise DataError(f"{source}: entry {i} has bbox {bbox!r} with negative width or height")
    if not _is_number(entry["score"]):
        raise DataError(
            f"{source}: entry {i} has score {entry['score']!r}; expected a finite number"
        )
    if "segmentation" in entry:
        _validate_segmentation(i, entry["segmentation"], source)


def _check_all_or_no_masks(results: Sequence[Mapping[str, Any]], source: str) -> bool:
    """Whether the results carry masks; a file mixing entries with and without is refused."""
    has = [i for i, r in enumerate(results) if "segmentation" in r]
    if has and len(has) != len(results):
        lacking = next(i for i, r in enumerate(results) if "segmentation" not in r)
        raise DataError(
            f"{source}: entry {has[0]} has a 'segmentation' but entry {lacking} has none; "
            "give a mask for every detection or for none"
        )
    return bool(has)


def _check_masks(
    results: Sequence[Mapping[str, Any]], images: Mapping[Any, Mapping[str, Any]], source: str
) -> List[Dict[str, Any]]:
    """Each entry's RLE at its image's size with runs covering it exactly, compressed (counts
    a str) as the evaluator holds masks. Errors name the entry."""
    for i, r in enumerate(results):
        size = r["segmentation"]["size"]
        record = images[r["image_id"]]
        if size != [record["height"], record["width"]]:
            raise DataError(
                f"{source}: entry {i} has an RLE mask of size {size} ([height, width]) for "
                f"image {r['image_id']!r} of {record['height']}x{record['width']} "
                f"(height x width): {_RLE_FIX}"
            )
    compressed = [i for i, r in enumerate(results) if isinstance(r["segmentation"]["counts"], str)]
    totals = np.zeros(len(results), dtype=np.int64)
    totals[compressed] = compressed_rle_totals(
        [results[i]["segmentation"]["counts"] for i in compressed]
    )
    for i, r in enumerate(results):
        counts = r["segmentation"]["counts"]
        if isinstance(counts, list):
            totals[i] = sum(counts)
    expected = np.array(
        [r["segmentation"]["size"][0] * r["segmentation"]["size"][1] for r in results],
        dtype=np.int64,
    ).reshape(-1)
    bad = np.flatnonzero(totals != expected)
    if len(bad):
        i = int(bad[0])
        what = (
            "is not pycocotools' compressed encoding"
            if totals[i] < 0
            else f"covers {int(totals[i])} pixels, not the {int(expected[i])} of its size"
        )
        raise DataError(f"{source}: entry {i} has an RLE mask whose 'counts' {what}: {_RLE_FIX}")
    from pycocotools import mask as mask_utils

    rles = []
    for r in results:
        segm = r["segmentation"]
        if isinstance(segm["counts"], list):  # uncompressed: pycocotools compresses it
            coded = mask_utils.frPyObjects(
                {"size": list(segm["size"]), "counts": segm["counts"]}, *segm["size"]
            )
            segm = {"size": list(segm["size"]), "counts": coded["counts"].decode("ascii")}
        rles.append({"size": list(segm["size"]), "counts": segm["counts"]})
    return rles


def load_results_file(path: str) -> List[Dict[str, Any]]:
    """Read and check a COCO-format results file (JSON only). Errors name the file and entry."""
    from iopath.common.file_io import g_pathmgr

    if not g_pathmgr.exists(path):
        raise MissingFileError(f"Results file {path!r} does not exist")
    try:
        with g_pathmgr.open(path, "rb") as f:
            raw = f.read()
    except OSError as e:  # a folder, no permission
        raise DataError(f"Results file {path!r} cannot be read: {e}") from e
    try:
        # bytes: json detects UTF-8/16/32; bad bytes are a UnicodeDecodeError (a ValueError).
        results = json.loads(raw)
    except ValueError as e:  # JSONDecodeError names the line and column
        raise DataError(f"Results file {path!r} is not valid JSON: {e}") from e
    except RecursionError as e:
        raise DataError(f"Results file {path!r} is not valid JSON: nested too deeply") from e
    if not isinstance(results, list):
        raise DataError(
            f"Results file {path!r} must hold a JSON list, got {type(results).__name__}"
        )
    for i, entry in enumerate(results):
        _validate_entry(i, entry, path)
    _check_all_or_no_masks(results, path)
    return results


def results_to_model_io(
    dataset_name: str,
    results: Sequence[Mapping[str, Any]],
    category_ids: Sequence[int],
    source: str = "results",
) -> List[Tuple[Dict[str, Any], Dict[str, Any]]]:
    """Turn results entries into (input, output) pairs as a detector would have produced them.

    Args:
        dataset_name: the registered dataset the results are for; image ids are checked
            against its images.
        results: COCO-format results entries.
        category_ids: the results file's category id of each contiguous label (the
            evaluator's ``results_category_ids()``).
        source: how errors refer to the results (e.g. the file name).
    Errors name the entry index and the bad id. Results with masks give outputs with
    "masks_rle" (one compressed RLE dict per box) in place of a detector's dense "masks".
    """
    images = {d["image_id"]: d for d in DatasetCatalog.get(dataset_name)}
    id_map = {int(c): label for label, c in enumerate(category_ids)}
    # A hint for the common mistake of numbering VOC images: give one of the dataset's ids.
    example = next((i for i in images if isinstance(i, str)), None)
    id_hint = (
        "" if example is None else f" (this dataset's image ids are file stems such as {example!r})"
    )

    for i, entry in enumerate(results):
        _validate_entry(i, entry, source)
        image_id = entry["image_id"]
        if image_id not in images:
            raise DataError(
                f"{source}: entry {i} has image_id {image_id!r}, which is not an image of dataset "
                f"{dataset_name!r}{id_hint}"
            )
        category_id = entry["category_id"]
        if category_id not in id_map:
            raise DataError(
                f"{source}: entry {i} has category_id {category_id!r}, which is not one of the "
                f"category ids {sorted(id_map)} of dataset {dataset_name!r} (docs/results_files.md)"
            )
    with_masks = _check_all_or_no_masks(results, source)
    rles = _check_masks(results, images, source) if with_masks else [None] * len(results)
    missing_box = [i for i, r in enumerate(results) if "bbox" not in r]
    mask_boxes = dict(zip(missing_box, rle_boxes([rles[i] for i in missing_box]).tolist()))

    per_image: Dict[Any, List[Tuple[List[float], float, int, Any]]] = defaultdict(list)
    for i, entry in enumerate(results):
        x, y, w, h = (float(v) for v in (entry["bbox"] if i not in mask_boxes else mask_boxes[i]))
        per_image[entry["image_id"]].append(
            ([x, y, x + w, y + h], float(entry["score"]), id_map[entry["category_id"]], rles[i])
        )

    pairs = []
    for image_id, dets in per_image.items():
        record = images[image_id]
        inp = {"image_id": record["image_id"], "height": record["height"], "width": record["width"]}
        out = {
            "boxes": torch.tensor([d[0] for d in dets], dtype=torch.float64).reshape(-1, 4),
            "scores": torch.tensor([d[1] for d in dets], dtype=torch.float64),
            "labels": torch.tensor([d[2] for d in dets], dtype=torch.int64),
        }
        if with_masks:
            out["masks_rle"] = [d[3] for d in dets]
        pairs.append((inp, out))
    return pairs


def score_results(
    evaluator: DatasetEvaluator,
    dataset_name: str,
    results: Sequence[Mapping[str, Any]],
    *,
    source: str = "results",
) -> OrderedDict[str, Dict[str, float]]:
    """Score results entries with ``evaluator`` (built for ``dataset_name``), exactly as if a
    model had output the same detections.

    Args:
        evaluator: a detection evaluator of the dataset (its ``results_category_ids()`` says
            how the file's category ids map to labels).
        dataset_name: the registered dataset.
        results: COCO-format results entries with the dataset's ids.
        source: how errors refer to the results (e.g. the file name).
    """
    category_ids = evaluator.results_category_ids()
    if category_ids is None:
        raise DataError(
            f"Dataset {dataset_name!r} is evaluated by {type(evaluator).__name__}, which does not "
            "score detection results files (only COCO and VOC datasets do)"
        )
    pairs = results_to_model_io(dataset_name, results, category_ids, source=source)
    if results and "segmentation" in results[0] and not evaluator.scores_masks():
        logger.warning(
            "%s: the masks ('segmentation') are not scored: %s of dataset %r scores boxes only",
            source,
            type(evaluator).__name__,
            dataset_name,
        )
    evaluator.reset()
    for inp, out in pairs:
        evaluator.process([inp], [out])
    return evaluator.evaluate()


def flatten_results(results: Mapping[str, Mapping[str, Any]]) -> Dict[str, Any]:
    """{"bbox": {"AP": x}} -> {"bbox/AP": x}, the key names of metrics.json."""
    flat: Dict[str, Any] = {}
    for task, metrics in results.items():
        for name, value in metrics.items():
            flat[f"{task}/{name}"] = value
    return flat
