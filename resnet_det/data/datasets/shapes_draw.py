"""One object of the demo shapes: how the generator draws it, and its COCO instance mask.

Kept apart from the generator (shapes.py) so that the pixels a shape fills and the mask
written for it come from the same drawing call.
"""

from typing import Any, Dict, List, Union

import numpy as np
from PIL import Image, ImageDraw
from pycocotools import mask as mask_util

__all__ = ["SHAPE_CLASSES", "draw_shape", "shape_mask", "shape_segmentation"]

SHAPE_CLASSES = ("circle", "square", "triangle")


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
