"""Scoring a detection results file against a registered dataset, and writing JSON safely.

A results file is COCO's results format, a JSON list of
``{"image_id", "category_id", "bbox": [x, y, w, h], "score"}``, with the dataset's own ids
(design.md): COCO datasets use COCO image and category ids; VOC datasets use the image's file
stem ("000005") and the 1-based index of the class in the dataset's class order (for VOC:
aeroplane=1 .. tvmonitor=20). Boxes are in continuous pixel coordinates of the original image,
the coordinates the detector outputs (for VOC, those of the dataset dicts: xmin - 1, ymin - 1).

The file is only parsed as JSON (never unpickled), validated entry by entry, converted to the
detector's output format and fed to the dataset's evaluator, so a results file is scored exactly
as the same detections coming from a model would be.
"""
from __future__ import annotations

import json
import math
import os
from collections import OrderedDict, defaultdict
from numbers import Real
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from resnet_det.utils.file_io import atomic_open

__all__ = [
    "write_json_atomic",
    "load_results_file",
    "results_to_model_io",
    "evaluate_results",
    "evaluate_results_file",
    "flatten_results",
]

REQUIRED_KEYS = ("image_id", "category_id", "bbox", "score")


def write_json_atomic(path: str, obj: Any, **dump_kwargs: Any) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (temporary file + os.replace), so readers
    never see a half-written file."""
    with atomic_open(path, "w") as f:
        json.dump(obj, f, **dump_kwargs)


def _is_number(v: Any) -> bool:
    return isinstance(v, Real) and not isinstance(v, bool) and math.isfinite(float(v))


def _validate_entry(i: int, entry: Any, source: str) -> None:
    if not isinstance(entry, Mapping):
        raise ValueError(f"{source}: entry {i} is a {type(entry).__name__}, expected an object")
    missing = [k for k in REQUIRED_KEYS if k not in entry]
    if missing:
        raise ValueError(f"{source}: entry {i} lacks key(s) {missing} (needs {list(REQUIRED_KEYS)})")
    image_id, category_id = entry["image_id"], entry["category_id"]
    if isinstance(image_id, bool) or not isinstance(image_id, (int, str)):
        raise ValueError(f"{source}: entry {i} has image_id {image_id!r}; expected an int or a string")
    if isinstance(category_id, bool) or not isinstance(category_id, int):
        raise ValueError(f"{source}: entry {i} has category_id {category_id!r}; expected an int")
    bbox = entry["bbox"]
    if not (isinstance(bbox, (list, tuple)) and len(bbox) == 4 and all(_is_number(v) for v in bbox)):
        raise ValueError(f"{source}: entry {i} has bbox {bbox!r}; expected 4 finite numbers [x, y, w, h]")
    if bbox[2] < 0 or bbox[3] < 0:
        raise ValueError(f"{source}: entry {i} has bbox {bbox!r} with negative width or height")
    if not _is_number(entry["score"]):
        raise ValueError(f"{source}: entry {i} has score {entry['score']!r}; expected a finite number")


def load_results_file(path: str) -> List[Dict[str, Any]]:
    """Read and check a COCO-format results file (JSON only). Errors name the file and entry."""
    from iopath.common.file_io import g_pathmgr

    try:
        with g_pathmgr.open(path, "r") as f:
            results = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"Results file {path!r} is not valid JSON: {e}") from e
    if not isinstance(results, list):
        raise ValueError(f"Results file {path!r} must hold a JSON list, got {type(results).__name__}")
    for i, entry in enumerate(results):
        _validate_entry(i, entry, path)
    return results


def results_to_model_io(
    dataset_name: str, results: Sequence[Mapping[str, Any]], source: str = "results"
) -> List[Tuple[Dict[str, Any], Dict[str, Any]]]:
    """Turn results entries into (input, output) pairs as a detector would have produced them.

    Image ids are checked against the registered dataset and category ids mapped to contiguous
    labels: COCO datasets through metadata thing_dataset_id_to_contiguous_id, VOC datasets as
    the 1-based index into thing_classes. Errors name the entry index and the bad id.
    """
    import torch

    from resnet_det.data.catalog import DatasetCatalog, MetadataCatalog

    # Load the dataset first: the COCO reader records thing_dataset_id_to_contiguous_id.
    images = {d["image_id"]: d for d in DatasetCatalog.get(dataset_name)}
    meta = MetadataCatalog.get(dataset_name)
    evaluator_type = getattr(meta, "evaluator_type", None)
    if evaluator_type == "coco":
        id_map = {int(k): int(v) for k, v in meta.thing_dataset_id_to_contiguous_id.items()}
        id_hint = "COCO category ids of the dataset"
    elif evaluator_type == "voc":
        id_map = {i + 1: i for i in range(len(meta.thing_classes))}
        id_hint = f"1-based indices into the dataset's {len(meta.thing_classes)} classes"
    else:
        raise ValueError(f"Dataset {dataset_name!r} has evaluator_type={evaluator_type!r}; expected 'coco' or 'voc'")

    per_image: Dict[Any, List[Tuple[List[float], float, int]]] = defaultdict(list)
    for i, entry in enumerate(results):
        _validate_entry(i, entry, source)
        image_id = entry["image_id"]
        if image_id not in images:
            hint = " (VOC image ids are file stems such as \"000005\")" if evaluator_type == "voc" else ""
            raise ValueError(
                f"{source}: entry {i} has image_id {image_id!r}, which is not an image of dataset "
                f"{dataset_name!r}{hint}"
            )
        category_id = entry["category_id"]
        if category_id not in id_map:
            raise ValueError(
                f"{source}: entry {i} has category_id {category_id!r}, which is not one of the "
                f"{id_hint} {sorted(id_map)} of dataset {dataset_name!r}"
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


def evaluate_results(
    dataset_name: str,
    results: Sequence[Mapping[str, Any]],
    *,
    output_dir: Optional[str] = None,
    use_07_metric: Optional[bool] = None,
    source: str = "results",
) -> "OrderedDict[str, Dict[str, float]]":
    """Score results entries against a registered dataset with its evaluator.

    Args:
        dataset_name: registered dataset (metadata evaluator_type "coco" or "voc").
        results: COCO-format results entries with the dataset's ids.
        output_dir: where the COCO evaluator writes coco_instances_results.json (None: not).
        use_07_metric: VOC only, see PascalVOCDetectionEvaluator.
        source: how errors refer to the results (e.g. the file name).
    """
    from .evaluator import build_evaluator

    pairs = results_to_model_io(dataset_name, results, source=source)
    evaluator = build_evaluator(
        dataset_name, output_dir, distributed=False, use_07_metric=use_07_metric
    )
    evaluator.reset()
    for inp, out in pairs:
        evaluator.process([inp], [out])
    return evaluator.evaluate()


def evaluate_results_file(
    dataset_name: str,
    results_file: str,
    *,
    output_dir: Optional[str] = None,
    use_07_metric: Optional[bool] = None,
) -> "OrderedDict[str, Dict[str, float]]":
    """Score a COCO-format results file against a registered dataset.

    When ``output_dir`` is given, the flattened metrics ("bbox/AP", ...) are written there as
    metrics.json (one JSON object on one line, as in a training run's metrics.json).

    Args:
        dataset_name: registered dataset (metadata evaluator_type "coco" or "voc").
        results_file: path of the JSON results file.
        output_dir: folder for metrics.json (and coco_instances_results.json for COCO).
        use_07_metric: VOC only: True 11-point, False area under the curve, None by year.
    """
    results = load_results_file(results_file)
    metrics = evaluate_results(
        dataset_name, results, output_dir=output_dir, use_07_metric=use_07_metric, source=results_file
    )
    if output_dir:
        write_json_atomic(os.path.join(output_dir, "metrics.json"), flatten_results(metrics))
    return metrics


def flatten_results(results: Mapping[str, Mapping[str, Any]]) -> Dict[str, Any]:
    """{"bbox": {"AP": x}} -> {"bbox/AP": x}, the key names of metrics.json."""
    flat: Dict[str, Any] = {}
    for task, metrics in results.items():
        for name, value in metrics.items():
            flat[f"{task}/{name}"] = value
    return flat
