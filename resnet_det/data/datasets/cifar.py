"""CIFAR-10 from the official python batches: <root>/cifar-10-batches-py/{data_batch_1..5,
test_batch, batches.meta}.

The batches are pickles. A pickle can run arbitrary code when loaded, so they are read with a
restricted unpickler that only builds numpy arrays and plain containers (a file from the
internet must not be able to run code). Splits follow the paper (Sec. 4.2): the 50k training
images are split 45k/5k into train/val (the first 45k in batch order / the last 5k), and test
is test_batch.
"""

import logging
import os
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ...utils.errors import DataError, MissingFileError
from ...utils.safe_pickle import safe_load
from ..skips import FaultPolicy, SkipCounts

__all__ = ["CIFAR10_CLASSES", "SPLITS", "load_cifar10", "read_cifar_batch", "read_cifar_meta"]

logger = logging.getLogger(__name__)

CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
SPLITS = ("train", "val", "trainval", "test")


def _safe_load(path: str) -> Any:
    # The shared restricted unpickler: numpy arrays and plain containers only; latin1 is how
    # Python 2 pickles (the official files) load correctly.
    try:
        return safe_load(path)
    except Exception as e:
        raise DataError(f"{path}: not a CIFAR python batch ({type(e).__name__}: {e})") from e


def _key(d: Dict[Any, Any], name: str, path: str) -> Any:
    for k in (name, name.encode()):
        if k in d:
            return d[k]
    raise DataError(f"{path}: missing key {name!r} (keys: {sorted(map(str, d))})")


def read_cifar_batch(path: str, *, check_labels: bool = True) -> Tuple[np.ndarray, List[int]]:
    """One batch file -> (uint8 images [N, 32, 32, 3] RGB, labels).

    A batch holds 10k images and fixes the train/val split by position, so a fault of the
    file (missing, not a batch, a pickle naming code to run) always raises; labels outside
    0..9 raise too unless ``check_labels`` is False (load_cifar10 applies ON_BAD_IMAGE to
    them, image by image).
    """
    if not os.path.isfile(path):
        raise MissingFileError(
            f"CIFAR-10 batch {path} does not exist (see datasets/README.md, 'CIFAR-10')"
        )
    d = _safe_load(path)
    if not isinstance(d, dict):
        raise DataError(f"{path}: expected a dict, got {type(d).__name__}")
    data = np.asarray(_key(d, "data", path))
    try:
        labels = [int(x) for x in _key(d, "labels", path)]
    except (TypeError, ValueError, OverflowError) as e:
        raise DataError(f"{path}: 'labels' must be a list of ints ({e})") from e
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(f"{path}: 'data' must be uint8 [N, 3072], got {data.dtype} {data.shape}")
    if len(labels) != data.shape[0]:
        raise DataError(f"{path}: {data.shape[0]} images but {len(labels)} labels")
    bad = [x for x in labels if not 0 <= x < 10]
    if bad and check_labels:
        raise DataError(f"{path}: labels outside 0..9: {bad[:5]}")
    # Rows are 1024 R, then 1024 G, then 1024 B values, each plane row-major.
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def read_cifar_meta(dirname: str) -> List[str]:
    path = os.path.join(dirname, "batches.meta")
    if not os.path.isfile(path):
        raise MissingFileError(f"{path} does not exist (see datasets/README.md, 'CIFAR-10')")
    names = _key(_safe_load(path), "label_names", path)
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names]


def load_cifar10(
    dirname: str,
    split: str,
    *,
    on_bad_image: str = "stop",
    skip_counts: Optional[SkipCounts] = None,
) -> List[Dict[str, Any]]:
    """Reads a split of cifar-10-batches-py.

    Args:
        dirname: the cifar-10-batches-py folder.
        split: "train" (the first 45k training images, 90%), "val" (the last 5k), "trainval"
            (all 50k) or "test" (test_batch).
        on_bad_image: an image whose label is outside 0..9 raises DataError naming the batch
            and index under "stop", and is left out and counted under "skip"; the split is
            taken by position first, so it stays the paper's. Batch files are all-or-nothing:
            a bad one always raises with its path.
        skip_counts: the counts of what was left out are added here.

    Returns:
        list of {"image": uint8 [32, 32, 3] RGB, "label", "image_id": "<batch>/<index>"}.
    """
    if split not in SPLITS:
        raise ValueError(f"CIFAR-10 split must be one of {SPLITS}, got {split!r}")
    policy = FaultPolicy(dirname, on_bad_image, skip_counts)
    names = ("test_batch",) if split == "test" else TRAIN_BATCHES
    dicts: List[Dict[str, Any]] = []
    for b in names:
        images, labels = read_cifar_batch(os.path.join(dirname, b), check_labels=False)
        dicts.extend(
            {"image": images[i], "label": labels[i], "image_id": f"{b}/{i}"}
            for i in range(len(labels))
        )
    # 45k/5k of the official 50k: the first 90% in batch order train, the last 10% validate.
    num_train = len(dicts) * 9 // 10
    if split == "train":
        dicts = dicts[:num_train]
    elif split == "val":
        dicts = dicts[num_train:]
    kept = []
    for d in dicts:
        if 0 <= d["label"] < len(CIFAR10_CLASSES):
            kept.append(d)
        else:
            policy.image(
                "unknown category",
                f"image {d['image_id']} has label {d['label']}, outside 0..9",
                image_id=d["image_id"],
                fix="replace the batch file with the official one",
            )
    policy.finish(len(kept))
    return kept
