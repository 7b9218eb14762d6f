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

The file is only parsed as JSON (never unpickled) and checked once, in bulk: the entries'
ids, boxes, scores and masks become columns (:class:`CheckedResults`). Where the bulk pass
cannot vouch for every entry (a missing key, a value of an unusual type, a number that is not
finite, ...), the entries are checked one by one, so that the error names the file and the
first bad entry. :func:`match_results` then checks the ids against the dataset, and the
dataset's evaluator takes the detections (``DatasetEvaluator.process_results``): the COCO
evaluator as COCO results entries, the values pycocotools would read from the file, the
others as the outputs a detector would have given. ``resnet_det.evaluation.evaluate_results``
and ``evaluate_results_file`` choose that evaluator by the dataset's name.
"""

from __future__ import annotations

import json
import logging
import math
import operator
from collections import OrderedDict
from dataclasses import dataclass
from itertools import chain, repeat
from numbers import Real
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import orjson

from ..data.catalog import DatasetCatalog
from ..utils.bulk import collector_paused
from ..utils.errors import DataError, MissingFileError
from ..utils.rle import compressed_rle_sums
from .evaluator import DatasetEvaluator
from .masks import rle_boxes

__all__ = [
    "CheckedResults",
    "DatasetResults",
    "read_results_file",
    "load_results_file",
    "check_results",
    "match_results",
    "score_results",
    "flatten_results",
]

logger = logging.getLogger(__name__)

REQUIRED_KEYS = ("image_id", "category_id", "bbox", "score")
_RLE_FIX = "encode each mask with pycocotools.mask.encode (counts as a str) at its image's size"
_NUMBER_TYPES = {int, float}
_ABSENT = object()  # a key an entry does not have (JSON null is None)


def _is_number(v: Any) -> bool:
    try:
        return isinstance(v, Real) and not isinstance(v, bool) and math.isfinite(float(v))
    except OverflowError:  # a json int beyond float's range
        return False


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# ---------------------------------------------------------------------------------------------
# The rules for one entry: they decide, and they word every error
# ---------------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------------
# The entries as columns, checked in bulk
# ---------------------------------------------------------------------------------------------
@dataclass
class CheckedResults:
    """Results entries whose form has been checked (:func:`check_results`), as columns.

    Attributes:
        entries: the entries as given.
        image_ids: each entry's image_id (an int or a str).
        category_ids: each entry's category_id.
        boxes: float64 [N, 4], each entry's "bbox" (XYWH); NaN where an entry with a mask
            has none.
        scores: float64 [N].
        segmentations: each entry's "segmentation" (an RLE dict), or None when the entries
            have no masks.
        source: how errors refer to the results (e.g. the file name).
    """

    entries: List[Mapping[str, Any]]
    image_ids: List[Any]
    category_ids: List[int]
    boxes: np.ndarray
    scores: np.ndarray
    segmentations: Optional[List[Mapping[str, Any]]]
    source: str

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def has_masks(self) -> bool:
        return self.segmentations is not None


def check_results(results: Sequence[Mapping[str, Any]], source: str = "results") -> CheckedResults:
    """Check the form of every results entry (keys, id types, 4 finite box numbers with
    non-negative width and height, a finite score, RLE masks on all entries or none) and
    return them as columns. DataError names ``source`` and the first bad entry.

    Args:
        results: COCO-format results entries.
        source: how errors refer to the results (e.g. the file name).
    """
    entries = list(results)
    checked = _columns_in_bulk(entries, source)
    if checked is None:  # some entry is unusual or wrong: the rules, entry by entry
        for i, entry in enumerate(entries):
            _validate_entry(i, entry, source)
        _check_all_or_no_masks(entries, source)
        checked = _columns_one_by_one(entries, source)
    return checked


def _types(values) -> set:
    return set(map(type, values))


def _columns_in_bulk(entries: List[Any], source: str) -> Optional[CheckedResults]:
    """The columns when the bulk pass can vouch for every entry (each has the keys, plain
    int / float / str / list values, finite numbers, positive mask sizes and non-negative
    runs); None otherwise, which is never a verdict: the entry-by-entry rules decide then."""
    n = len(entries)
    if n == 0:
        return CheckedResults(entries, [], [], np.zeros((0, 4)), np.zeros(0), None, source)
    if _types(entries) != {dict}:
        return None
    with_masks = "segmentation" in entries[0]
    try:
        image_ids = list(map(operator.itemgetter("image_id"), entries))
        category_ids = list(map(operator.itemgetter("category_id"), entries))
        scores = list(map(operator.itemgetter("score"), entries))
        segmentations = (
            list(map(operator.itemgetter("segmentation"), entries)) if with_masks else None
        )
    except KeyError:
        return None
    if with_masks:
        bboxes = [e.get("bbox", _ABSENT) for e in entries]
        has_box = np.fromiter(map(operator.is_not, bboxes, repeat(_ABSENT)), bool, count=n)
        given = [b for b in bboxes if b is not _ABSENT] if not has_box.all() else bboxes
    else:
        if any(map(operator.contains, entries, repeat("segmentation"))):
            return None
        try:
            given = list(map(operator.itemgetter("bbox"), entries))
        except KeyError:
            return None
        has_box = None
    if not (
        _types(image_ids) <= {int, str}
        and _types(category_ids) == {int}
        and _types(scores) <= _NUMBER_TYPES
        and _types(given) <= {list}
        and (not given or set(map(len, given)) == {4})
        and _types(chain.from_iterable(given)) <= _NUMBER_TYPES
    ):
        return None
    try:  # an int beyond float's range overflows
        score_column = np.fromiter(scores, np.float64, count=n)
        given_boxes = np.fromiter(
            chain.from_iterable(given), np.float64, count=4 * len(given)
        ).reshape(-1, 4)
    except OverflowError:
        return None
    if not (np.isfinite(score_column).all() and np.isfinite(given_boxes).all()):
        return None
    if (given_boxes[:, 2:] < 0).any():
        return None
    if has_box is None or has_box.all():
        boxes = given_boxes
    else:
        boxes = np.full((n, 4), np.nan)
        boxes[has_box] = given_boxes
    if segmentations is not None and not _masks_in_bulk(segmentations):
        return None
    return CheckedResults(
        entries, image_ids, category_ids, boxes, score_column, segmentations, source
    )


def _masks_in_bulk(segmentations: List[Any]) -> bool:
    """Whether every mask is an RLE dict of exactly "size" (two positive ints) and "counts"
    (a str, or a list of non-negative ints)."""
    if _types(segmentations) != {dict} or set(map(len, segmentations)) != {2}:
        return False
    try:
        sizes = list(map(operator.itemgetter("size"), segmentations))
        counts = list(map(operator.itemgetter("counts"), segmentations))
    except KeyError:
        return False
    if not (
        _types(sizes) == {list}
        and set(map(len, sizes)) == {2}
        and _types(chain.from_iterable(sizes)) == {int}
    ):
        return False
    count_types = _types(counts)
    if not count_types <= {str, list}:
        return False
    try:
        if (np.array(sizes, dtype=np.int64) <= 0).any():
            return False
        if list in count_types:
            runs = list(chain.from_iterable(c for c in counts if type(c) is list))
            if not _types(runs) <= {int} or (np.array(runs, dtype=np.int64) < 0).any():
                return False
    except OverflowError:  # beyond int64: the entry-by-entry rules decide
        return False
    return True


def _columns_one_by_one(entries: List[Mapping[str, Any]], source: str) -> CheckedResults:
    """The columns of entries that passed the entry-by-entry rules."""
    nan_box = [math.nan] * 4
    boxes = np.array(
        [[float(v) for v in e["bbox"]] if "bbox" in e else nan_box for e in entries],
        dtype=np.float64,
    ).reshape(-1, 4)
    with_masks = bool(entries) and "segmentation" in entries[0]
    return CheckedResults(
        entries,
        [e["image_id"] for e in entries],
        [e["category_id"] for e in entries],
        boxes,
        np.array([float(e["score"]) for e in entries], dtype=np.float64),
        [e["segmentation"] for e in entries] if with_masks else None,
        source,
    )


# ---------------------------------------------------------------------------------------------
# Reading a file
# ---------------------------------------------------------------------------------------------
def _parse_json(raw: bytes) -> Any:
    """The JSON document in ``raw``, as the json module reads it. orjson parses it (about twice
    as fast); whatever orjson refuses (NaN and Infinity, which the json module accepts, ints
    beyond 64 bits, UTF-16/32, a byte-order mark, a lone surrogate, invalid JSON) goes to the
    json module, whose result or error then stands."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        # bytes: json detects UTF-8/16/32; bad bytes are a UnicodeDecodeError (a ValueError).
        return json.loads(raw)


