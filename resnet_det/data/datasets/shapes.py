"""Generator of the demo detection data: coloured shapes on textured, noisy backgrounds.

Small enough to train a detector on a CPU in minutes (configs/demo/faster_rcnn_shapes.yaml
records the measured AP50; docs/datasets.md, "Demo sets"), and written in both layouts the
package reads: COCO json (``<root>/shapes``) and PASCAL VOC xml (``<root>/shapes_voc``).
Every image is a pure function of (seed, split, index), so two generations are
byte-identical.

Layouts::

    shapes/train/000001.jpg ...        shapes/annotations/instances_train.json
    shapes/val/000401.jpg ...          shapes/annotations/instances_val.json
    shapes_voc/JPEGImages/000001.jpg   shapes_voc/Annotations/000001.xml
    shapes_voc/ImageSets/Main/{train,val}.txt

Train images are numbered 1..num_train and val images follow, so COCO image id ==
int(VOC file stem). Objects smaller than ``DIFFICULT_SIZE`` pixels are marked difficult in the
VOC copy (COCO has no such flag; there they are ordinary objects). The COCO json also holds
each object's instance mask ("segmentation": polygons for squares and triangles, RLE for
circles; :func:`shape_segmentation`), so the COCO copy serves Mask R-CNN; its "area" is the
box's, so that box AP by object size does not depend on the masks. An object's pixels and its
mask come from the same drawing call (:func:`draw_shape`).
"""

import hashlib
import io
import json
import logging
import os
import shutil
import uuid
import xml.etree.ElementTree as ET
from typing import Any, Dict, Iterator, List, Tuple, Union

import numpy as np
from PIL import Image, ImageDraw
from pycocotools import mask as mask_util

from ...utils.errors import DataError
from ...utils.file_io import atomic_open

__all__ = [
    "SHAPE_CLASSES",
    "DIFFICULT_SIZE",
    "render_shapes_image",
    "draw_shape",
    "shape_mask",
    "shape_segmentation",
    "write_shapes_datasets",
    "ensure_shapes_dataset",
    "ensure_shapes_datasets",
    "shapes_digest",
]

logger = logging.getLogger(__name__)

SHAPE_CLASSES = ("circle", "square", "triangle")
# Side (pixels) below which an object is "difficult" in the VOC copy.
DIFFICULT_SIZE = 16
DEFAULT_SEED = 0
DEFAULT_NUM_TRAIN = 400
DEFAULT_NUM_VAL = 100
# Difficulty knobs (see _background / render_shapes_image), set so that the demo config (R18-FPN,
# 300 iterations of 4 images) learns within a CPU's minutes: strong colour contrast, sides
# >= 28 px and mild texture/noise train it to a higher AP50 than busier variants; sides up to
# 0.45 of the image keep a few COCO "large" objects; the texture and noise stay so that boxes
# are not found by flat-colour contrast.
_RAMP_AMPLITUDE = 50.0
_TEXTURE_AMPLITUDE = (3.0, 12.0)
_NOISE_SIGMA = (3.0, 8.0)
_TINY_FRACTION = 0.02
_MIN_SIDE = 28
_MAX_SIDE_FRACTION = 0.45
_MIN_CONTRAST = 250
# Bumped whenever the drawing changes, so that a folder from an older generator is detected.
GENERATOR_VERSION = 2
# Version of the COCO json's contents beyond boxes, recorded as "masks" in the COCO folder's
# marker: 1 = a "segmentation" for every object. A folder whose marker has no "masks" (made
# before masks existed, same images and boxes) is completed in place rather than regenerated.
MASKS_VERSION = 1
_MARKER = "COMPLETE.json"
_SPLIT_CODE = {"train": 0, "val": 1}

# One object: (class index, x0, y0, x1, y1) with x1/y1 exclusive (continuous pixel box).
ShapeObject = Tuple[int, int, int, int, int]


