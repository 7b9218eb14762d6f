import json
import logging

import numpy as np
import pytest
from rle_helpers import uncompressed_rle

from resnet_det.data.catalog import MetadataCatalog
from resnet_det.data.datasets.coco import load_coco_json, read_coco_api
from resnet_det.data.skips import SkipCounts
from resnet_det.utils.errors import DataError


def _write(path, data):
    path.write_text(json.dumps(data))
    return str(path)


def _coco():
    # Category ids deliberately non-contiguous and listed out of order.
    return {
        "images": [
            {"id": 5, "file_name": "b.jpg", "height": 80, "width": 100},
            {"id": 2, "file_name": "a.jpg", "height": 60, "width": 50},
            {"id": 9, "file_name": "empty.jpg", "height": 30, "width": 30},
        ],
        "categories": [{"id": 7, "name": "dog"}, {"id": 3, "name": "cat"}],
        "annotations": [
            {"id": 1, "image_id": 2, "category_id": 7, "bbox": [10, 20, 30, 40], "iscrowd": 0},
            {"id": 2, "image_id": 2, "category_id": 3, "bbox": [0, 0, 5, 5], "iscrowd": 1},
            {"id": 3, "image_id": 5, "category_id": 3, "bbox": [90, 70, 20, 20], "iscrowd": 0},
            {"id": 4, "image_id": 5, "category_id": 3, "bbox": [10, 10, 0, 5], "iscrowd": 0},
            {"id": 5, "image_id": 5, "category_id": 7, "bbox": [200, 10, 5, 5], "iscrowd": 0},
        ],
    }


def test_boxes_ids_and_metadata(tmp_path, caplog):
    name = "test_coco_reader_meta"
    json_file = _write(tmp_path / "inst.json", _coco())
    with caplog.at_level(logging.WARNING):
        dicts = load_coco_json(json_file, "/imgs", dataset_name=name)
    try:
        # Sorted by COCO image id; the image without annotations is kept.
        assert [d["image_id"] for d in dicts] == [2, 5, 9]
        a, b, empty = dicts
        assert a["file_name"] == "/imgs/a.jpg" and (a["height"], a["width"]) == (60, 50)
        # XYWH [10, 20, 30, 40] -> XYXY [10, 20, 40, 60]; dog (id 7) -> 1, cat (id 3) -> 0.
        assert a["annotations"] == [
            {"bbox": [10.0, 20.0, 40.0, 60.0], "category_id": 1, "iscrowd": 0, "id": 1},
            {"bbox": [0.0, 0.0, 5.0, 5.0], "category_id": 0, "iscrowd": 1, "id": 2},
        ]
        # Partly outside: [90, 70, 110, 90] clipped to the 100x80 image; the zero-width and the
        # entirely outside boxes are dropped.
        assert b["annotations"] == [
            {"bbox": [90.0, 70.0, 100.0, 80.0], "category_id": 0, "iscrowd": 0, "id": 3}
        ]
        assert empty["annotations"] == []
        meta = MetadataCatalog.get(name)
        assert meta.thing_classes == ["cat", "dog"]
        assert meta.thing_dataset_id_to_contiguous_id == {3: 0, 7: 1}
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        # One summary line: the file, the counts by reason, the image ids.
        assert warnings[0].startswith(json_file)
        assert "dropped 2 annotations: 1 degenerate box, 1 outside image" in warnings[0]
        assert "image ids 5" in warnings[0]
    finally:
        MetadataCatalog.remove(name)


def test_unknown_category_names_annotation_image_and_file(tmp_path):
    data = _coco()
    data["annotations"][2]["category_id"] = 4
    json_file = _write(tmp_path / "bad.json", data)
    with pytest.raises(DataError) as e:
        load_coco_json(json_file, "/imgs")
    msg = str(e.value)
    assert "annotation id 3" in msg and "image id 5" in msg and json_file in msg
    assert "category_id 4" in msg


def test_annotation_of_unknown_image(tmp_path):
    data = _coco()
    data["annotations"][0]["image_id"] = 77
    json_file = _write(tmp_path / "bad.json", data)
    with pytest.raises(DataError, match="annotation id 1.*image id 77"):
        load_coco_json(json_file, "/imgs")