def read_results_file(path: str) -> CheckedResults:
    """Read a COCO-format results file (JSON only) and check its entries once
    (:func:`check_results`). Errors name the file and the entry."""
    from iopath.common.file_io import g_pathmgr

    if not g_pathmgr.exists(path):
        raise MissingFileError(f"Results file {path!r} does not exist")
    try:
        with g_pathmgr.open(path, "rb") as f:
            raw = f.read()
    except OSError as e:  # a folder, no permission
        raise DataError(f"Results file {path!r} cannot be read: {e}") from e
    try:
        with collector_paused():
            results = _parse_json(raw)
    except ValueError as e:  # JSONDecodeError names the line and column
        raise DataError(f"Results file {path!r} is not valid JSON: {e}") from e
    except RecursionError as e:
        raise DataError(f"Results file {path!r} is not valid JSON: nested too deeply") from e
    if not isinstance(results, list):
        raise DataError(
            f"Results file {path!r} must hold a JSON list, got {type(results).__name__}"
        )
    return check_results(results, path)


def load_results_file(path: str) -> List[Dict[str, Any]]:
    """Read and check a COCO-format results file (JSON only); its entries. Errors name the
    file and entry."""
    return read_results_file(path).entries


# ---------------------------------------------------------------------------------------------
# Matching the entries to a dataset
# ---------------------------------------------------------------------------------------------
@dataclass
class DatasetResults:
    """Checked results matched to a dataset (:func:`match_results`): what an evaluator's
    ``process_results`` takes.

    Attributes:
        images: image_id -> the dataset's record of the image ("image_id", "height", "width").
        image_ids: each entry's image_id.
        category_ids: each entry's category_id (the results file's, e.g. COCO's ids).
        labels: int64 [N], the contiguous label each category id stands for.
        boxes: float64 [N, 4] XYWH: the entry's "bbox", or its mask's tight box (NaN when
            matched without ``boxes_from_masks``).
        scores: float64 [N].
        masks: each entry's mask as compressed RLE ({"size", "counts": str}), or None.
        mask_areas: int64 [N], each mask's area in pixels (pycocotools' mask.area), taken
            from the check of its runs; None without masks.
    """

    images: Mapping[Any, Mapping[str, Any]]
    image_ids: List[Any]
    category_ids: List[int]
    labels: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    masks: Optional[List[Dict[str, Any]]]
    mask_areas: Optional[np.ndarray] = None

    def __len__(self) -> int:
        return len(self.image_ids)

    def boxes_xyxy(self) -> np.ndarray:
        """The boxes as XYXY (x + w, y + h), float64 [N, 4]."""
        xyxy = self.boxes.copy()
        xyxy[:, 2:] += xyxy[:, :2]
        return xyxy

    def coco_entries(self, *, with_masks: bool = True) -> List[Dict[str, Any]]:
        """The detections in COCO's results format, with Python numbers: each entry's
        image_id, category_id, bbox (XYWH), score and, with masks (unless ``with_masks`` is
        False), segmentation."""
        entries = [
            {"image_id": image_id, "category_id": category_id, "bbox": box, "score": score}
            for image_id, category_id, box, score in zip(
                self.image_ids, self.category_ids, self.boxes.tolist(), self.scores.tolist()
            )
        ]
        if self.masks is not None and with_masks:
            for entry, mask in zip(entries, self.masks):
                entry["segmentation"] = mask
            for i in np.flatnonzero(np.isnan(self.boxes[:, 0])):  # masks without a box
                del entries[i]["bbox"]
        return entries

    def per_image(self) -> Iterator[Tuple[Mapping[str, Any], np.ndarray]]:
        """(image record, indices of its entries in file order) per image, the images in the
        order of their first entry."""
        index: Dict[Any, List[int]] = {}
        for i, image_id in enumerate(self.image_ids):
            index.setdefault(image_id, []).append(i)
        for image_id, rows in index.items():
            yield self.images[image_id], np.asarray(rows, dtype=np.int64)

    def model_io(self) -> List[Tuple[Dict[str, Any], Dict[str, Any]]]:
        """(input, output) per image as a detector gives them: "boxes" (XYXY), "scores" and
        "labels" as tensors, and "masks_rle" (one compressed RLE per box) for masks."""
        import torch  # only for evaluators that take detector outputs alone

        xyxy = self.boxes_xyxy()
        pairs = []
        for record, rows in self.per_image():
            inp = {k: record[k] for k in ("image_id", "height", "width")}
            out = {
                "boxes": torch.from_numpy(xyxy[rows]),
                "scores": torch.from_numpy(self.scores[rows]),
                "labels": torch.from_numpy(self.labels[rows]),
            }
            if self.masks is not None:
                out["masks_rle"] = [self.masks[i] for i in rows]
            pairs.append((inp, out))
        return pairs


