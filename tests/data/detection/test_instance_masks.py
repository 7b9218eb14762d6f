"""The masks of one image while it is transformed: polygons and RLE masks follow resizing and
flipping as the image's pixels do."""

import torch
from rle_helpers import compressed_rle, rectangle_mask

from resnet_det.data.detection.instance_masks import InstanceMasks

H, W = 30, 40


def test_instance_masks_polygons_and_rle_follow_resize_and_flip():
    square = [[10.0, 5.0, 20.0, 5.0, 20.0, 15.0, 10.0, 15.0]]  # pixels x 10..19, y 5..14
    bitmap = rectangle_mask(20, 30, 0, 8, H, W)  # pixels x 0..7, y 20..29
    masks = InstanceMasks([square, compressed_rle(bitmap)], H, W)
    t = masks.to_tensor()
    assert t.dtype == torch.uint8 and t.shape == (2, H, W)
    assert torch.equal(t[0], torch.from_numpy(rectangle_mask(5, 15, 10, 20, H, W)))
    assert torch.equal(t[1], torch.from_numpy(bitmap))
    # Twice the size, then flipped: x -> 80 - x.
    t = masks.resize(2 * H, 2 * W).hflip().to_tensor()
    assert t.shape == (2, 2 * H, 2 * W)
    assert torch.equal(t[0], torch.from_numpy(rectangle_mask(10, 30, 40, 60, 2 * H, 2 * W)))
    assert torch.equal(t[1], torch.from_numpy(rectangle_mask(40, 60, 64, 80, 2 * H, 2 * W)))
    # The original is unchanged (methods return new objects); no instance: [0, H, W].
    assert masks.to_tensor().shape == (2, H, W) and len(masks) == 2
    assert InstanceMasks([], H, W).resize(7, 9).to_tensor().shape == (0, 7, 9)


def test_rle_resize_is_nearest_on_pixel_centres():
    bitmap = rectangle_mask(0, 30, 0, 20, H, W)  # left half
    t = InstanceMasks([compressed_rle(bitmap)], H, W).resize(15, 20).to_tensor()[0]
    assert set(t.unique().tolist()) == {0, 1}  # no blur
    assert torch.equal(t, torch.from_numpy(rectangle_mask(0, 15, 0, 10, 15, 20)))
