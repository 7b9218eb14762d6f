"""The masks of one image while it is transformed: polygons and RLE masks follow resizing and
flipping as the image's pixels do."""

import numpy as np
import torch
from pycocotools import mask as mask_util

from resnet_det.data.detection.instance_masks import InstanceMasks

H, W = 30, 40


def _bitmap(y0, y1, x0, x1, h=H, w=W):
    m = np.zeros((h, w), np.uint8)
    m[y0:y1, x0:x1] = 1
    return m


def _rle(m):
    r = mask_util.encode(np.asfortranarray(m))
    return {"size": list(r["size"]), "counts": r["counts"].decode("ascii")}


def test_instance_masks_polygons_and_rle_follow_resize_and_flip():
    square = [[10.0, 5.0, 20.0, 5.0, 20.0, 15.0, 10.0, 15.0]]  # pixels x 10..19, y 5..14
    bitmap = _bitmap(20, 30, 0, 8)  # pixels x 0..7, y 20..29
    masks = InstanceMasks([square, _rle(bitmap)], H, W)
    t = masks.to_tensor()
    assert t.dtype == torch.uint8 and t.shape == (2, H, W)
    assert torch.equal(t[0], torch.from_numpy(_bitmap(5, 15, 10, 20)))
    assert torch.equal(t[1], torch.from_numpy(bitmap))
    # Twice the size, then flipped: x -> 80 - x.
    t = masks.resize(2 * H, 2 * W).hflip().to_tensor()
    assert t.shape == (2, 2 * H, 2 * W)
    assert torch.equal(t[0], torch.from_numpy(_bitmap(10, 30, 40, 60, 2 * H, 2 * W)))
    assert torch.equal(t[1], torch.from_numpy(_bitmap(40, 60, 64, 80, 2 * H, 2 * W)))
    # The original is unchanged (methods return new objects); no instance: [0, H, W].
    assert masks.to_tensor().shape == (2, H, W) and len(masks) == 2
    assert InstanceMasks([], H, W).resize(7, 9).to_tensor().shape == (0, 7, 9)


def test_rle_resize_is_nearest_on_pixel_centres():
    bitmap = _bitmap(0, 30, 0, 20)  # left half
    t = InstanceMasks([_rle(bitmap)], H, W).resize(15, 20).to_tensor()[0]
    assert set(t.unique().tolist()) == {0, 1}  # no blur
    assert torch.equal(t, torch.from_numpy(_bitmap(0, 15, 0, 10, 15, 20)))
