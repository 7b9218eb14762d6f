"""Pictures of detections: tag placement, what plot_detections draws, the tensor drawing."""

import numpy as np
import pytest
import torch
from PIL import Image

from resnet_det.utils.visualize import (
    DetectionPanel,
    class_color,
    draw_detections,
    overlay_masks,
    place_labels,
    plot_detections,
)

CLASSES = ("circle", "square", "triangle")


def _overlap(a, b):
    return max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))


def test_tags_of_duplicate_boxes_do_not_overlap_and_touch_their_box():
    # Two detections of one object (different classes) and a neighbour: the classic pile-up.
    boxes = [(40, 40, 90, 90), (42, 41, 91, 92), (95, 40, 140, 85)]
    sizes = [(45, 10)] * 3
    corners = place_labels(boxes, sizes, 200, 150)
    tags = [(x, y, x + w, y + h) for (x, y), (w, h) in zip(corners, sizes)]
    for i in range(3):
        for j in range(i + 1, 3):
            assert _overlap(tags[i], tags[j]) == 0, (tags[i], tags[j])
    for (x0, y0, x1, y1), (tx0, ty0, tx1, ty1) in zip(boxes, tags):
        # Each tag touches its own box (shares some x range and lies on/in its vertical span).
        assert tx1 > x0 and tx0 < x1 and ty1 >= y0 and ty0 <= y1
    assert tags[0] == (40, 30, 85, 40)  # the first (best) tag sits right above its box


def test_tag_stays_inside_the_image_at_its_edges():
    # A box touching the top-right corner: "above" would leave the image.
    ((x, y),) = place_labels([(170, 0, 200, 30)], [(50, 12)], 200, 150)
    assert 0 <= x <= 150 and 0 <= y <= 138
    with pytest.raises(ValueError, match="2 boxes but 1 sizes"):
        place_labels([(0, 0, 1, 1)] * 2, [(1, 1)], 10, 10)


def _colour_pixels(path, hex_colour, tol=12):
    img = np.asarray(Image.open(path).convert("RGB")).astype(int)
    rgb = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(img - rgb).sum(-1) <= tol).sum())


def test_detections_below_the_threshold_are_not_drawn(tmp_path):
    image = np.full((120, 160, 3), 128, np.uint8)
    gt = torch.tensor([[20.0, 20.0, 70.0, 70.0]])
    boxes = torch.tensor([[22.0, 21.0, 71.0, 69.0], [90.0, 30.0, 140.0, 80.0]])
    labels = torch.tensor([0, 2])

    def draw(scores, name):
        panel = DetectionPanel(image, boxes, labels, torch.tensor(scores), gt, "image 1")
        return plot_detections(
            [panel], str(tmp_path / name), class_names=CLASSES, score_thresh=0.5, title="test set"
        )

    shown = draw([0.9, 0.8], "shown.png")
    hidden = draw([0.9, 0.3], "hidden.png")
    green = class_color(2)
    # The triangle (class 2) box and tag add many pixels of its colour; the legend has the same
    # few in both pictures.
    assert _colour_pixels(shown, green) > _colour_pixels(hidden, green) + 200
    blue = class_color(0)
    assert abs(_colour_pixels(shown, blue) - _colour_pixels(hidden, blue)) < 50
    # Ground truth: white dashes over black, drawn in both.
    assert _colour_pixels(hidden, "#ffffff", tol=0) > 100
    with Image.open(shown) as im:
        assert im.size[0] >= 300 and im.size[1] >= 300


def test_grid_and_bad_input(tmp_path):
    panels = [
        DetectionPanel(
            torch.zeros(3, 50, 70, dtype=torch.uint8),
            torch.zeros(0, 4),
            torch.zeros(0),
            torch.zeros(0),
        )
        for _ in range(5)
    ]
    out = plot_detections(panels, str(tmp_path / "grid.png"), class_names=CLASSES, ncols=3)
    with Image.open(out) as im:
        w, h = im.size
    one = plot_detections(panels[:1], str(tmp_path / "one.png"), class_names=CLASSES, ncols=3)
    with Image.open(one) as im:
        assert w >= 2.5 * im.size[0] and h > 1.5 * im.size[1]  # 3 columns, 2 rows
    bad = DetectionPanel(np.zeros((10, 10, 3), np.uint8), [[0, 0, 5, 5]], [7], [0.9])
    with pytest.raises(ValueError, match=r"labels \[7\] outside class_names"):
        plot_detections([bad], str(tmp_path / "bad.png"), class_names=CLASSES)
    with pytest.raises(ValueError, match="no image"):
        plot_detections([], str(tmp_path / "none.png"), class_names=CLASSES)
    assert not (tmp_path / "bad.png").exists()