def _first_index(values: Sequence[Any], allowed: Any) -> Optional[int]:
    """The index of the first value not in ``allowed`` (None if all are)."""
    if set(values) <= allowed.keys():
        return None
    return next(i for i, v in enumerate(values) if v not in allowed)


def match_results(
    checked: CheckedResults,
    dataset_name: str,
    category_ids: Sequence[int],
    *,
    boxes_from_masks: bool = True,
) -> DatasetResults:
    """Check checked results against a registered dataset: every image id must be one of its
    images, every category id one of ``category_ids``, and every mask of its image's size with
    runs covering it. Errors name the entry index and the bad id.

    Args:
        checked: the results (:func:`check_results`).
        dataset_name: the registered dataset the results are for.
        category_ids: the results file's category id of each contiguous label (the
            evaluator's ``results_category_ids()``).
        boxes_from_masks: give an entry without a "bbox" its mask's tight box; False (for
            an evaluator that reads no boxes, ``scores_boxes()``): its box stays NaN.
    """
    source = checked.source
    images = {d["image_id"]: d for d in DatasetCatalog.get(dataset_name)}
    id_map = {int(c): label for label, c in enumerate(category_ids)}
    bad_image = _first_index(checked.image_ids, images)
    bad_category = _first_index(checked.category_ids, id_map)
    if bad_image is not None and (bad_category is None or bad_image <= bad_category):
        image_id = checked.image_ids[bad_image]
        # A hint for the common mistake of numbering VOC images: give one of the dataset's ids.
        example = next((i for i in images if isinstance(i, str)), None)
        hint = (
            ""
            if example is None
            else f" (this dataset's image ids are file stems such as {example!r})"
        )
        raise DataError(
            f"{source}: entry {bad_image} has image_id {image_id!r}, which is not an image of "
            f"dataset {dataset_name!r}{hint}"
        )
    if bad_category is not None:
        raise DataError(
            f"{source}: entry {bad_category} has category_id "
            f"{checked.category_ids[bad_category]!r}, which is not one of the category ids "
            f"{sorted(id_map)} of dataset {dataset_name!r} (docs/results_files.md)"
        )
    n = len(checked)
    labels = np.fromiter(map(id_map.__getitem__, checked.category_ids), np.int64, count=n)
    masks, areas = _check_masks(checked, images) if checked.has_masks else (None, None)
    boxes = checked.boxes
    missing_box = np.flatnonzero(np.isnan(boxes[:, 0]))
    if len(missing_box) and boxes_from_masks:
        boxes = boxes.copy()
        boxes[missing_box] = rle_boxes([masks[i] for i in missing_box])
    return DatasetResults(
        images, checked.image_ids, checked.category_ids, labels, boxes, checked.scores, masks, areas
    )


