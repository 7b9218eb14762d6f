"""predict.py's outputs: ids of predictions.json entries, their masks, and pictures with masks."""

import json

import numpy as np
import torch
from PIL import Image
from pycocotools import mask as mask_utils

from resnet_det.predictor.outputs import ResultsIds, draw_prediction

RESULT = {
    "boxes": torch.tensor([[10.0, 10.0, 60.0, 50.0]]),
    "scores": torch.tensor([0.9]),
    "labels": torch.tensor([1]),
}


def test_ids_without_a_dataset_are_stems_and_1_based_classes():
    ids = ResultsIds(3)
    (entry,) = ids.entries("some/dir/photo_7.jpg", RESULT)
    assert entry["image_id"] == "photo_7" and entry["category_id"] == 2
    assert (
        entry["bbox"] == [10.0, 10.0, 50.0, 40.0] and entry["file_name"] == "some/dir/photo_7.jpg"
    )


def test_ids_of_a_dataset_by_path_then_by_file_name(demo, tmp_path, caplog):
    name, files, _, _ = demo
    ids = ResultsIds(3, name)
    assert ids.image_id(files[1]) == (101, True)
    copy = tmp_path / "000002.png"  # the same file name elsewhere
    copy.write_bytes(open(files[2], "rb").read())
    assert ids.image_id(str(copy)) == (102, True)
    assert ids.image_id(str(tmp_path / "other.png")) == ("other", False)
    assert "is not an image of dataset" in caplog.text
    assert ids.category_ids == [1, 2, 3]


def test_masks_are_drawn_under_the_boxes(tmp_path):
    image = torch.full((3, 80, 100), 128, dtype=torch.uint8)
    masks = torch.zeros((1, 1, 80, 100))
    masks[0, 0, 20:40, 20:50] = 0.9
    plain = draw_prediction(
        image,
        RESULT,
        str(tmp_path / "plain.png"),
        class_names=["a", "b", "c"],
        score_thresh=0.5,
        title="x",
    )
    with_mask = draw_prediction(
        image,
        dict(RESULT, masks=masks),
        str(tmp_path / "mask.png"),
        class_names=["a", "b", "c"],
        score_thresh=0.5,
        title="x",
    )
    a, b = (np.asarray(Image.open(p).convert("RGB")).astype(int) for p in (plain, with_mask))
    assert a.shape == b.shape
    changed = np.abs(a - b).sum(axis=2) > 30
    # The mask covers 30x20 of 100x80 image pixels: a visible patch, not the whole picture.
    assert 0.005 < changed.mean() < 0.2


def test_entries_of_a_model_with_masks_carry_their_rle():
    masks = torch.zeros((1, 1, 80, 100))
    masks[0, 0, 20:40, 20:50] = 0.9
    masks[0, 0, 0, 0] = 0.5  # not > 0.5: outside, as the evaluation binarises
    (entry,) = ResultsIds(3).entries("photo.png", dict(RESULT, masks=masks))
    segm = entry["segmentation"]
    assert segm["size"] == [80, 100] and isinstance(segm["counts"], str)
    decoded = mask_utils.decode({"size": segm["size"], "counts": segm["counts"].encode()})
    assert decoded.sum() == 20 * 30 and decoded[20:40, 20:50].all()
    json.dumps(entry)  # plain JSON
    (plain,) = ResultsIds(3).entries("photo.png", RESULT)
    assert "segmentation" not in plain
