"""The demo shapes' instance masks match the pixels the generator draws."""

import numpy as np
import pytest
from pycocotools import mask as mask_util

from resnet_det.data.datasets.shapes import render_shapes_image
from resnet_det.data.datasets.shapes_draw import SHAPE_CLASSES, shape_mask, shape_segmentation
from resnet_det.data.segmentation import check_segmentation

# 80 images, and some with tiny objects (sides 10-15: a circle, a square and two triangles).
IMAGES = [(split, i) for split in ("train", "val") for i in range(40)] + [
    ("train", 146),
    ("train", 42),
    ("train", 200),
    ("val", 47),
]


def _raster(segm, h, w):
    if isinstance(segm, list):
        return mask_util.decode(mask_util.merge(mask_util.frPyObjects(segm, h, w)))
    return mask_util.decode(dict(segm, counts=segm["counts"].encode()))


def _iou(a, b):
    a, b = a.astype(bool), b.astype(bool)
    return (a & b).sum() / (a | b).sum()


def _bbox(m):
    ys, xs = np.nonzero(m)
    return (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)


def _objects():
    for split, i in IMAGES:
        arr, objects = render_shapes_image(0, i, split)
        for obj in objects:
            yield arr, obj


def test_every_shape_kind_and_size_is_covered():
    objs = [obj for _, obj in _objects()]
    assert {SHAPE_CLASSES[o[0]] for o in objs} == set(SHAPE_CLASSES)
    assert min(o[3] - o[1] for o in objs) < 16 and max(o[3] - o[1] for o in objs) > 80


def test_masks_match_the_drawn_pixels_and_span_the_box():
    worst = {}
    for arr, (cls, x0, y0, x1, y1) in _objects():
        h, w = arr.shape[:2]
        segm = shape_segmentation(cls, x0, y0, x1, y1, h, w)
        assert check_segmentation(segm, h, w) is None
        kind = SHAPE_CLASSES[cls]
        assert isinstance(segm, dict) == (kind == "circle")  # RLE circles, polygons otherwise
        mask = _raster(segm, h, w)
        drawn = shape_mask(cls, x0, y0, x1, y1, h, w)
        iou = _iou(mask, drawn)
        worst[kind] = min(worst.get(kind, 1.0), iou)
        assert iou >= 0.9, (kind, (x0, y0, x1, y1), iou)
        assert _bbox(mask) == _bbox(drawn) == (x0, y0, x1, y1)
    # Squares and circles exactly; triangles up to their slanted edges.
    assert worst["square"] == worst["circle"] == 1.0


def test_masks_match_the_rendered_image():
    """Independently of the drawing code: in the rendered (noisy, textured) image, the pixels
    near the object's colour, rather than the surrounding background's, are its mask."""
    for arr, (cls, x0, y0, x1, y1) in _objects():
        if x1 - x0 < 16:
            continue  # tiny objects: too few background pixels inside the ring to estimate
        h, w = arr.shape[:2]
        mask = _raster(shape_segmentation(cls, x0, y0, x1, y1, h, w), h, w).astype(bool)
        ring = np.zeros_like(mask)
        ring[max(y0 - 3, 0) : y1 + 3, max(x0 - 3, 0) : x1 + 3] = True
        img = arr.astype(np.float32)
        inside, outside = np.median(img[mask], 0), np.median(img[ring & ~mask], 0)
        near = (np.abs(img - inside).sum(-1) < np.abs(img - outside).sum(-1)) & ring
        assert _iou(near, mask & ring) >= 0.9, (SHAPE_CLASSES[cls], (x0, y0, x1, y1))


@pytest.mark.parametrize("cls", range(3))
def test_flipped_mask_is_the_mirrored_shape(cls):
    """A mask flipped as the mapper flips it (x -> width - x) covers the mirrored pixels."""
    from resnet_det.data.segmentation import InstanceMasks

    h, w = 50, 60
    segm = shape_segmentation(cls, 7, 5, 37, 35, h, w)
    flipped = InstanceMasks([segm], h, w).hflip().to_tensor()[0].numpy()
    assert _iou(flipped, shape_mask(cls, 7, 5, 37, 35, h, w)[:, ::-1]) >= 0.9
