"""PASCAL VOC layout -> dataset dicts.

- :func:`load_voc_instances`: an annotated split, its xml annotations read with detectron2's
  conventions.
- :func:`load_voc_images`: an image set without annotations (VOC 2012 test, whose annotations
  are not public: the PASCAL evaluation server scores detections on it, and
  resnet_det.evaluation.voc_submission writes them in its format). Its dicts carry no
  "annotations"; "height"/"width" come from each JPEG's header (with its EXIF orientation, as
  resnet_det.data.read_image decodes it), so that detections can be mapped back to the
  original image before the whole image is read.
"""

import logging
import math
import os
import xml.etree.ElementTree as ET
from typing import List, Optional, Sequence, Tuple

from iopath.common.file_io import g_pathmgr
from PIL import Image, UnidentifiedImageError

from ...utils.errors import DataError, MissingFileError
from ..skips import FaultPolicy, SkipCounts
from .boxes import BoxSanitizer

__all__ = ["VOC_CLASSES", "load_voc_instances", "load_voc_images", "read_voc_split"]

logger = logging.getLogger(__name__)

# VOC's class order: contiguous id = index here (0-based); results files add 1.
VOC_CLASSES = (
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
# EXIF orientations 5-8 rotate by 90 degrees: width and height swap when applied.
_EXIF_ORIENTATION = 0x0112
_TRANSPOSED = (5, 6, 7, 8)


class _Malformed(Exception):
    """A field of one xml that cannot be read (the message says which)."""


def _text(node: ET.Element, path: str) -> str:
    child = node.find(path)
    if child is None or child.text is None or not child.text.strip():
        raise _Malformed(f"missing <{path}>")
    return child.text.strip()


def _number(node: ET.Element, path: str) -> float:
    text = _text(node, path)
    try:
        value = float(text)
    except ValueError:
        raise _Malformed(f"<{path}> is {text[:50]!r}, not a number") from None
    if not math.isfinite(value):
        raise _Malformed(f"<{path}> is {text[:50]!r}, not a finite number")
    return value


def read_voc_split(split_file: str) -> List[str]:
    """The image ids (first word of each line) of an ImageSets/Main/<split>.txt file."""
    if not g_pathmgr.isfile(split_file):
        raise MissingFileError(
            f"VOC split file {split_file} does not exist (layouts under "
            f"$RESNET_DET_DATASETS: docs/datasets.md)"
        )
    try:
        with g_pathmgr.open(split_file, "r") as f:
            return [line.split()[0] for line in f if line.strip()]
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"VOC split file {split_file} cannot be read: {e}") from e


def _parse_xml(xml_file: str) -> Tuple[ET.Element, int, int]:
    """The xml's root and its <size> (width, height); _Malformed if unusable."""
    try:
        with g_pathmgr.open(xml_file, "rb") as f:
            root = ET.parse(f).getroot()
    except ET.ParseError as e:
        raise _Malformed(f"not valid xml: {e}") from e
    except (OSError, ValueError, LookupError) as e:  # unreadable; an unknown encoding
        raise _Malformed(f"cannot be read: {type(e).__name__}: {e}") from e
    width, height = _number(root, "size/width"), _number(root, "size/height")
    if width != int(width) or height != int(height) or width <= 0 or height <= 0:
        raise _Malformed(f"<size> must be positive integers, got {width} x {height}")
    return root, int(width), int(height)


def _object(obj: ET.Element) -> Tuple[str, Tuple[float, float, float, float], int]:
    """(class name, (xmin, ymin, xmax, ymax) as in the file, difficult) of one <object>."""
    name = _text(obj, "name")
    box = tuple(_number(obj, "bndbox/" + k) for k in ("xmin", "ymin", "xmax", "ymax"))
    diff = obj.find("difficult")
    text = diff.text.strip() if diff is not None and diff.text else ""
    if text not in ("", "0", "1"):
        raise _Malformed(f"<difficult> is {text[:20]!r}, not 0 or 1")
    return name, box, int(text or 0)


