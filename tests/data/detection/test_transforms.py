import random

import numpy as np
import pytest
import torch

from resnet_det.data.detection.transforms import RandomFlip, ResizeShortestEdge, apply_transforms


def _rect_image(h, w, box):
    img = torch.zeros(3, h, w, dtype=torch.uint8)
    x0, y0, x1, y1 = box
    img[:, y0:y1, x0:x1] = 255
    return img


def _bright_extent(img):
    ys, xs = torch.nonzero(img[0] > 127, as_tuple=True)
    return [xs.min().item(), ys.min().item(), xs.max().item() + 1, ys.max().item() + 1]


def test_output_shape_hand_computed():
    # 333x500 to shorter side 600: scale 600/333 -> 900.9 wide, under the 1000 cap.
    assert ResizeShortestEdge.get_output_shape(333, 500, 600, 1000) == (600, 901)
    # 100x400 to shorter 100 would be 400 wide > 200: scale 0.5 instead.
    assert ResizeShortestEdge.get_output_shape(100, 400, 100, 200) == (50, 200)


def test_resize_scales_boxes():
    img = torch.zeros(3, 100, 200, dtype=torch.uint8)
    boxes = torch.tensor([[10.0, 20.0, 30.0, 40.0], [0.0, 0.0, 200.0, 100.0]])
    out, b = ResizeShortestEdge((50,), 1000)(img, boxes, random.Random(0))
    assert out.shape == (3, 50, 100) and out.dtype == torch.uint8
    assert torch.equal(b, torch.tensor([[5.0, 10.0, 15.0, 20.0], [0.0, 0.0, 100.0, 50.0]]))
    assert type(b) is torch.Tensor


def test_flip_hand_computed():
    img = torch.arange(2 * 3 * 4, dtype=torch.uint8).reshape(2, 3, 4)[:1].expand(3, 3, 4)
    boxes = torch.tensor([[1.0, 0.0, 3.0, 2.0]])
    out, b = RandomFlip(1.0)(img, boxes, random.Random(0))
    assert torch.equal(out, img.flip(-1))
    assert torch.equal(b, torch.tensor([[1.0, 0.0, 3.0, 2.0]]))  # symmetric box in width 4
    out, b = RandomFlip(1.0)(img, torch.tensor([[0.0, 0.0, 1.0, 1.0]]), random.Random(0))
    assert torch.equal(b, torch.tensor([[3.0, 0.0, 4.0, 1.0]]))
    out, b = RandomFlip(0.0)(img, boxes, random.Random(0))
    assert out is img and b is boxes


def test_boxes_follow_the_pixels_through_resize_and_flip():
    box = (30, 20, 70, 50)
    img = _rect_image(80, 120, box)
    t = [ResizeShortestEdge((160,), 1000), RandomFlip(1.0)]
    out, b = apply_transforms(t, img, torch.tensor([box], dtype=torch.float32), random.Random(1))
    assert out.shape == (3, 160, 240)
    # Hand computed: x2 scale then x -> 240 - x.
    assert b.tolist() == [[240 - 140.0, 40.0, 240 - 60.0, 100.0]]
    assert _bright_extent(out) == [100, 40, 180, 100]


def test_range_sampling_and_determinism():
    t = ResizeShortestEdge((20, 30), 1000, "range")
    img = torch.zeros(3, 10, 10, dtype=torch.uint8)
    sizes = {t(img, torch.zeros(0, 4), random.Random(s))[0].shape[-1] for s in range(200)}
    assert sizes == set(range(20, 31))
    a = t(img, torch.zeros(0, 4), random.Random(5))[0].shape
    assert a == t(img, torch.zeros(0, 4), random.Random(5))[0].shape


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(short_edge_length=(), max_size=10),
        dict(short_edge_length=(1, 2, 3), sample_style="range"),
        dict(short_edge_length=(5,), sample_style="uniform"),
    ],
)
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError, match="ResizeShortestEdge"):
        ResizeShortestEdge(**kwargs)
    with pytest.raises(ValueError, match="prob"):
        RandomFlip(1.5)


def test_masks_follow_the_pixels_and_take_no_draw():
    from resnet_det.data.detection.instance_masks import InstanceMasks

    box = (30, 20, 70, 50)
    img = _rect_image(80, 120, box)
    polygon = [[30.0, 20.0, 70.0, 20.0, 70.0, 50.0, 30.0, 50.0]]
    t = [ResizeShortestEdge((160, 200, 240), 1000), RandomFlip(0.5)]  # integer boxes
    boxes = torch.tensor([box], dtype=torch.float32)
    for seed in range(6):
        out, b = apply_transforms(t, img, boxes, random.Random(seed))
        out2, b2, masks = apply_transforms(
            t, img, boxes, random.Random(seed), InstanceMasks([polygon], 80, 120)
        )
        assert torch.equal(out, out2) and torch.equal(b, b2)
        m = masks.to_tensor()
        assert m.shape == (1, *out.shape[-2:])
        ys, xs = torch.nonzero(m[0], as_tuple=True)
        assert (
            [xs.min().item(), ys.min().item(), xs.max().item() + 1, ys.max().item() + 1]
            == _bright_extent(out)
            == [round(v) for v in b[0].tolist()]
        )


def test_box_geometry_equals_torchvisions_box_kernels():
    from torchvision import tv_tensors
    from torchvision.transforms.v2 import functional as F

    from resnet_det.data.detection.transforms import HFlip, Resize, _apply_op_geometry

    g = torch.Generator().manual_seed(0)
    boxes = torch.rand(50, 4, generator=g) * 400
    boxes[:, 2:] += boxes[:, :2]
    for op, (h, w) in [(Resize(337, 601), (480, 640)), (Resize(1000, 733), (471, 347))]:
        _, _, ours, _ = _apply_op_geometry(op, h, w, boxes.numpy(), None)
        ref, _ = F.resize_bounding_boxes(boxes, (h, w), [op.height, op.width])
        assert ours.dtype == np.float32 and torch.equal(torch.from_numpy(ours), ref)
    before = boxes.clone()
    _, _, ours, _ = _apply_op_geometry(HFlip(641), 480, 641, boxes.numpy(), None)
    ref = F.horizontal_flip_bounding_boxes(boxes, tv_tensors.BoundingBoxFormat.XYXY, (480, 641))
    assert torch.equal(torch.from_numpy(ours), ref)
    assert torch.equal(boxes, before)  # the input boxes are not changed


@pytest.mark.parametrize("image_format", ["RGB", "BGR"])
@pytest.mark.parametrize("seed", range(6))
def test_planned_ops_give_the_transformed_image_in_one_copy(image_format, seed):
    from resnet_det.data.detection.transforms import apply_image_ops, plan_transforms

    g = torch.Generator().manual_seed(seed)
    # Channels-last in memory, as decoders leave images.
    image = torch.randint(0, 256, (57, 83, 3), dtype=torch.uint8, generator=g).permute(2, 0, 1)
    boxes = torch.tensor([[3.0, 4.0, 50.0, 40.0]])
    chain = [ResizeShortestEdge((30, 70), 90, "range"), RandomFlip(0.5)]
    ref_image, ref_boxes = apply_transforms(chain, image, boxes, random.Random(seed))
    ops, planned_boxes, _ = plan_transforms(chain, 57, 83, boxes, random.Random(seed))
    out = apply_image_ops(image, ops, image_format)
    assert torch.equal(planned_boxes, ref_boxes) and out.is_contiguous()
    assert torch.equal(out, ref_image if image_format == "RGB" else ref_image.flip(0))
