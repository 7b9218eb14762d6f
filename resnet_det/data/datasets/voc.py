"""PASCAL VOC xml annotations -> dataset dicts (detectron2's reading conventions)."""
import logging
import os
import xml.etree.ElementTree as ET
from typing import List, Sequence

from iopath.common.file_io import g_pathmgr

from ...utils.errors import DataError, MissingFileError
from .boxes import BoxSanitizer

__all__ = ["VOC_CLASSES", "load_voc_instances"]

logger = logging.getLogger(__name__)

# VOC's class order: contiguous id = index here (0-based); results files add 1.
VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)


def _text(node: ET.Element, path: str, xml_file: str) -> str:
    child = node.find(path)
    if child is None or child.text is None:
        raise DataError(f"VOC annotation {xml_file}: missing <{path}>")
    return child.text.strip()


def load_voc_instances(dirname: str, split: str, class_names: Sequence[str] = VOC_CLASSES
                       ) -> List[dict]:
    """Read a VOC-layout folder into dataset dicts (docs/internals.md).

    Boxes are read as (xmin - 1, ymin - 1, xmax, ymax): VOC's 1-based inclusive pixel indices
    turned into continuous 0-based coordinates, as detectron2 reads them. Each annotation keeps
    ``difficult`` (0/1; absent tag = 0); difficult objects stay in training (detectron2's
    choice) and the VOC metric ignores them. ``image_id`` is the file stem string.

    Args:
        dirname: folder with Annotations/, JPEGImages/, ImageSets/Main/.
        split: image set name; ids are read from ImageSets/Main/<split>.txt.
        class_names: class order; category_id is the index of the object's name here.

    Raises:
        MissingFileError: the split file or an image's xml is missing (names the file).
        DataError: an object's class is not in ``class_names`` (names file and class), or
            the xml lacks size/bndbox fields.
    """
    class_index = {c: i for i, c in enumerate(class_names)}
    split_file = os.path.join(dirname, "ImageSets", "Main", split + ".txt")
    if not g_pathmgr.isfile(split_file):
        raise MissingFileError(f"VOC split file {split_file} does not exist (layouts under "
                               f"$RESNET_DET_DATASETS: docs/datasets.md)")
    with g_pathmgr.open(split_file, "r") as f:
        ids = [line.split()[0] for line in f if line.strip()]

    sanitize = BoxSanitizer(os.path.join(dirname, "Annotations"))
    dicts = []
    for img_id in ids:
        xml_file = os.path.join(dirname, "Annotations", img_id + ".xml")
        if not g_pathmgr.isfile(xml_file):
            raise MissingFileError(f"VOC annotation {xml_file} does not exist (listed in "
                                    f"{split_file})")
        with g_pathmgr.open(xml_file, "rb") as f:
            try:
                root = ET.parse(f).getroot()
            except ET.ParseError as e:
                raise DataError(f"VOC annotation {xml_file} is not valid xml: {e}") from e
        try:
            width = int(float(_text(root, "size/width", xml_file)))
            height = int(float(_text(root, "size/height", xml_file)))
        except ValueError as e:
            raise DataError(f"VOC annotation {xml_file}: bad <size>: {e}") from e
        annos = []
        for obj in root.findall("object"):
            name = _text(obj, "name", xml_file)
            if name not in class_index:
                raise DataError(f"VOC annotation {xml_file}: unknown class name {name!r} "
                                 f"(known: {list(class_names)})")
            diff = obj.find("difficult")
            difficult = int(diff.text.strip()) if diff is not None and diff.text else 0
            try:
                x0, y0, x1, y1 = (float(_text(obj, "bndbox/" + k, xml_file))
                                  for k in ("xmin", "ymin", "xmax", "ymax"))
            except ValueError as e:
                raise DataError(f"VOC annotation {xml_file}: bad <bndbox>: {e}") from e
            box = sanitize([x0 - 1.0, y0 - 1.0, x1, y1], width, height, img_id)
            if box is None:
                continue
            annos.append({"bbox": list(box), "category_id": class_index[name], "iscrowd": 0,
                          "difficult": difficult})
        dicts.append({
            "file_name": os.path.join(dirname, "JPEGImages", img_id + ".jpg"),
            "image_id": img_id,
            "height": height,
            "width": width,
            "annotations": annos,
        })
    sanitize.report()
    logger.info("Loaded %d images from %s (split %s)", len(dicts), dirname, split)
    return dicts
