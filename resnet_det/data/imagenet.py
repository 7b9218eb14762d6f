"""ImageNet-1k in the standard folder layout: <root>/imagenet/{train,val}/<wnid>/*.JPEG.

The class index of an image is the position of its wnid in the sorted list of class folders
(the order every ImageNet tool uses, n01440764 = 0). See datasets/README.md for getting from
the official tarballs to this layout.
"""
import logging
import os
from typing import Any, Dict, List, Optional, Sequence

from .classification import BadImageError, ON_BAD_IMAGE_CHOICES, datasets_root, register_classification_reader

__all__ = ["IMAGE_EXTENSIONS", "load_image_folder", "register_imagenet"]

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png", ".bmp", ".webp")


def _list_dir(path: str) -> List[str]:
    try:
        return sorted(os.listdir(path))
    except OSError as e:
        raise BadImageError(path, f"{type(e).__name__}: {e.strerror or e}") from e


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
    if on_bad_image not in ON_BAD_IMAGE_CHOICES:
        raise ValueError(f"on_bad_image must be one of {ON_BAD_IMAGE_CHOICES}, got {on_bad_image!r}")
    if not os.path.isdir(dirname):
        raise FileNotFoundError(f"image folder {dirname} does not exist (see datasets/README.md, 'ImageNet')")
    folders = [c for c in _list_dir(dirname) if os.path.isdir(os.path.join(dirname, c))]
    if class_names is None:
        class_names = folders
    index = {c: i for i, c in enumerate(class_names)}
    unknown = [c for c in folders if c not in index]
    if unknown:
        raise ValueError(f"{dirname}: class folders {unknown[:5]} are not in the class list")
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
        raise ValueError(f"image folder {dirname} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    logger.info("Loaded %d images of %d classes from %s", len(dicts), len(class_names), dirname)
    return dicts


def _imagenet_reader(split: str):
    def read(on_bad_image: str = "stop") -> List[Dict[str, Any]]:
        root = os.path.join(datasets_root(), "imagenet")
        class_names = None
        train_dir = os.path.join(root, "train")
        if split != "train" and os.path.isdir(train_dir):
            # Labels must mean the same classes as in training even if a val folder is missing
            # (a partial copy): take the class list from train/.
            class_names = [c for c in _list_dir(train_dir) if os.path.isdir(os.path.join(train_dir, c))]
        return load_image_folder(os.path.join(root, split), class_names=class_names, on_bad_image=on_bad_image)

    return read


def register_imagenet() -> None:
    """Registers imagenet_train and imagenet_val (idempotent); the folders are looked up
    under $RESNET_DET_DATASETS when the data is read."""
    for split in ("train", "val"):
        register_classification_reader(
            f"imagenet_{split}",
            _imagenet_reader(split),
            num_classes=1000,
        )
