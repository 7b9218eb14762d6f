"""A VOC-layout image set without annotations (VOC 2012 test) -> dataset dicts.

The VOC 2012 test annotations are not public: detections on it are scored by the PASCAL
evaluation server (resnet_det.evaluation.voc_submission writes them in its format). The dicts
therefore carry no "annotations"; "height"/"width" come from each JPEG's header (with its EXIF
orientation, as resnet_det.data.read_image decodes it), so that detections can be mapped back
to the original image before the whole image is read.
"""

import logging
import os
from typing import List, Optional, Tuple

from iopath.common.file_io import g_pathmgr
from PIL import Image, UnidentifiedImageError

from ...utils.errors import MissingFileError
from ..skips import FaultPolicy, SkipCounts
from .voc import read_voc_split

__all__ = ["load_voc_images"]

logger = logging.getLogger(__name__)

# EXIF orientations 5-8 rotate by 90 degrees: width and height swap when applied.
_EXIF_ORIENTATION = 0x0112
_TRANSPOSED = (5, 6, 7, 8)


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
