"""The demo's pretraining set: crops of generated shapes, none from the detection sets."""

import numpy as np

from reproduction import demo_data
from resnet_det.data import DatasetCatalog, MetadataCatalog
from resnet_det.data.datasets.shapes import render_shapes_image


def test_a_crop_per_named_object_and_one_of_background():
    backgrounds = 0
    for index in range(12):
        image, crops = demo_data.crop_boxes("test", index)
        _, objects = render_shapes_image(demo_data._SEED, index, "val")  # the test split's stream
        h, w = image.shape[:2]
        named = [(box, label) for box, label in crops if label < 3]
        assert sorted(label for _, label in named) == sorted(
            o[0] for o in objects if o[3] - o[1] >= demo_data.DIFFICULT_SIZE
        )
        for box, _label in crops:
            assert box[2] - box[0] == box[3] - box[1] > 0, "square"
            assert 0 <= box[0] and 0 <= box[1] and box[2] <= w and box[3] <= h, "inside the image"
        for box, label in named:
            # Its object lies (mostly) inside its crop: context around it, not a neighbour.
            obj = max(objects, key=lambda o: demo_data._overlap(box, o[1:]))
            assert obj[0] == label and demo_data._overlap(box, obj[1:]) > 0.6
        for box, _ in [c for c in crops if c[1] == 3]:
            backgrounds += 1
            assert all(demo_data._overlap(box, o[1:]) <= 0.1 for o in objects)
        # Deterministic: the same crops again.
        assert demo_data.crop_boxes("test", index)[1] == crops
    assert backgrounds >= 10


def test_registered_splits_are_disjoint_images_of_other_seeds():
    assert MetadataCatalog.get("shapes_crops_train").thing_classes == [
        "circle",
        "square",
        "triangle",
        "background",
    ]
    train = DatasetCatalog.get("shapes_crops_train")
    test = DatasetCatalog.get("shapes_crops_test")
    assert 1500 < len(train) < 2500 and 350 < len(test) < 650
    seen = {d["image"].tobytes() for d in train}
    assert not any(d["image"].tobytes() in seen for d in test)
    # Not the detection sets' images: shapes_train's first image is drawn with seed 0.
    first, _ = render_shapes_image(0, 0, "train")
    ours, _ = render_shapes_image(demo_data._SEED, 0, "train")
    assert first.shape != ours.shape or not np.array_equal(first, ours)