@pytest.mark.parametrize("content", ["", "   \n", "{not json", "[1, 2]", '{"images": []}'])
def test_empty_or_broken_file_names_the_file(tmp_path, content):
    path = tmp_path / "broken.json"
    path.write_text(content)
    with pytest.raises(DataError) as e:
        load_coco_json(str(path), "/imgs")
    assert str(path) in str(e.value)


def test_agrees_with_pycocotools(tmp_path):
    """Box conversion cross-checked against pycocotools' own index of the same file."""
    from pycocotools.coco import COCO

    data = _coco()
    data["annotations"] = data["annotations"][:3]
    json_file = _write(tmp_path / "inst.json", data)
    api = COCO(json_file)
    cats = sorted(api.getCatIds())
    dicts = {d["image_id"]: d for d in load_coco_json(json_file, "")}
    for img_id in api.getImgIds():
        img = api.loadImgs(img_id)[0]
        ref = []
        for ann in api.loadAnns(api.getAnnIds(imgIds=img_id)):
            x, y, w, h = ann["bbox"]
            ref.append(
                (
                    [x, y, min(x + w, img["width"]), min(y + h, img["height"])],
                    cats.index(ann["category_id"]),
                )
            )
        got = [(a["bbox"], a["category_id"]) for a in dicts[img_id]["annotations"]]
        assert sorted(got) == sorted(ref)


@pytest.mark.parametrize(
    "where, value, reason",
    [
        (("images", 0, "height"), None, "bad annotation"),
        (("images", 1, "file_name"), "", "bad annotation"),
        (("images", 2, "id"), "9", "bad annotation"),
        (("annotations", 0, "bbox"), [1, 2, float("nan"), 4], "malformed"),
        (("annotations", 0, "bbox"), [1, 2, 3], "malformed"),
        (("annotations", 1, "iscrowd"), 2, "malformed"),
        (("annotations", 1, "id"), 1, "duplicate id"),
        (("annotations", 2, "image_id"), 77, "unknown image"),
    ],
)
def test_entry_faults_stop_or_skip_by_policy(tmp_path, where, value, reason):
    data = _coco()
    section, i, key = where
    data[section][i][key] = value
    json_file = _write(tmp_path / "inst.json", data)
    with pytest.raises(DataError, match=f"{json_file}: .*DATALOADER.ON_BAD_IMAGE skip"):
        load_coco_json(json_file, "/imgs")
    counts = SkipCounts()
    dicts = load_coco_json(json_file, "/imgs", on_bad_image="skip", skip_counts=counts)
    if section == "images":
        assert counts.images == {reason: 1} and len(dicts) == 2
    else:
        assert counts.annotations[reason] == 1 and len(dicts) == 3
    # pycocotools only ever sees checked data: read_coco_api applies "stop".
    with pytest.raises(DataError, match=json_file):
        read_coco_api(json_file)


def test_categories_are_checked_whatever_the_policy(tmp_path):
    for cats, match in [
        ([{"id": 1, "name": "a"}, {"id": 1, "name": "b"}], "duplicate category"),
        ([{"id": "1", "name": "a"}], r"categories\[0\] must be"),
        ([], "'categories' is empty"),
    ]:
        data = dict(_coco(), categories=cats)
        json_file = _write(tmp_path / "c.json", data)
        with pytest.raises(DataError, match=match):
            load_coco_json(json_file, "/imgs", on_bad_image="skip")


def test_categories_differing_from_the_registered_ones_name_the_file(tmp_path):
    name = "test_coco_reader_other_classes"
    MetadataCatalog.get(name).set(thing_classes=["cat", "cow"])
    json_file = _write(tmp_path / "inst.json", _coco())
    try:
        with pytest.raises(DataError, match=f"{json_file}: its categories do not match"):
            load_coco_json(json_file, "/imgs", dataset_name=name)
    finally:
        MetadataCatalog.remove(name)


def test_read_coco_api_indexes_a_valid_file(tmp_path):
    api = read_coco_api(_write(tmp_path / "inst.json", _coco()))
    assert sorted(api.getImgIds()) == [2, 5, 9] and len(api.getAnnIds(imgIds=[5])) == 3