def _check_masks(
    checked: CheckedResults, images: Mapping[Any, Mapping[str, Any]]
) -> Tuple[List[Dict[str, Any]], np.ndarray]:
    """Each entry's RLE at its image's size with runs covering it exactly, compressed (counts
    a str) as the evaluator holds masks, and each mask's area. Errors name the entry."""
    source, segms = checked.source, checked.segmentations
    sizes = [s["size"] for s in segms]
    image_sizes = {k: [r["height"], r["width"]] for k, r in images.items()}
    expected_sizes = [image_sizes[i] for i in checked.image_ids]
    try:
        wrong = np.flatnonzero(
            (np.array(sizes, dtype=np.int64) != np.array(expected_sizes, dtype=np.int64)).any(1)
        )
    except OverflowError:  # a size beyond int64 (never an image's)
        wrong = [i for i, (a, b) in enumerate(zip(sizes, expected_sizes)) if a != b]
    if len(wrong):
        i = int(wrong[0])
        image_id, (height, width) = checked.image_ids[i], expected_sizes[i]
        raise DataError(
            f"{source}: entry {i} has an RLE mask of size {sizes[i]} ([height, width]) for "
            f"image {image_id!r} of {height}x{width} (height x width): {_RLE_FIX}"
        )
    counts = [s["counts"] for s in segms]
    compressed = [i for i, c in enumerate(counts) if isinstance(c, str)]
    totals = np.zeros(len(segms), dtype=np.int64)
    areas = np.zeros(len(segms), dtype=np.int64)
    totals[compressed], areas[compressed] = compressed_rle_sums([counts[i] for i in compressed])
    uncompressed = [i for i, c in enumerate(counts) if isinstance(c, list)]
    for i in uncompressed:
        totals[i], areas[i] = sum(counts[i]), sum(counts[i][1::2])
    expected = np.array([h * w for h, w in expected_sizes], dtype=np.int64).reshape(-1)
    bad = np.flatnonzero(totals != expected)
    if len(bad):
        i = int(bad[0])
        what = (
            "is not pycocotools' compressed encoding"
            if totals[i] < 0
            else f"covers {int(totals[i])} pixels, not the {int(expected[i])} of its size"
        )
        raise DataError(f"{source}: entry {i} has an RLE mask whose 'counts' {what}: {_RLE_FIX}")
    rles = [{"size": list(size), "counts": c} for size, c in zip(sizes, counts)]
    if uncompressed:  # pycocotools compresses them
        from pycocotools import mask as mask_utils

        for i in uncompressed:
            h, w = sizes[i]
            coded = mask_utils.frPyObjects({"size": [h, w], "counts": counts[i]}, h, w)
            rles[i]["counts"] = coded["counts"].decode("ascii")
    return rles, areas


