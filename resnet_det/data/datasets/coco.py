"""COCO-format instance annotations (json) -> dataset dicts.

The file is parsed and checked here, entry by entry, under DATALOADER.ON_BAD_IMAGE
(resnet_det.data.skips): pycocotools' index assumes a well-formed file and fails on a
malformed one with a bare KeyError or TypeError, so it only ever sees checked data
(``read_coco_api``).
"""

import contextlib
import io
import json
import logging
import math
import os
from typing import Any, Dict, List, Optional, Set, Tuple

from iopath.common.file_io import g_pathmgr
from pycocotools.coco import COCO

from ...utils.errors import DataError, MissingFileError
from ..catalog import MetadataCatalog
from ..segmentation import check_segmentation, normalize_segmentation
from ..skips import FaultPolicy, SkipCounts
from .boxes import BoxSanitizer

__all__ = ["load_coco_json", "read_coco_api"]

logger = logging.getLogger(__name__)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    try:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))
    except OverflowError:  # an int beyond float's range
        return False


def _positive_int(v: Any) -> Optional[int]:
    """``v`` as a positive int (480 or 480.0), else None."""
    if _is_number(v) and float(v) == int(v) and int(v) > 0:
        return int(v)
    return None


def _parse(json_file: str) -> Dict[str, Any]:
    """The file's top-level object, checked to have "images" and "categories" lists (and an
    "annotations" list if any). Faults of the whole file always stop."""
    if not g_pathmgr.isfile(json_file):
        raise MissingFileError(
            f"COCO annotation file {json_file} does not exist (layouts under "
            f"$RESNET_DET_DATASETS: docs/datasets.md)"
        )
    try:
        with g_pathmgr.open(json_file, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise DataError(f"COCO annotation file {json_file} cannot be read: {e}") from e
    if not raw.strip():
        raise DataError(f"COCO annotation file {json_file} is empty")
    try:
        data = json.loads(raw)
    except ValueError as e:  # JSONDecodeError (with line and column), UnicodeDecodeError
        raise DataError(f"COCO annotation file {json_file} is not valid json: {e}") from e
    except RecursionError as e:
        raise DataError(
            f"COCO annotation file {json_file} is not valid json: nested too deeply"
        ) from e
    if not isinstance(data, dict):
        raise DataError(
            f"COCO annotation file {json_file}: top level must be an object, "
            f"got {type(data).__name__}"
        )
    for key in ("images", "categories"):
        if not isinstance(data.get(key), list):
            raise DataError(f"COCO annotation file {json_file}: missing or non-list {key!r}")
    if not isinstance(data.get("annotations", []), list):
        raise DataError(f"COCO annotation file {json_file}: 'annotations' must be a list")
    return data


def _categories(data: Dict[str, Any], json_file: str) -> Tuple[Dict[int, int], List[str]]:
    """COCO category id -> contiguous index (in increasing id order), and the class names.
    The category list defines the labels, so its faults always stop."""
    cats = data["categories"]
    if not cats:
        raise DataError(f"COCO annotation file {json_file}: 'categories' is empty")
    for i, c in enumerate(cats):
        if not (isinstance(c, dict) and _is_int(c.get("id")) and isinstance(c.get("name"), str)):
            raise DataError(
                f"COCO annotation file {json_file}: categories[{i}] must be an "
                f"object with an int 'id' and a str 'name', got {c!r:.200}"
            )
    ids = [c["id"] for c in cats]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise DataError(f"COCO annotation file {json_file}: duplicate category ids {dup}")
    cats = sorted(cats, key=lambda c: c["id"])
    return {c["id"]: i for i, c in enumerate(cats)}, [c["name"] for c in cats]


def _images(data: Dict[str, Any], policy: FaultPolicy) -> Tuple[Dict[int, dict], Set[Any]]:
    """The usable image entries by id, and the ids of images left out (whose annotations go
    with them, uncounted)."""
    by_id: Dict[int, List[dict]] = {}
    left_out: Set[Any] = set()
    for i, img in enumerate(data["images"]):
        img_id = img.get("id") if isinstance(img, dict) else None
        ok = (
            isinstance(img, dict)
            and _is_int(img_id)
            and isinstance(img.get("file_name"), str)
            and img["file_name"]
            and _positive_int(img.get("height"))
            and _positive_int(img.get("width"))
        )
        if not ok:
            policy.image(
                "bad annotation",
                f"images[{i}] (image id {img_id!r:.50}) is not an "
                f"object with an int 'id', a 'file_name' and positive int 'height' "
                f"and 'width': {img!r:.200}",
                image_id=img_id,
                fix="correct the entry",
            )
            if _is_int(img_id):
                left_out.add(img_id)
            continue
        by_id.setdefault(img_id, []).append(img)
    images = {}
    for img_id, entries in by_id.items():
        if len(entries) > 1:
            for _ in entries:
                policy.image(
                    "duplicate id",
                    f"image id {img_id} is used by {len(entries)} "
                    f"'images' entries ({', '.join(e['file_name'] for e in entries)})",
                    image_id=img_id,
                    fix="give each image its own id",
                )
            left_out.add(img_id)
        else:
            images[img_id] = entries[0]
    return images, left_out


def _annotations(
    data: Dict[str, Any],
    images: Dict[int, dict],
    left_out: Set[Any],
    id_map: Dict[int, int],
    policy: FaultPolicy,
) -> Dict[int, List[dict]]:
    """The usable annotations grouped by image id, in file order."""
    per_image: Dict[int, List[dict]] = {}
    seen_ids: Set[int] = set()
    for i, ann in enumerate(data.get("annotations", [])):
        if not isinstance(ann, dict):
            policy.annotation(
                "malformed",
                f"annotations[{i}] is a {type(ann).__name__}, not an object",
                fix="correct the entry",
            )
            continue
        ann_id, img_id = ann.get("id"), ann.get("image_id")
        where = f"annotation id {ann_id!r:.50} (image id {img_id!r:.50})"
        if _is_int(img_id) and img_id in left_out:
            continue  # its image was left out, and counted
        if not _is_int(ann_id):
            policy.annotation(
                "malformed",
                f"annotations[{i}] ({where}) has no int 'id'",
                image_id=img_id,
                fix="give every annotation an int id",
            )
            continue
        if ann_id in seen_ids:
            policy.annotation(
                "duplicate id",
                f"{where}: annotation id {ann_id} is not unique",
                image_id=img_id,
                fix="give each annotation its own id",
            )
            continue
        seen_ids.add(ann_id)
        if not (_is_int(img_id) and img_id in images):
            policy.annotation(
                "unknown image",
                f"{where} refers to image id {img_id!r:.50}, which is not in 'images'",
                image_id=img_id,
                fix="add the image to 'images' or remove the annotation",
            )
            continue
        cat = ann.get("category_id")
        if not (_is_int(cat) and cat in id_map):
            policy.annotation(
                "unknown category",
                f"{where} has category_id {cat!r:.50}, which "
                f"is not in 'categories' (ids {sorted(id_map)})",
                image_id=img_id,
                fix="add the category to 'categories' or correct the annotation",
            )
            continue
        bbox, crowd = ann.get("bbox"), ann.get("iscrowd", 0)
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(_is_number(v) for v in bbox)):
            policy.annotation(
                "malformed",
                f"{where} has malformed bbox {bbox!r:.100}",
                image_id=img_id,
                fix="give it four finite numbers [x, y, w, h]",
            )
            continue
        if crowd not in (0, 1) or isinstance(crowd, float):
            policy.annotation(
                "malformed", f"{where} has iscrowd {crowd!r:.50}", image_id=img_id, fix="use 0 or 1"
            )
            continue
        # A mask is optional (null = none); one that is there must be usable, since
        # pycocotools trusts what it decodes (resnet_det/data/segmentation.py).
        if ann.get("segmentation") is not None:
            img = images[img_id]
            bad = check_segmentation(
                ann["segmentation"],
                _positive_int(img["height"]),
                _positive_int(img["width"]),
                crowd,
            )
            if bad is not None:
                policy.annotation("bad mask", f"{where} {bad[0]}", image_id=img_id, fix=bad[1])
                continue
        per_image.setdefault(img_id, []).append(ann)
    return per_image