def load_voc_instances(
    dirname: str,
    split: str,
    class_names: Sequence[str] = VOC_CLASSES,
    *,
    on_bad_image: str = "stop",
    skip_counts: Optional[SkipCounts] = None,
) -> List[dict]:
    """Read a VOC-layout folder into dataset dicts (docs/internals.md).

    Boxes are read as (xmin - 1, ymin - 1, xmax, ymax): VOC's 1-based inclusive pixel indices
    turned into continuous 0-based coordinates, as detectron2 reads them. Each annotation keeps
    ``difficult`` (0/1; absent tag = 0); difficult objects stay in training (detectron2's
    choice) and the VOC metric ignores them. ``image_id`` is the file stem string. Boxes with
    no area or entirely outside the image are dropped and counted; boxes partly outside are
    clipped.

    Args:
        dirname: folder with Annotations/, JPEGImages/, ImageSets/Main/.
        split: image set name; ids are read from ImageSets/Main/<split>.txt.
        class_names: class order; category_id is the index of the object's name here.
        on_bad_image: what a fault of one image or object does (docs/datasets.md "Bad data"):
            "stop" raises DataError naming the xml and the fix; "skip" leaves out the image
            (its xml missing, not xml, or without a usable <size>; its id listed twice) or
            the object (a class not in ``class_names``, a malformed <bndbox>), counts it and
            logs one summary line.
        skip_counts: the counts of what was left out are added here.

    Raises:
        MissingFileError: the split file is missing; under "stop", an image's xml.
        DataError: a fault under "stop" (names the xml and the image id); no image is left.
    """
    class_index = {c: i for i, c in enumerate(class_names)}
    split_file = os.path.join(dirname, "ImageSets", "Main", split + ".txt")
    ids = read_voc_split(split_file)
    policy = FaultPolicy(os.path.join(dirname, "Annotations"), on_bad_image, skip_counts)
    sanitize = BoxSanitizer(policy)
    dicts = []
    seen = set()
    for img_id in ids:
        xml_file = os.path.join(dirname, "Annotations", img_id + ".xml")
        if img_id in seen:
            policy.image(
                "duplicate id",
                f"image id {img_id} is listed twice in {split_file}",
                image_id=img_id,
                fix="list each image once",
            )
            continue
        seen.add(img_id)
        if not g_pathmgr.isfile(xml_file):
            policy.image(
                "bad annotation",
                f"VOC annotation {xml_file} (image id {img_id}) "
                f"does not exist (listed in {split_file})",
                image_id=img_id,
                fix="add the xml or remove the id from the split file",
                error=MissingFileError,
            )
            continue
        try:
            root, width, height = _parse_xml(xml_file)
        except _Malformed as e:
            policy.image(
                "bad annotation",
                f"VOC annotation {xml_file} (image id {img_id}): {e}",
                image_id=img_id,
                fix="correct the xml",
            )
            continue
        annos = []
        for k, obj in enumerate(root.findall("object")):
            try:
                name, (x0, y0, x1, y1), difficult = _object(obj)
            except _Malformed as e:
                policy.annotation(
                    "malformed",
                    f"VOC annotation {xml_file} (image id {img_id}), object {k}: {e}",
                    image_id=img_id,
                    fix="correct the xml",
                )
                continue
            if name not in class_index:
                policy.annotation(
                    "unknown category",
                    f"VOC annotation {xml_file} (image id {img_id}): "
                    f"unknown class name {name[:50]!r} (known: {list(class_names)})",
                    image_id=img_id,
                    fix="correct the name or pass class_names with it",
                )
                continue
            box = sanitize([x0 - 1.0, y0 - 1.0, x1, y1], width, height, img_id)
            if box is None:
                continue
            annos.append(
                {
                    "bbox": list(box),
                    "category_id": class_index[name],
                    "iscrowd": 0,
                    "difficult": difficult,
                }
            )
        dicts.append(
            {
                "file_name": os.path.join(dirname, "JPEGImages", img_id + ".jpg"),
                "image_id": img_id,
                "height": height,
                "width": width,
                "annotations": annos,
            }
        )
    policy.finish(len(dicts))
    logger.info("Loaded %d images from %s (split %s)", len(dicts), dirname, split)
    return dicts


def _displayed_size(file_name: str) -> Tuple[int, int]:
    """(width, height) of the image as displayed, from its header only."""
    with g_pathmgr.open(file_name, "rb") as f:
        with Image.open(f) as img:
            width, height = img.size
            if img.getexif().get(_EXIF_ORIENTATION) in _TRANSPOSED:
                width, height = height, width
    return width, height


def load_voc_images(
    dirname: str,
    split: str,
    *,
    on_bad_image: str = "stop",
    skip_counts: Optional[SkipCounts] = None,
) -> List[dict]:
    """Read the images of ImageSets/Main/<split>.txt of a VOC-layout folder, without
    annotations (docs/datasets.md, ``voc_2012_test``).

    Each dict has "file_name" (JPEGImages/<id>.jpg), "image_id" (the file stem string),
    "height" and "width"; no "annotations".

    Args:
        dirname: folder with JPEGImages/ and ImageSets/Main/.
        split: image set name (e.g. "test").
        on_bad_image: "stop" raises naming the file and the fix; "skip" leaves out an image
            that is missing, unreadable or listed twice, counts it and logs one summary line.
        skip_counts: the counts of what was left out are added here.

    Raises:
        MissingFileError: the split file is missing (or, under "stop", an image).
        DataError: a fault under "stop" (names the file); no image is left.
    """
    split_file = os.path.join(dirname, "ImageSets", "Main", split + ".txt")
    ids = read_voc_split(split_file)
    policy = FaultPolicy(os.path.join(dirname, "JPEGImages"), on_bad_image, skip_counts)
    dicts, seen = [], set()
    for img_id in ids:
        if img_id in seen:
            policy.image(
                "duplicate id",
                f"image id {img_id} is listed twice in {split_file}",
                image_id=img_id,
                fix="list each image once",
            )
            continue
        seen.add(img_id)
        file_name = os.path.join(dirname, "JPEGImages", img_id + ".jpg")
        if not g_pathmgr.isfile(file_name):
            policy.image(
                "missing",
                f"image {file_name} (image id {img_id}, listed in {split_file}) does not exist",
                image_id=img_id,
                fix="add the image or remove the id from the split file",
                error=MissingFileError,
            )
            continue
        try:
            width, height = _displayed_size(file_name)
        except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as e:
            policy.image(
                "unreadable",
                f"image {file_name} (image id {img_id}) cannot be read: {type(e).__name__}: {e}",
                image_id=img_id,
                fix="replace or remove it",
            )
            continue
        dicts.append({"file_name": file_name, "image_id": img_id, "height": height, "width": width})
    policy.finish(len(dicts))
    logger.info("Loaded %d images (no annotations) from %s (split %s)", len(dicts), dirname, split)
    return dicts