def score_results(
    evaluator: DatasetEvaluator,
    dataset_name: str,
    results: Union[Sequence[Mapping[str, Any]], CheckedResults],
    *,
    source: str = "results",
) -> OrderedDict[str, Dict[str, float]]:
    """Score results entries with ``evaluator`` (built for ``dataset_name``), exactly as if a
    model had output the same detections.

    Args:
        evaluator: a detection evaluator of the dataset (its ``results_category_ids()`` says
            how the file's category ids map to labels).
        dataset_name: the registered dataset.
        results: COCO-format results entries with the dataset's ids, or the CheckedResults
            of :func:`read_results_file` (not checked again).
        source: how errors refer to the results (e.g. the file name); a CheckedResults keeps
            its own.
    """
    category_ids = evaluator.results_category_ids()
    if category_ids is None:
        raise DataError(
            f"Dataset {dataset_name!r} is evaluated by {type(evaluator).__name__}, which does not "
            "score detection results files (only COCO and VOC datasets do)"
        )
    with collector_paused():
        return _score(evaluator, dataset_name, results, category_ids, source)


def _score(evaluator, dataset_name, results, category_ids, source):
    checked = results if isinstance(results, CheckedResults) else check_results(results, source)
    matched = match_results(
        checked, dataset_name, category_ids, boxes_from_masks=evaluator.scores_boxes()
    )
    if checked.has_masks and not evaluator.scores_masks():
        logger.warning(
            "%s: the masks ('segmentation') are not scored: %s of dataset %r scores boxes only",
            checked.source,
            type(evaluator).__name__,
            dataset_name,
        )
    evaluator.reset()
    evaluator.process_results(matched)
    return evaluator.evaluate()


def flatten_results(results: Mapping[str, Mapping[str, Any]]) -> Dict[str, Any]:
    """{"bbox": {"AP": x}} -> {"bbox/AP": x}, the key names of metrics.json."""
    flat: Dict[str, Any] = {}
    for task, metrics in results.items():
        for name, value in metrics.items():
            flat[f"{task}/{name}"] = value
    return flat