def _read(json_file: str, policy: FaultPolicy):
    data = _parse(json_file)
    id_map, names = _categories(data, json_file)
    images, left_out = _images(data, policy)
    per_image = _annotations(data, images, left_out, id_map, policy)
    return data, id_map, names, images, per_image


def read_coco_api(json_file: str) -> COCO:
    """``json_file`` as a pycocotools ``COCO`` object, after the checks of load_coco_json under
    "stop" (any fault raises DataError naming the file and the entry); prints muted."""
    data, _, _, images, per_image = _read(json_file, FaultPolicy(json_file, "stop"))
    api = COCO()
    api.dataset = dict(
        data,
        images=list(images.values()),
        annotations=[a for anns in per_image.values() for a in anns],
    )
    with contextlib.redirect_stdout(io.StringIO()):
        api.createIndex()
    return api


def load_coco_json(
    json_file: str,
    image_root: str,
    dataset_name: Optional[str] = None,
    *,
    on_bad_image: str = "stop",
    skip_counts: Optional[SkipCounts] = None,
) -> List[dict]:
    """Read COCO instance annotations into dataset dicts (docs/internals.md).

    Boxes become absolute XYXY; category ids become contiguous 0-based indices in the order of
    increasing COCO id; ``iscrowd`` and the annotation ``id`` are kept; images without
    annotations are kept (the loader filters them when asked); images come in increasing id
    order. Boxes with width or height <= 0, or entirely outside their image, are dropped and
    counted; boxes partly outside are clipped. A ``segmentation`` (optional) is checked
    (resnet_det/data/segmentation.py) and kept as polygons (lists of floats) or compressed
    RLE (``{"size": [h, w], "counts": str}``; uncompressed RLE is compressed).

    Args:
        json_file: path of the COCO json (instances_*.json layout).
        image_root: folder the images' ``file_name`` entries are relative to.
        dataset_name: if given, ``thing_classes`` and ``thing_dataset_id_to_contiguous_id``
            are recorded in ``MetadataCatalog.get(dataset_name)``.
        on_bad_image: what a fault of one image or annotation does (docs/datasets.md "Bad
            data"): "stop" raises DataError naming the file, the ids and the fix; "skip"
            leaves the image (an "images" entry without a valid id, file name or size; an id
            used twice) or the annotation (unknown image or category id, malformed bbox,
            duplicate id; a bad mask: a polygon of fewer than 3 points, an RLE of another
            size than its image, polygons on a crowd region, any other malformed
            segmentation) out, counts it and logs one summary line.
        skip_counts: the counts of what was left out are added here.

    Raises:
        MissingFileError: ``json_file`` does not exist.
        DataError: the file is empty, not json, or lacks "images"/"categories"; the category
            list is empty or malformed; a fault under "stop"; no image is left.
    """
    policy = FaultPolicy(json_file, on_bad_image, skip_counts)
    _, id_map, thing_classes, images, per_image = _read(json_file, policy)
    if dataset_name is not None:
        try:
            MetadataCatalog.get(dataset_name).set(
                thing_classes=thing_classes, thing_dataset_id_to_contiguous_id=id_map
            )
        except ValueError as e:  # registered with other classes than this file's
            raise DataError(
                f"COCO annotation file {json_file}: its categories do not match "
                f"what dataset {dataset_name!r} was registered with ({e})"
            ) from e

    sanitize = BoxSanitizer(policy)
    dicts = []
    for img_id in sorted(images):
        img = images[img_id]
        height, width = _positive_int(img["height"]), _positive_int(img["width"])
        annos = []
        for ann in per_image.get(img_id, []):
            x, y, w, h = (float(v) for v in ann["bbox"])
            box = sanitize([x, y, x + w, y + h], width, height, img_id)
            if box is None:
                continue
            anno = {
                "bbox": list(box),
                "category_id": id_map[ann["category_id"]],
                "iscrowd": int(ann.get("iscrowd", 0)),
                "id": ann["id"],
            }
            if ann.get("segmentation") is not None:
                anno["segmentation"] = normalize_segmentation(ann["segmentation"], height, width)
            annos.append(anno)
        dicts.append(
            {
                "file_name": os.path.join(image_root, img["file_name"]),
                "image_id": img_id,
                "height": height,
                "width": width,
                "annotations": annos,
            }
        )
    policy.finish(len(dicts))
    logger.info(
        "Loaded %d images, %d annotations from %s",
        len(dicts),
        sum(len(d["annotations"]) for d in dicts),
        json_file,
    )
    return dicts
