"""The demo chain's pretraining data: a classification set cut from generated shapes images.

The paper pretrains on ImageNet classification and fine-tunes on detection. The demo does the
same on data generated here, nothing downloaded: square crops around the objects of
shapes images (circle, square, triangle) plus one crop of background per image, 4 classes,
each crop resized to 40x40 RGB. The images are drawn by the demo detection sets' own
generator (resnet_det.data.datasets.shapes.render_shapes_image) with another seed, so no
pretraining image is one of shapes_train / shapes_val: the detector fine-tunes on images
its backbone has never seen, as the paper's detectors do.

Registered by :func:`register_demo_data` as the classification sets ``shapes_crops_train``
(from 600 images) and ``shapes_crops_test`` (from 150 others); a pure function of the seed,
held in memory (about 2,600 crops, 12 MB).
"""

from functools import lru_cache, partial
from typing import Any, Dict, List, Tuple

import numpy as np
from PIL import Image

from resnet_det.data.catalog import DatasetCatalog
from resnet_det.data.datasets.builtin import register_classification_dataset
from resnet_det.data.datasets.shapes import DIFFICULT_SIZE, SHAPE_CLASSES, render_shapes_image
from resnet_det.data.io import check_on_bad_image

__all__ = [
    "CROP_CLASSES",
    "CROP_SIZE",
    "NUM_IMAGES",
    "crop_boxes",
    "load_shapes_crops",
    "register_demo_data",
]

CROP_CLASSES = tuple(SHAPE_CLASSES) + ("background",)
CROP_SIZE = 40
NUM_IMAGES = {"train": 600, "test": 150}
# Not the detection sets' seed (shapes.DEFAULT_SEED = 0): other images.
_SEED = 2015
# A crop spans 1.3-1.8 object sides (some context, as an ImageNet object in its photo) with its
# centre moved by up to 10% of a side.
_CONTEXT = (1.3, 1.8)
_JITTER = 0.1
_SPLIT = {"train": "train", "test": "val"}  # the generator's split streams


def _square(cx: float, cy: float, side: float, w: int, h: int) -> Tuple[int, int, int, int]:
    """An integer square of ``side`` (at most the image's shorter side) around (cx, cy),
    moved inside the image."""
    side = int(round(min(side, w, h)))
    x0 = int(round(min(max(cx - side / 2, 0), w - side)))
    y0 = int(round(min(max(cy - side / 2, 0), h - side)))
    return x0, y0, x0 + side, y0 + side


def _overlap(a, b) -> float:
    """Area of the intersection of boxes a and b, as a fraction of b's area."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    return max(iw, 0) * max(ih, 0) / float((b[2] - b[0]) * (b[3] - b[1]))


def crop_boxes(
    split: str, index: int
) -> Tuple[np.ndarray, List[Tuple[Tuple[int, int, int, int], int]]]:
    """Image ``index`` of ``split`` and its crops: (image, [(square box x0, y0, x1, y1, label)])."""
    image, objects = render_shapes_image(_SEED, index, _SPLIT[split])
    h, w = image.shape[:2]
    rng = np.random.default_rng([_SEED, index, 1 if split == "train" else 2])
    crops = []
    for cls, x0, y0, x1, y1 in objects:
        side = x1 - x0
        if side < DIFFICULT_SIZE:  # the VOC copy's "difficult" objects: too small to name
            continue
        cx = (x0 + x1) / 2 + rng.uniform(-_JITTER, _JITTER) * side
        cy = (y0 + y1) / 2 + rng.uniform(-_JITTER, _JITTER) * side
        crops.append((_square(cx, cy, side * rng.uniform(*_CONTEXT), w, h), cls))
    # One background crop of an object's size, overlapping no object by more than 10% of it.
    objs = [o[1:] for o in objects]
    for _ in range(20):
        side = int(rng.integers(28, int(min(w, h) * 0.45) + 1))
        box = _square(rng.uniform(0, w), rng.uniform(0, h), side, w, h)
        if all(_overlap(box, o) <= 0.1 for o in objs):
            crops.append((box, len(SHAPE_CLASSES)))
            break
    return image, crops


def _crops_of_image(split: str, index: int) -> List[Tuple[np.ndarray, int]]:
    image, crops = crop_boxes(split, index)
    pil = Image.fromarray(image)
    return [
        (np.asarray(pil.crop(box).resize((CROP_SIZE, CROP_SIZE), Image.BILINEAR)), label)
        for box, label in crops
    ]


@lru_cache(maxsize=2)
def _split(split: str) -> Tuple[Tuple[np.ndarray, ...], Tuple[int, ...]]:
    images, labels = [], []
    for index in range(NUM_IMAGES[split]):
        for image, label in _crops_of_image(split, index):
            image.setflags(write=False)
            images.append(image)
            labels.append(label)
    return tuple(images), tuple(labels)


def load_shapes_crops(split: str, *, on_bad_image: str = "stop") -> List[Dict[str, Any]]:
    """The crops of ``split`` ("train" or "test") as classification dicts.

    Args:
        split: "train" or "test".
        on_bad_image: accepted for the loaders' common interface (generated data is never bad).

    Returns:
        list of {"image": uint8 [40, 40, 3] RGB, "label" (index in CROP_CLASSES), "image_id"}.
    """
    if split not in NUM_IMAGES:
        raise ValueError(f"shapes crops split must be one of {list(NUM_IMAGES)}, got {split!r}")
    check_on_bad_image(on_bad_image)
    images, labels = _split(split)
    return [
        {"image": im, "label": lab, "image_id": i}
        for i, (im, lab) in enumerate(zip(images, labels))
    ]


def register_demo_data() -> None:
    """Register ``shapes_crops_train`` and ``shapes_crops_test`` once; later calls do nothing."""
    for split in NUM_IMAGES:
        name = f"shapes_crops_{split}"
        if name not in DatasetCatalog.list():
            register_classification_dataset(
                name, partial(load_shapes_crops, split), thing_classes=list(CROP_CLASSES)
            )
