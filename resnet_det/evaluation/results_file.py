"""Reading a detection results file and scoring it with a dataset's evaluator.

A results file is COCO's results format, a JSON list of
``{"image_id", "category_id", "bbox": [x, y, w, h], "score"}``, with the dataset's own ids
(docs/results_files.md): COCO datasets use COCO image and category ids; VOC datasets use the
image's file stem ("000005") and the 1-based index of the class in the dataset's class order
(for VOC: aeroplane=1 .. tvmonitor=20). Boxes are in continuous pixel coordinates of the
original image, the coordinates the detector outputs (for VOC, those of the dataset dicts:
xmin - 1, ymin - 1). Which category id stands for which label is the evaluator's to say
(``DatasetEvaluator.results_category_ids``), so a file is read with the ids its evaluator writes.

The file is only parsed as JSON (never unpickled), validated entry by entry, converted to the
detector's output format and fed to the dataset's evaluator, so a results file is scored exactly
as the same detections coming from a model would be. ``resnet_det.evaluation.evaluate_results``
and ``evaluate_results_file`` choose that evaluator by the dataset's name.
"""
from __future__ import annotations

import json
import math
from collections import OrderedDict, defaultdict
from numbers import Real
from typing import Any, Dict, List, Mapping, Sequence, Tuple

from ..utils.errors import DataError, MissingFileError
from .evaluator import DatasetEvaluator

__all__ = [
    "load_results_file",
    "results_to_model_io",
    "score_results",
    "flatten_results",
]

REQUIRED_KEYS = ("image_id", "category_id", "bbox", "score")


def _is_number(v: Any) -> bool:
    try:
        return isinstance(v, Real) and not isinstance(v, bool) and math.isfinite(float(v))
    except OverflowError:  # a json int beyond float's range
        return False


def _validate_entry(i: int, entry: Any, source: str) -> None:
    if not isinstance(entry, Mapping):
        raise DataError(f"{source}: entry {i} is a {type(entry).__name__}, expected an object")
    missing = [k for k in REQUIRED_KEYS if k not in entry]
    if missing:
        raise DataError(f"{source}: entry {i} lacks key(s) {missing} (needs {list(REQUIRED_KEYS)})")
    image_id, category_id = entry["image_id"], entry["category_id"]
    if isinstance(image_id, bool) or not isinstance(image_id, (int, str)):
        raise DataError(f"{source}: entry {i} has image_id {image_id!r}; expected an int or a string")
    if isinstance(category_id, bool) or not isinstance(category_id, int):
        raise DataError(f"{source}: entry {i} has category_id {category_id!r}; expected an int")
    bbox = entry["bbox"]
    if not (isinstance(bbox, (list, tuple)) and len(bbox) == 4 and all(_is_number(v) for v in bbox)):
        raise DataError(f"{source}: entry {i} has bbox {bbox!r}; expected 4 finite numbers [x, y, w, h]")
    if bbox[2] < 0 or bbox[3] < 0:
        raise DataError(f"{source}: entry {i} has bbox {bbox!r} with negative width or height")
    if not _is_number(entry["score"]):
        raise DataError(f"{source}: entry {i} has score {entry['score']!r}; expected a finite number")


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
        raise DataError(f"Results file {path!r} must hold a JSON list, got {type(results).__name__}")
    for i, entry in enumerate(results):
        _validate_entry(i, entry, path)
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
    Errors name the entry index and the bad id.
    """
    import torch

    from resnet_det.data.catalog import DatasetCatalog

    images = {d["image_id"]: d for d in DatasetCatalog.get(dataset_name)}
    id_map = {int(c): label for label, c in enumerate(category_ids)}
    # A hint for the common mistake of numbering VOC images: give one of the dataset's ids.
    example = next((i for i in images if isinstance(i, str)), None)
    id_hint = "" if example is None else f" (this dataset's image ids are file stems such as {example!r})"

    per_image: Dict[Any, List[Tuple[List[float], float, int]]] = defaultdict(list)
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
        x, y, w, h = (float(v) for v in entry["bbox"])
        per_image[image_id].append(([x, y, x + w, y + h], float(entry["score"]), id_map[category_id]))

    pairs = []
    for image_id, dets in per_image.items():
        record = images[image_id]
        inp = {"image_id": record["image_id"], "height": record["height"], "width": record["width"]}
        out = {
            "boxes": torch.tensor([d[0] for d in dets], dtype=torch.float64).reshape(-1, 4),
            "scores": torch.tensor([d[1] for d in dets], dtype=torch.float64),
            "labels": torch.tensor([d[2] for d in dets], dtype=torch.int64),
        }
        pairs.append((inp, out))
    return pairs


def score_results(
    evaluator: DatasetEvaluator,
    dataset_name: str,
    results: Sequence[Mapping[str, Any]],
    *,
    source: str = "results",
) -> "OrderedDict[str, Dict[str, float]]":
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
