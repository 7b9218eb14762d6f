"""ImageNet-1k in the standard folder layout: <root>/imagenet/{train,val}/<wnid>/*.JPEG.

The class index of an image is the position of its wnid in the sorted list of class folders
(the order every ImageNet tool uses, n01440764 = 0). See datasets/README.md for getting from
the official tarballs to this layout.
"""

import logging
import os
from typing import Any, Dict, List, Optional, Sequence

from ...utils.errors import MissingFileError
from ..skips import BadImageError, FaultPolicy, SkipCounts

__all__ = ["IMAGE_EXTENSIONS", "load_image_folder", "load_imagenet"]

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png", ".bmp", ".webp")


def _list_dir(path: str) -> List[str]:
    try:
        return sorted(os.listdir(path))
    except OSError as e:
        raise BadImageError.at(path, f"{type(e).__name__}: {e.strerror or e}", kind="folder") from e


def load_image_folder(
    dirname: str,
    *,
    class_names: Optional[Sequence[str]] = None,
    on_bad_image: str = "stop",
    skip_counts: Optional[SkipCounts] = None,
) -> List[Dict[str, Any]]:
    """Reads ``dirname/<class>/<image>`` into classification dicts.

    Args:
        dirname: folder with one subfolder per class.
        class_names: the class list defining the label order; None: the sorted subfolders.
        on_bad_image: what a fault of one folder or image does (docs/datasets.md "Bad data"):
            "stop" raises (BadImageError for a class folder that cannot be listed, DataError
            for a folder not in ``class_names`` or two files with one image id); "skip"
            leaves the folder or the later file out, counts it and logs one summary line.
            Images that cannot be decoded are met when read (the classification datasets).
        skip_counts: the counts of what was left out are added here.

    Returns:
        list of {"file_name", "label", "image_id"} with image_id "<class>/<file stem>".
    """
    policy = FaultPolicy(dirname, on_bad_image, skip_counts)
    if not os.path.isdir(dirname):
        raise MissingFileError(
            f"image folder {dirname} does not exist (see datasets/README.md, 'ImageNet')"
        )
    folders = [c for c in _list_dir(dirname) if os.path.isdir(os.path.join(dirname, c))]
    if class_names is None:
        class_names = folders
    index = {c: i for i, c in enumerate(class_names)}
    dicts: List[Dict[str, Any]] = []
    for cls in folders:
        path = os.path.join(dirname, cls)
        try:
            files = _list_dir(path)
        except BadImageError as e:
            if on_bad_image == "stop":
                raise
            policy.image("unreadable folder", str(e), image_id=cls)
            continue
        images = [f for f in files if os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS]
        if cls not in index:
            for _ in images:
                policy.image(
                    "unknown category",
                    f"class folder {cls} is not in the class "
                    f"list ({len(class_names)} classes: {list(class_names)[:5]}...)",
                    image_id=cls,
                    fix="remove the folder or use the training set's class folders",
                )
            continue
        stems = set()
        for f in images:
            stem = os.path.splitext(f)[0]
            if stem in stems:
                policy.image(
                    "duplicate id",
                    f"{path}: {f} has the image id {cls}/{stem} of another file",
                    image_id=f"{cls}/{stem}",
                    fix="rename one of the files",
                )
                continue
            stems.add(stem)
            dicts.append(
                {
                    "file_name": os.path.join(path, f),
                    "label": index[cls],
                    "image_id": f"{cls}/{stem}",
                }
            )
    policy.finish(len(dicts))
    logger.info("Loaded %d images of %d classes from %s", len(dicts), len(class_names), dirname)
    return dicts


def load_imagenet(
    root: str, split: str, *, on_bad_image: str = "stop", skip_counts: Optional[SkipCounts] = None
) -> List[Dict[str, Any]]:
    """``root/{split}/<wnid>/*`` with the labels of ``root/train``'s class folders.

    Labels must mean the same classes as in training even if a val folder misses a class (a
    partial copy), so any split other than train takes its class list from train/ when that
    exists.

    Args:
        root: the imagenet folder.
        split: "train" or "val".
        on_bad_image, skip_counts: as in :func:`load_image_folder`.
    """
    class_names = None
    train_dir = os.path.join(root, "train")
    if split != "train" and os.path.isdir(train_dir):
        class_names = [c for c in _list_dir(train_dir) if os.path.isdir(os.path.join(train_dir, c))]
    return load_image_folder(
        os.path.join(root, split),
        class_names=class_names,
        on_bad_image=on_bad_image,
        skip_counts=skip_counts,
    )