def test_legend_lists_the_drawn_classes_only(tmp_path):
    # A COCO model's 80 classes must not bury one image under an 80-entry legend.
    panel = DetectionPanel(np.zeros((100, 100, 3), np.uint8), [[10, 10, 50, 50]], [5], [0.9])
    few = plot_detections(
        [panel], str(tmp_path / "few.png"), class_names=[f"c{i}" for i in range(6)], ncols=1
    )
    many = plot_detections(
        [panel], str(tmp_path / "many.png"), class_names=[f"class {i}" for i in range(80)], ncols=1
    )
    with Image.open(few) as a, Image.open(many) as b:
        assert a.size == b.size


def test_draw_detections_keeps_the_image_size():
    image = torch.zeros(3, 40, 60, dtype=torch.uint8)
    out = draw_detections(
        image,
        torch.tensor([[5.0, 5.0, 30.0, 30.0]]),
        torch.tensor([1]),
        torch.tensor([0.9]),
        CLASSES,
    )
    assert out.shape == image.shape and out.dtype == torch.uint8 and out.sum() > 0


def _rgb(hex_colour):
    return np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)])


def test_overlay_masks_fills_inside_and_outlines_only_the_mask():
    image = np.full((40, 50, 3), 100, np.uint8)
    masks = torch.zeros((2, 1, 40, 50))
    masks[0, 0, 10:30, 5:25] = 0.9
    masks[1, 0, 0:5, 40:50] = 0.5  # 0.5 is not > 0.5: nothing drawn
    out = overlay_masks(image, masks, [2, 0], alpha=0.5)
    colour = _rgb(class_color(2))
    np.testing.assert_array_equal(out[20, 15], np.rint(0.5 * 100 + 0.5 * colour))  # fill
    np.testing.assert_array_equal(out[10, 15], colour)  # outline
    changed = (out != image).any(-1)
    assert changed[10:30, 5:25].all() and not changed[:10].any() and not changed[30:].any()
    assert not changed[:, :5].any() and not changed[:, 25:].any()
    with pytest.raises(ValueError, match=r"\[N, 1, 40, 50\]"):
        overlay_masks(image, torch.zeros((1, 1, 40, 49)), [0])


def test_plot_detections_fills_masks_in_the_class_colour(tmp_path):
    base = (30, 200, 90)  # a colour that neither text nor boxes nor tags can make
    image = np.zeros((120, 160, 3), np.uint8) + np.array(base, np.uint8)
    boxes = torch.tensor([[10.0, 10.0, 150.0, 110.0]])
    masks = torch.zeros((1, 1, 120, 160))
    masks[0, 0, 30:70, 20:80] = 0.8

    def draw(name, m, score=0.9):
        panel = DetectionPanel(
            image, boxes, torch.tensor([1]), torch.tensor([score]), caption="x", masks=m
        )
        path = plot_detections(
            [panel], str(tmp_path / name), class_names=CLASSES, ncols=1, panel_inches=4
        )
        return np.asarray(Image.open(path).convert("RGB")).astype(int)

    plain, filled = draw("plain.png", None), draw("mask.png", masks)
    ys, xs = np.nonzero((plain == base).all(-1))
    y0, x0 = ys.min(), xs.min()  # where the image lies in the picture, and its scale
    sy, sx = (ys.max() - y0 + 1) / 120, (xs.max() - x0 + 1) / 160

    def at(picture, row, col):
        return picture[int(y0 + (row + 0.5) * sy), int(x0 + (col + 0.5) * sx)]

    expected = 0.55 * np.array(base) + 0.45 * _rgb(class_color(1))
    assert (
        np.abs(at(filled, 50, 50) - expected).max() <= 3
    )  # inside the mask: the class colour's fill
    np.testing.assert_array_equal(at(filled, 90, 120), base)  # inside the box, outside the mask
    np.testing.assert_array_equal(at(plain, 50, 50), base)
    # Below the threshold the mask is not drawn, as its box is not.
    hidden = draw("hidden.png", masks, score=0.1)
    np.testing.assert_array_equal(at(hidden, 50, 50), base)
    with pytest.raises(ValueError, match="masks of shape"):
        draw("bad.png", masks[:, :, :100])


def test_draw_detections_draws_masks_under_the_boxes():
    image = torch.zeros(3, 40, 60, dtype=torch.uint8)
    masks = torch.zeros((1, 40, 60), dtype=torch.bool)
    masks[0, 15:25, 30:45] = True
    args = (
        image,
        torch.tensor([[5.0, 5.0, 20.0, 20.0]]),
        torch.tensor([0]),
        torch.tensor([0.9]),
        CLASSES,
    )
    plain, drawn = draw_detections(*args), draw_detections(*args, masks=masks)
    changed = (plain != drawn).any(0)
    assert changed[15:25, 30:45].all() and changed.sum() == 10 * 15