# ------------------------------------------------------------------------------ masks
def _rle(mask):
    from pycocotools import mask as mask_util

    r = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": list(r["size"]), "counts": r["counts"].decode("ascii")}


def _with_masks():
    """_coco() with a mask on every annotation: polygons (two parts on annotation 1), the
    crowd region (annotation 2) as uncompressed RLE, annotation 3 as compressed RLE;
    annotations 4 and 5 (dropped for their boxes) without one."""
    data = _coco()
    anns = data["annotations"]
    anns[0]["segmentation"] = [[10, 20, 40, 20, 40, 60], [10, 25, 20, 50, 12, 55.5]]
    crowd = np.zeros((60, 50), np.uint8)
    crowd[0:5, 0:5] = 1
    anns[1]["segmentation"] = uncompressed_rle(crowd)
    square = np.zeros((80, 100), np.uint8)
    square[70:80, 90:100] = 1
    anns[2]["segmentation"] = _rle(square)
    return data, crowd, square


def test_masks_are_kept_in_a_normal_form(tmp_path):
    data, crowd, square = _with_masks()
    json_file = _write(tmp_path / "inst.json", data)
    dicts = {d["image_id"]: d for d in load_coco_json(json_file, "/imgs")}
    a0, a1 = dicts[2]["annotations"]
    assert a0["segmentation"] == [
        [10.0, 20.0, 40.0, 20.0, 40.0, 60.0],
        [10.0, 25.0, 20.0, 50.0, 12.0, 55.5],
    ]
    assert a1["iscrowd"] == 1 and a1["segmentation"] == _rle(crowd)  # compressed
    assert dicts[5]["annotations"][0]["segmentation"] == _rle(square)
    # Masks are optional: the set without them reads as before.
    plain = load_coco_json(_write(tmp_path / "plain.json", _coco()), "/imgs")
    assert all("segmentation" not in a for d in plain for a in d["annotations"])
    # pycocotools decodes what read_coco_api passes on.
    api = read_coco_api(json_file)
    assert api.annToMask(api.loadAnns(2)[0]).sum() == 25
    assert (api.annToMask(api.loadAnns(3)[0]) == square).all()


@pytest.mark.parametrize(
    "ann, segm, words",
    [
        (
            0,
            [[10, 20, 40, 20]],
            "polygon 0 of 4 numbers (2 points); a polygon needs at least 3 points",
        ),
        (
            2,
            {"size": [60, 100], "counts": "PQ`0"},
            "RLE mask of size [60, 100] ([height, width]) on an image of 80x100",
        ),
        (1, [[0, 0, 5, 0, 5, 5]], "a crowd region (iscrowd 1) whose 'segmentation' is polygons"),
        (0, "M0", "'segmentation' of type str"),
        (0, {"counts": [5]}, "'size' is None"),
        (0, [[10, 20, 40, 20, 40, "x"]], "polygon 0 that is not a list of finite numbers"),
    ],
)
def test_mask_faults_name_file_and_ids_and_follow_the_policy(tmp_path, ann, segm, words):
    data, _, _ = _with_masks()
    data["annotations"][ann]["segmentation"] = segm
    json_file = _write(tmp_path / "inst.json", data)
    a = data["annotations"][ann]
    with pytest.raises(DataError) as e:
        load_coco_json(json_file, "/imgs")
    msg = str(e.value)
    assert msg.startswith(f"{json_file}: annotation id {a['id']} (image id {a['image_id']}) ")
    assert words in msg and "DATALOADER.ON_BAD_IMAGE skip" in msg
    counts = SkipCounts()
    dicts = load_coco_json(json_file, "/imgs", on_bad_image="skip", skip_counts=counts)
    assert counts.annotations == {"bad mask": 1, "degenerate box": 1, "outside image": 1}
    kept = [x["id"] for d in dicts for x in d["annotations"]]
    assert a["id"] not in kept and len(kept) == 2
    with pytest.raises(DataError, match=json_file):
        read_coco_api(json_file)


def test_null_segmentation_is_no_mask(tmp_path):
    data = _coco()
    data["annotations"][0]["segmentation"] = None
    dicts = load_coco_json(_write(tmp_path / "inst.json", data), "/imgs")
    assert "segmentation" not in dicts[0]["annotations"][0]