def draw_shape(draw: ImageDraw.ImageDraw, cls: int, x0: int, y0: int, side: int, fill) -> None:
    """Draw shape ``cls`` filling the pixels of the box [x0, x0 + side) x [y0, y0 + side)."""
    x1, y1 = x0 + side - 1, y0 + side - 1  # PIL coordinates are inclusive pixel indices
    if SHAPE_CLASSES[cls] == "circle":
        draw.ellipse([x0, y0, x1, y1], fill=fill)
    elif SHAPE_CLASSES[cls] == "square":
        draw.rectangle([x0, y0, x1, y1], fill=fill)
    else:
        draw.polygon([(x0, y1), (x1, y1), (x0 + (side - 1) // 2, y0)], fill=fill)


def shape_mask(cls: int, x0: int, y0: int, x1: int, y1: int, height: int, width: int) -> np.ndarray:
    """The pixels the generator fills for object (cls, x0, y0, x1, y1) of a height x width
    image, as a uint8 array (1 inside)."""
    canvas = Image.new("L", (width, height), 0)
    draw_shape(ImageDraw.Draw(canvas), cls, x0, y0, x1 - x0, 1)
    return np.asarray(canvas, dtype=np.uint8)


def shape_segmentation(
    cls: int, x0: int, y0: int, x1: int, y1: int, height: int, width: int
) -> Union[List[List[float]], Dict[str, Any]]:
    """The COCO "segmentation" of object (cls, x0, y0, x1, y1) of a height x width image.

    Squares and triangles are polygons in continuous pixel coordinates, whose pycocotools
    rasterisation gives the generator's pixels (a square exactly; a triangle up to its slanted
    edges); circles are RLE (compressed counts) of the very pixels the generator fills, which a
    polygon would only approximate. Each mask spans the object's box.
    """
    shape = SHAPE_CLASSES[cls]
    if shape == "square":
        return [[float(v) for v in (x0, y0, x1, y0, x1, y1, x0, y1)]]
    if shape == "triangle":
        apex = x0 + (x1 - x0 - 1) // 2 + 0.5  # the centre of the apex pixel
        return [[float(x0), float(y1), float(x1), float(y1), apex, float(y0)]]
    rle = mask_util.encode(np.asfortranarray(shape_mask(cls, x0, y0, x1, y1, height, width)))
    return {"size": [int(height), int(width)], "counts": rle["counts"].decode("ascii")}


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A base colour plus a ramp and a sinusoidal texture, so boxes cannot be found by
    thresholding a flat colour."""
    base = rng.integers(30, 226, size=3).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * xx / w + np.sin(angle) * yy / h) * rng.uniform(
        -_RAMP_AMPLITUDE, _RAMP_AMPLITUDE
    )
    freq = rng.uniform(0.02, 0.12, size=2)
    texture = np.sin(2 * np.pi * (freq[0] * xx + freq[1] * yy)) * rng.uniform(*_TEXTURE_AMPLITUDE)
    img = base[None, None, :] + (ramp + texture)[:, :, None]
    return img


def _pick_color(rng: np.random.Generator, avoid: np.ndarray) -> Tuple[int, int, int]:
    for _ in range(50):
        color = rng.integers(0, 256, size=3)
        if np.abs(color.astype(np.float32) - avoid).sum() > _MIN_CONTRAST:
            break
    return tuple(int(c) for c in color)


def render_shapes_image(seed: int, index: int, split: str) -> Tuple[np.ndarray, List[ShapeObject]]:
    """Draw image ``index`` of ``split``; returns (uint8 HxWx3 RGB array, objects).

    Sizes 160-256 px per side, 1-4 non-overlapping objects, sides 28 px to 0.45 of the image
    (about 2% tiny, 10-15 px), random colours contrasting with the background.
    """
    rng = np.random.default_rng([int(seed), _SPLIT_CODE[split], int(index)])
    w, h = (int(v) for v in rng.integers(160, 257, size=2))
    bg = _background(rng, h, w)
    mean_bg = bg.reshape(-1, 3).mean(0)
    canvas = Image.fromarray(np.clip(bg, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    objects: List[ShapeObject] = []
    for _ in range(int(rng.integers(1, 5))):
        cls = int(rng.integers(len(SHAPE_CLASSES)))
        if rng.random() < _TINY_FRACTION:
            side = int(rng.integers(10, DIFFICULT_SIZE))
        else:
            side = int(rng.integers(_MIN_SIDE, int(min(w, h) * _MAX_SIDE_FRACTION) + 1))
        color = _pick_color(rng, mean_bg)
        for _try in range(20):
            x0, y0 = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
            box = (x0, y0, x0 + side, y0 + side)
            # Keep a 2 px gap between objects: occlusion would make the box labels ambiguous.
            if all(
                box[0] >= o[3] + 2 or box[2] + 2 <= o[1] or box[1] >= o[4] + 2 or box[3] + 2 <= o[2]
                for o in objects
            ):
                break
        else:
            continue
        draw_shape(draw, cls, x0, y0, side, color)
        objects.append((cls, x0, y0, x0 + side, y0 + side))
    img = np.asarray(canvas).astype(np.float32)
    img += rng.normal(0.0, rng.uniform(*_NOISE_SIGMA), size=img.shape).astype(np.float32)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8), objects


def shapes_digest(
    seed: int = DEFAULT_SEED, num_train: int = DEFAULT_NUM_TRAIN, num_val: int = DEFAULT_NUM_VAL
) -> str:
    """SHA-256 (hex) of what a detector trained on the demo set sees: every image's pixels as
    drawn (before JPEG encoding, which belongs to the installed libjpeg, not to this code) and
    every object's class and box, in order, for both splits.

    The demo's measured results hold for one digest (tests/configs/test_demo_pinned.py).
    Deliberately left out: the files' encoding and any other annotation field (instance masks,
    for instance), so adding fields to the json keeps the digest, while changing a pixel, a box
    or a class does not.
    """
    h = hashlib.sha256()
    for split, count in (("train", num_train), ("val", num_val)):
        for i in range(count):
            arr, objects = render_shapes_image(seed, i, split)[:2]
            h.update(f"{split} {i} {arr.shape}".encode())
            h.update(np.ascontiguousarray(arr).tobytes())
            h.update(repr([tuple(int(v) for v in obj[:5]) for obj in objects]).encode())
    return h.hexdigest()


def _iter_images(
    seed: int, num_train: int, num_val: int
) -> Iterator[Tuple[str, int, bytes, int, int, List[ShapeObject]]]:
    """Yield (split, image number (1-based, global), jpeg bytes, width, height, objects)."""
    number = 0
    for split, count in (("train", num_train), ("val", num_val)):
        for i in range(count):
            number += 1
            arr, objects = render_shapes_image(seed, i, split)
            buf = io.BytesIO()
            Image.fromarray(arr).save(buf, format="JPEG", quality=90)
            yield split, number, buf.getvalue(), arr.shape[1], arr.shape[0], objects


def _stem(number: int) -> str:
    return f"{number:06d}"


def _write_bytes(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


def _voc_xml(stem: str, width: int, height: int, objects: List[ShapeObject]) -> bytes:
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = "shapes_voc"
    ET.SubElement(root, "filename").text = stem + ".jpg"
    size = ET.SubElement(root, "size")
    for tag, v in (("width", width), ("height", height), ("depth", 3)):
        ET.SubElement(size, tag).text = str(v)
    for cls, x0, y0, x1, y1 in objects:
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = SHAPE_CLASSES[cls]
        ET.SubElement(obj, "pose").text = "Unspecified"
        ET.SubElement(obj, "truncated").text = "0"
        ET.SubElement(obj, "difficult").text = str(int(x1 - x0 < DIFFICULT_SIZE))
        bnd = ET.SubElement(obj, "bndbox")
        # VOC stores 1-based inclusive pixel indices: continuous [x0, x1) -> x0 + 1 .. x1.
        for tag, v in (("xmin", x0 + 1), ("ymin", y0 + 1), ("xmax", x1), ("ymax", y1)):
            ET.SubElement(bnd, tag).text = str(v)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8") + b"\n"


def write_shapes_datasets(
    coco_dir: str = None,
    voc_dir: str = None,
    *,
    seed: int = DEFAULT_SEED,
    num_train: int = DEFAULT_NUM_TRAIN,
    num_val: int = DEFAULT_NUM_VAL,
) -> None:
    """Write the demo set into ``coco_dir`` (COCO layout) and/or ``voc_dir`` (VOC layout).

    The folders are written in place (use :func:`ensure_shapes_dataset` for the atomic,
    concurrency-safe version used by the dataset registry).

    Args:
        coco_dir: output folder of the COCO layout, or None to skip it.
        voc_dir: output folder of the VOC layout, or None to skip it.
        seed: generator seed; the output is a pure function of (seed, num_train, num_val).
        num_train: number of training images.
        num_val: number of validation images.
    """
    if coco_dir is None and voc_dir is None:
        raise ValueError("write_shapes_datasets: give coco_dir and/or voc_dir")
    if num_train < 0 or num_val < 0:
        raise ValueError(
            f"write_shapes_datasets: num_train={num_train}, num_val={num_val} must be >= 0"
        )
    coco: Dict[str, dict] = {}
    voc_ids: Dict[str, List[str]] = {"train": [], "val": []}
    if coco_dir is not None:
        os.makedirs(os.path.join(coco_dir, "annotations"), exist_ok=True)
        for split in ("train", "val"):
            os.makedirs(os.path.join(coco_dir, split), exist_ok=True)
            coco[split] = {
                "info": {"description": "resnet_det demo shapes", "version": "1.0", "seed": seed},
                "licenses": [
                    {
                        "id": 1,
                        "name": "CC0 1.0",
                        "url": "https://creativecommons.org/publicdomain/zero/1.0/",
                    }
                ],
                "images": [],
                "annotations": [],
                "categories": [
                    {"id": i + 1, "name": n, "supercategory": "shape"}
                    for i, n in enumerate(SHAPE_CLASSES)
                ],
            }
    if voc_dir is not None:
        for sub in ("Annotations", "JPEGImages", os.path.join("ImageSets", "Main")):
            os.makedirs(os.path.join(voc_dir, sub), exist_ok=True)

    ann_id = 0
    for split, number, jpeg, width, height, objects in _iter_images(seed, num_train, num_val):
        stem = _stem(number)
        if coco_dir is not None:
            _write_bytes(os.path.join(coco_dir, split, stem + ".jpg"), jpeg)
            coco[split]["images"].append(
                {
                    "id": number,
                    "file_name": stem + ".jpg",
                    "width": width,
                    "height": height,
                    "license": 1,
                }
            )
            for cls, x0, y0, x1, y1 in objects:
                ann_id += 1
                coco[split]["annotations"].append(
                    {
                        "id": ann_id,
                        "image_id": number,
                        "category_id": cls + 1,
                        "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                        "area": float((x1 - x0) * (y1 - y0)),
                        "iscrowd": 0,
                        "segmentation": shape_segmentation(cls, x0, y0, x1, y1, height, width),
                    }
                )
        if voc_dir is not None:
            _write_bytes(os.path.join(voc_dir, "JPEGImages", stem + ".jpg"), jpeg)
            _write_bytes(
                os.path.join(voc_dir, "Annotations", stem + ".xml"),
                _voc_xml(stem, width, height, objects),
            )
            voc_ids[split].append(stem)
    if coco_dir is not None:
        for split, data in coco.items():
            _write_bytes(
                os.path.join(coco_dir, "annotations", f"instances_{split}.json"),
                json.dumps(data).encode("utf-8"),
            )
    if voc_dir is not None:
        for split, ids in voc_ids.items():
            _write_bytes(
                os.path.join(voc_dir, "ImageSets", "Main", split + ".txt"),
                "".join(i + "\n" for i in ids).encode("utf-8"),
            )


def ensure_shapes_dataset(
    folder: str,
    layout: str,
    *,
    seed: int = DEFAULT_SEED,
    num_train: int = DEFAULT_NUM_TRAIN,
    num_val: int = DEFAULT_NUM_VAL,
) -> str:
    """Generate the demo set into ``folder`` unless it is already there and complete.

    Safe when several processes call it at once: each writes a private temporary folder next
    to ``folder`` and renames it into place (atomic on one file system); a process that loses
    the race discards its copy. A folder is complete when its marker file exists and records
    the same parameters. A COCO folder made before the json had masks (its marker has no
    "masks") is completed in place: each object's "segmentation" is added from its class and
    box (what the renderer draws is a function of them) and the marker updated, atomically
    file by file. A folder without the marker, or made with other parameters, raises rather
    than being silently reused or overwritten (DataError).

    Args:
        folder: destination, e.g. ``<RESNET_DET_DATASETS>/shapes``.
        layout: "coco" or "voc".
        seed, num_train, num_val: as in :func:`write_shapes_datasets`.

    Returns:
        ``folder``.
    """
    return ensure_shapes_datasets(
        {layout: folder}, seed=seed, num_train=num_train, num_val=num_val
    )[layout]


def ensure_shapes_datasets(
    folders: Dict[str, str],
    *,
    seed: int = DEFAULT_SEED,
    num_train: int = DEFAULT_NUM_TRAIN,
    num_val: int = DEFAULT_NUM_VAL,
) -> Dict[str, str]:
    """:func:`ensure_shapes_dataset` for several layouts at once ({"coco": folder, "voc":
    folder}); the missing ones are generated in one pass (the images are drawn once)."""
    for layout in folders:
        if layout not in ("coco", "voc"):
            raise ValueError(
                f"ensure_shapes_dataset: layout must be 'coco' or 'voc', got {layout!r}"
            )
    params = {
        layout: {
            "layout": layout,
            "seed": seed,
            "num_train": num_train,
            "num_val": num_val,
            "version": GENERATOR_VERSION,
        }
        for layout in folders
    }
    if "coco" in params:
        params["coco"]["masks"] = MASKS_VERSION
    missing = {
        layout: folder
        for layout, folder in folders.items()
        if not _check_complete(folder, params[layout])
    }
    if not missing:
        return dict(folders)
    tmps = {}
    for layout, folder in missing.items():
        parent = os.path.dirname(os.path.abspath(folder))
        os.makedirs(parent, exist_ok=True)
        tmps[layout] = os.path.join(
            parent, f".{os.path.basename(folder)}.tmp-{os.getpid()}-{uuid.uuid4().hex}"
        )
        logger.info("Generating the demo %s dataset in %s ...", layout, folder)
    try:
        write_shapes_datasets(
            tmps.get("coco"), tmps.get("voc"), seed=seed, num_train=num_train, num_val=num_val
        )
        for layout, tmp in tmps.items():
            _write_bytes(os.path.join(tmp, _MARKER), json.dumps(params[layout]).encode("utf-8"))
            try:
                os.rename(tmp, missing[layout])
            except OSError:
                # Another process renamed its copy first (the target exists and is non-empty).
                if not os.path.isdir(missing[layout]):
                    raise
    finally:
        for tmp in tmps.values():
            if os.path.isdir(tmp):
                shutil.rmtree(tmp, ignore_errors=True)
    for layout, folder in missing.items():
        if not _check_complete(folder, params[layout]):
            raise RuntimeError(f"Demo dataset folder {folder} is incomplete after generation")
    return dict(folders)


def _check_complete(folder: str, params: dict) -> bool:
    """Whether ``folder`` holds the set ``params`` describes (False: it does not exist);
    a COCO folder from before masks is completed first (:func:`_add_masks`)."""
    if not os.path.exists(folder):
        return False
    marker = os.path.join(folder, _MARKER)
    if not os.path.isfile(marker):
        raise DataError(
            f"Demo dataset folder {folder} exists but has no {_MARKER}: it was not written by "
            f"the generator (or is from an interrupted old version). Delete it to regenerate."
        )
    with open(marker, "rb") as f:
        found = json.loads(f.read())
    if found != params and "masks" in params and found == _without_masks(params):
        _add_masks(folder, params)
        return True
    if found != params:
        raise DataError(
            f"Demo dataset folder {folder} was generated with {found}, but "
            f"{params} was requested; delete it to regenerate."
        )
    return True


def _without_masks(params: dict) -> dict:
    return {k: v for k, v in params.items() if k != "masks"}


def _add_masks(folder: str, params: dict) -> None:
    """Add every object's "segmentation" to the COCO jsons of ``folder`` (made by the
    generator before masks: same images and boxes), then record ``params`` in its marker.
    Each file is replaced atomically and the marker last, so an interruption leaves a folder
    that is completed again next time; processes doing it at once write the same bytes."""
    logger.info(
        "Adding instance masks to the demo dataset in %s (generated before the json had masks) ...",
        folder,
    )
    for split in ("train", "val"):
        path = os.path.join(folder, "annotations", f"instances_{split}.json")
        try:
            with open(path, "rb") as f:
                data = json.loads(f.read())
            sizes = {img["id"]: (img["height"], img["width"]) for img in data["images"]}
            for ann in data["annotations"]:
                x, y, w, h = (int(v) for v in ann["bbox"])
                ann["segmentation"] = shape_segmentation(
                    ann["category_id"] - 1, x, y, x + w, y + h, *sizes[ann["image_id"]]
                )
        except (OSError, ValueError, KeyError, TypeError, IndexError) as e:
            raise DataError(
                f"Demo dataset folder {folder}: cannot add masks to {path} "
                f"({type(e).__name__}: {e}); delete the folder to regenerate it"
            ) from e
        with atomic_open(path, "wb") as f:
            f.write(json.dumps(data).encode("utf-8"))
    with atomic_open(os.path.join(folder, _MARKER), "wb") as f:
        f.write(json.dumps(params).encode("utf-8"))
