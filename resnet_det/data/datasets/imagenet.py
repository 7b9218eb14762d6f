"""ImageNet-1k in the standard folder layout: <root>/imagenet/{train,val}/<wnid>/*.JPEG.

The class index of an image is the position of its wnid in the sorted list of class folders
(the order every ImageNet tool uses, n01440764 = 0). See datasets/README.md for getting from
the official tarballs to this layout.
"""
import logging
import os
from typing import Any, Dict, List, Optional, Sequence

from ...utils.errors import DataError, MissingFileError
from ..io import BadImageError, check_on_bad_image

__all__ = ["IMAGE_EXTENSIONS", "load_image_folder", "load_imagenet"]

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png", ".bmp", ".webp")


def _list_dir(path: str) -> List[str]:
    try:
        return sorted(os.listdir(path))
    except OSError as e:
        raise BadImageError.at(path, f"{type(e).__name__}: {e.strerror or e}",
                               kind="folder") from e


def load_image_folder(
    dirname: str, *, class_names: Optional[Sequence[str]] = None, on_bad_image: str = "stop"
) -> List[Dict[str, Any]]:
    """Reads ``dirname/<class>/<image>`` into classification dicts.

    Args:
        dirname: folder with one subfolder per class.
        class_names: the class list defining the label order; None: the sorted subfolders.
            Given, every subfolder must be one of them.
        on_bad_image: "stop" raises BadImageError naming an unreadable class folder; "skip"
            logs it, counts it and leaves its images out.

    Returns:
        list of {"file_name", "label", "image_id"} with image_id "<class>/<file stem>".
    """
    check_on_bad_image(on_bad_image)
    if not os.path.isdir(dirname):
        raise MissingFileError(f"image folder {dirname} does not exist (see datasets/README.md, 'ImageNet')")
    folders = [c for c in _list_dir(dirname) if os.path.isdir(os.path.join(dirname, c))]
    if class_names is None:
        class_names = folders
    index = {c: i for i, c in enumerate(class_names)}
    unknown = [c for c in folders if c not in index]
    if unknown:
        raise DataError(f"{dirname}: class folders {unknown[:5]} are not in the class list")
    dicts: List[Dict[str, Any]] = []
    skipped = 0
    for cls in folders:
        path = os.path.join(dirname, cls)
        try:
            files = _list_dir(path)
        except BadImageError as e:
            if on_bad_image == "stop":
                raise
            skipped += 1
            logger.warning("Skipping unreadable class folder (DATALOADER.ON_BAD_IMAGE=skip): %s", e)
            continue
        for f in files:
            stem, ext = os.path.splitext(f)
            if ext.lower() in IMAGE_EXTENSIONS:
                dicts.append({"file_name": os.path.join(path, f), "label": index[cls], "image_id": f"{cls}/{stem}"})
    if skipped:
        logger.warning("%s: %d unreadable class folder(s) skipped", dirname, skipped)
    if not dicts:
        raise DataError(f"image folder {dirname} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    logger.info("Loaded %d images of %d classes from %s", len(dicts), len(class_names), dirname)
    return dicts


def load_imagenet(root: str, split: str, *, on_bad_image: str = "stop") -> List[Dict[str, Any]]:
    """``root/{split}/<wnid>/*`` with the labels of ``root/train``'s class folders.

    Labels must mean the same classes as in training even if a val folder misses a class (a
    partial copy), so any split other than train takes its class list from train/ when that
    exists.

    Args:
        root: the imagenet folder.
        split: "train" or "val".
        on_bad_image: as in :func:`load_image_folder`.
    """
    class_names = None
    train_dir = os.path.join(root, "train")
    if split != "train" and os.path.isdir(train_dir):
        class_names = [c for c in _list_dir(train_dir) if os.path.isdir(os.path.join(train_dir, c))]
    return load_image_folder(os.path.join(root, split), class_names=class_names, on_bad_image=on_bad_image)
