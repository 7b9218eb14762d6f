"""COCO-format instance annotations (json) -> dataset dicts, through pycocotools."""
import contextlib
import io
import json
import logging
import os
from typing import Dict, List, Optional

from iopath.common.file_io import g_pathmgr
from pycocotools.coco import COCO

from ...utils.errors import DataError, MissingFileError
from ..catalog import MetadataCatalog
from .boxes import BoxSanitizer

__all__ = ["load_coco_json", "read_coco_api"]

logger = logging.getLogger(__name__)


def read_coco_api(json_file: str) -> COCO:
    """Parse ``json_file`` into a pycocotools ``COCO`` object, with errors that name the file.

    The json is parsed here (not by ``COCO(json_file)``) so that an empty or broken file gives a
    DataError naming it instead of a bare JSONDecodeError, and pycocotools' prints are muted.
    """
    if not g_pathmgr.isfile(json_file):
        raise MissingFileError(f"COCO annotation file {json_file} does not exist (layouts under "
                               f"$RESNET_DET_DATASETS: docs/datasets.md)")
    with g_pathmgr.open(json_file, "rb") as f:
        raw = f.read()
    if not raw.strip():
        raise DataError(f"COCO annotation file {json_file} is empty")
    try:
        dataset = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise DataError(f"COCO annotation file {json_file} is not valid json: {e}") from e
    if not isinstance(dataset, dict):
        raise DataError(f"COCO annotation file {json_file}: top level must be an object, "
                         f"got {type(dataset).__name__}")
    for key in ("images", "categories"):
        if not isinstance(dataset.get(key), list):
            raise DataError(f"COCO annotation file {json_file}: missing or non-list {key!r}")
    dataset.setdefault("annotations", [])
    api = COCO()
    api.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        api.createIndex()
    return api


def load_coco_json(json_file: str, image_root: str, dataset_name: Optional[str] = None
                   ) -> List[dict]:
    """Read COCO instance annotations into dataset dicts (docs/internals.md).

    Boxes become absolute XYXY; category ids become contiguous 0-based indices in the order of
    increasing COCO id; ``iscrowd`` is kept; images without annotations are kept (the loader
    filters them when asked). Boxes with width or height <= 0, or entirely outside their image,
    are dropped with one counted warning naming image ids; boxes partly outside are clipped.

    Args:
        json_file: path of the COCO json (instances_*.json layout).
        image_root: folder the images' ``file_name`` entries are relative to.
        dataset_name: if given, ``thing_classes`` and ``thing_dataset_id_to_contiguous_id``
            are recorded in ``MetadataCatalog.get(dataset_name)``.

    Raises:
        MissingFileError: ``json_file`` does not exist.
        DataError: empty or unparsable file; an annotation whose category_id is not among
            "categories" or whose image_id is not among "images" (naming the annotation id,
            image id and file); duplicate annotation ids; malformed bbox.
    """
    api = read_coco_api(json_file)
    cats = sorted(api.dataset["categories"], key=lambda c: c["id"])
    if not cats:
        raise DataError(f"COCO annotation file {json_file}: 'categories' is empty")
    id_map: Dict[int, int] = {c["id"]: i for i, c in enumerate(cats)}
    if len(id_map) != len(cats):
        raise DataError(f"COCO annotation file {json_file}: duplicate category ids")
    thing_classes = [c["name"] for c in cats]
    if dataset_name is not None:
        MetadataCatalog.get(dataset_name).set(
            thing_classes=thing_classes, thing_dataset_id_to_contiguous_id=id_map
        )

    seen_ann_ids = set()
    for ann in api.dataset["annotations"]:
        ann_id = ann.get("id")
        if ann_id in seen_ann_ids:
            raise DataError(f"COCO annotation file {json_file}: annotation id {ann_id} is not "
                             f"unique")
        seen_ann_ids.add(ann_id)
        if ann.get("image_id") not in api.imgs:
            raise DataError(f"COCO annotation file {json_file}: annotation id {ann_id} refers "
                             f"to image id {ann.get('image_id')!r}, which is not in 'images'")
        if ann.get("category_id") not in id_map:
            raise DataError(
                f"COCO annotation file {json_file}: annotation id {ann_id} (image id "
                f"{ann.get('image_id')}) has category_id {ann.get('category_id')!r}, which is "
                f"not in 'categories' (ids {sorted(id_map)})"
            )

    sanitize = BoxSanitizer(json_file)
    dicts = []
    for img_id in sorted(api.imgs):
        img = api.imgs[img_id]
        try:
            height, width = int(img["height"]), int(img["width"])
            file_name = img["file_name"]
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"COCO annotation file {json_file}: image id {img_id} lacks a valid "
                             f"file_name/height/width ({e})") from e
        annos = []
        for ann in api.imgToAnns.get(img_id, []):
            bbox = ann.get("bbox")
            if not isinstance(bbox, (list, tuple)) or len(bbox) != 4:
                raise DataError(f"COCO annotation file {json_file}: annotation id {ann.get('id')}"
                                 f" (image id {img_id}) has malformed bbox {bbox!r}")
            x, y, w, h = (float(v) for v in bbox)
            box = sanitize([x, y, x + w, y + h], width, height, img_id)
            if box is None:
                continue
            annos.append({
                "bbox": list(box),
                "category_id": id_map[ann["category_id"]],
                "iscrowd": int(ann.get("iscrowd", 0)),
            })
        dicts.append({
            "file_name": os.path.join(image_root, file_name),
            "image_id": img_id,
            "height": height,
            "width": width,
            "annotations": annos,
        })
    sanitize.report()
    logger.info("Loaded %d images, %d annotations from %s", len(dicts),
                sum(len(d["annotations"]) for d in dicts), json_file)
    return dicts
