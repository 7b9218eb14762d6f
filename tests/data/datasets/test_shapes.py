"""The demo shapes generator: the same files every time in both layouts, safe concurrent
generation, the digest, and instance masks that match the pixels it draws."""

import json
import multiprocessing as mp
import os

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_util

from resnet_det.data.datasets.coco import load_coco_json
from resnet_det.data.datasets.shapes import (
    DIFFICULT_SIZE,
    SHAPE_CLASSES,
    ensure_shapes_dataset,
    ensure_shapes_datasets,
    render_shapes_image,
    shape_mask,
    shape_segmentation,
    write_shapes_datasets,
)
from resnet_det.data.datasets.voc import load_voc_instances
from resnet_det.data.segmentation import check_segmentation
from resnet_det.utils.errors import DataError

SMALL = dict(num_train=6, num_val=3)


def _files(root):
    out = {}
    for dirpath, _, names in os.walk(root):
        for n in names:
            p = os.path.join(dirpath, n)
            with open(p, "rb") as f:
                out[os.path.relpath(p, root)] = f.read()
    return out


def test_generation_is_deterministic(tmp_path):
    write_shapes_datasets(str(tmp_path / "a"), str(tmp_path / "av"), seed=3, **SMALL)
    write_shapes_datasets(str(tmp_path / "b"), str(tmp_path / "bv"), seed=3, **SMALL)
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert len(a) == 6 + 3 + 2 and a == b  # images and both jsons, byte for byte
    assert _files(tmp_path / "av") == _files(tmp_path / "bv")
    arr1, objs1 = render_shapes_image(3, 0, "train")
    arr2, objs2 = render_shapes_image(3, 0, "train")
    assert np.array_equal(arr1, arr2) and objs1 == objs2
    arr3, _ = render_shapes_image(4, 0, "train")
    assert arr3.shape != arr1.shape or not np.array_equal(arr1, arr3)


def test_coco_json_fields(tmp_path):
    write_shapes_datasets(str(tmp_path / "c"), None, seed=0, **SMALL)
    data = json.loads((tmp_path / "c" / "annotations" / "instances_train.json").read_text())
    assert {"info", "licenses", "images", "annotations", "categories"} <= set(data)
    assert [c["id"] for c in data["categories"]] == [1, 2, 3]
    assert [c["name"] for c in data["categories"]] == list(SHAPE_CLASSES)
    assert len(data["images"]) == 6
    for ann in data["annotations"]:
        x, y, w, h = ann["bbox"]
        assert ann["area"] == w * h and ann["iscrowd"] == 0
    ids = [a["id"] for a in data["annotations"]]
    assert len(set(ids)) == len(ids)
    for img in data["images"]:
        with Image.open(tmp_path / "c" / "train" / img["file_name"]) as im:
            assert im.size == (img["width"], img["height"])
            assert 160 <= im.width <= 256 and 160 <= im.height <= 256
        n = sum(a["image_id"] == img["id"] for a in data["annotations"])
        assert 1 <= n <= 4


def test_both_layouts_read_back_identically(tmp_path):
    coco, voc = str(tmp_path / "shapes"), str(tmp_path / "shapes_voc")
    write_shapes_datasets(coco, voc, seed=0, num_train=20, num_val=3)
    for split in ("train", "val"):
        c = load_coco_json(f"{coco}/annotations/instances_{split}.json", f"{coco}/{split}")
        v = load_voc_instances(voc, split, SHAPE_CLASSES)
        assert [d["image_id"] for d in c] == [int(d["image_id"]) for d in v]
        for dc, dv in zip(c, v):
            assert (dc["height"], dc["width"]) == (dv["height"], dv["width"])
            assert [(a["bbox"], a["category_id"]) for a in dc["annotations"]] == [
                (a["bbox"], a["category_id"]) for a in dv["annotations"]
            ]
            for a in dv["annotations"]:
                assert a["difficult"] == int(a["bbox"][2] - a["bbox"][0] < DIFFICULT_SIZE)
            with open(dc["file_name"], "rb") as f1, open(dv["file_name"], "rb") as f2:
                assert f1.read() == f2.read()


def test_boxes_enclose_the_drawn_shape():
    """The object's colour fills its box's centre and reaches its edges (not off by one)."""
    for index in range(5):
        arr, objects = render_shapes_image(0, index, "val")
        for _cls, x0, y0, x1, y1 in objects:
            if x1 - x0 < 24:
                continue
            centre = arr[(y0 + y1) // 2, (x0 + x1) // 2].astype(int)
            # Bottom row of a square/triangle, or the middle of a circle's bottom edge, is
            # inside; the row just below the box is background.
            cx = (x0 + x1) // 2
            inside = arr[y1 - 2, cx].astype(int)
            outside = arr[min(y1 + 1, arr.shape[0] - 1), cx].astype(int)
            if y1 + 1 < arr.shape[0]:
                assert np.abs(inside - centre).sum() < np.abs(outside - centre).sum()


def test_ensure_is_idempotent_and_refuses_foreign_folder(tmp_path):
    folder = str(tmp_path / "shapes")
    assert ensure_shapes_dataset(folder, "coco", **SMALL) == folder
    marker = os.path.join(folder, "COMPLETE.json")
    before = os.stat(os.path.join(folder, "train", "000001.jpg")).st_mtime_ns
    ensure_shapes_dataset(folder, "coco", **SMALL)
    assert os.stat(os.path.join(folder, "train", "000001.jpg")).st_mtime_ns == before
    with pytest.raises(DataError, match="generated with"):
        ensure_shapes_dataset(folder, "coco", num_train=7, num_val=3)
    os.remove(marker)
    with pytest.raises(DataError, match="COMPLETE.json"):
        ensure_shapes_dataset(folder, "coco", **SMALL)


def _ensure(root):
    ensure_shapes_datasets({"coco": f"{root}/shapes", "voc": f"{root}/shapes_voc"}, **SMALL)


def test_concurrent_generation_leaves_one_complete_copy(tmp_path):
    root = tmp_path / "root"
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_ensure, args=(str(root),)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    # No temporary folder left behind.
    assert sorted(os.listdir(root)) == ["shapes", "shapes_voc"]
    write_shapes_datasets(str(tmp_path / "ref"), str(tmp_path / "ref_voc"), **SMALL)
    for got, ref in (("shapes", "ref"), ("shapes_voc", "ref_voc")):
        files = _files(root / got)
        files.pop("COMPLETE.json")
        assert files == _files(tmp_path / ref)


def test_digest_follows_pixels_boxes_and_classes_only(monkeypatch):
    from resnet_det.data.datasets import shapes

    base = shapes.shapes_digest(seed=0, **SMALL)
    assert shapes.shapes_digest(seed=0, **SMALL) == base
    assert shapes.shapes_digest(seed=1, **SMALL) != base
    original = shapes.render_shapes_image

    def variant(change):
        def render(seed, index, split):
            arr, objects = original(seed, index, split)
            if (split, index) == ("val", 2):
                arr, objects = change(arr.copy(), list(objects))
            return arr, objects

        monkeypatch.setattr(shapes, "render_shapes_image", render)
        try:
            return shapes.shapes_digest(seed=0, **SMALL)
        finally:
            monkeypatch.setattr(shapes, "render_shapes_image", original)

    def one_pixel(arr, objects):
        arr[0, 0, 0] ^= 1
        return arr, objects

    def box_moved(arr, objects):
        c, x0, y0, x1, y1 = objects[0]
        return arr, [(c, x0 + 1, y0, x1 + 1, y1)] + objects[1:]

    def class_changed(arr, objects):
        c, *box = objects[0]
        return arr, [((c + 1) % len(SHAPE_CLASSES), *box)] + objects[1:]

    def extra_fields(arr, objects):
        # More per-object data (e.g. an instance mask) after the class and box is not part of it.
        return arr, [(*obj, "mask") for obj in objects]

    for change in (one_pixel, box_moved, class_changed):
        assert variant(change) != base, change.__name__
    assert variant(extra_fields) == base


def test_coco_json_has_a_mask_for_every_object(tmp_path):
    write_shapes_datasets(str(tmp_path / "c"), None, seed=0, **SMALL)
    for split in ("train", "val"):
        path = tmp_path / "c" / "annotations" / f"instances_{split}.json"
        data = json.loads(path.read_text())
        kinds = {
            SHAPE_CLASSES[a["category_id"] - 1]: type(a["segmentation"]).__name__
            for a in data["annotations"]
        }
        assert set(kinds.items()) <= {("circle", "dict"), ("square", "list"), ("triangle", "list")}
        dicts = load_coco_json(str(path), str(tmp_path / "c" / split))
        assert all("segmentation" in a for d in dicts for a in d["annotations"])


def _strip_masks(folder):
    """Make ``folder`` what the generator wrote before masks: no "segmentation" in the jsons,
    no "masks" in the marker."""
    for split in ("train", "val"):
        path = os.path.join(folder, "annotations", f"instances_{split}.json")
        data = json.loads(open(path, "rb").read())
        for ann in data["annotations"]:
            del ann["segmentation"]
        open(path, "wb").write(json.dumps(data).encode("utf-8"))
    marker = os.path.join(folder, "COMPLETE.json")
    params = json.loads(open(marker, "rb").read())
    del params["masks"]
    open(marker, "wb").write(json.dumps(params).encode("utf-8"))


def test_a_folder_from_before_masks_is_completed_not_used_without_them(tmp_path, caplog):
    folder, voc = str(tmp_path / "shapes"), str(tmp_path / "shapes_voc")
    ensure_shapes_datasets({"coco": folder, "voc": voc}, **SMALL)
    fresh, fresh_voc = _files(folder), _files(voc)
    _strip_masks(folder)
    image = os.path.join(folder, "train", "000001.jpg")
    before = os.stat(image).st_mtime_ns
    with caplog.at_level("INFO"):
        ensure_shapes_datasets({"coco": folder, "voc": voc}, **SMALL)
    # Byte for byte what a fresh generation writes, marker included; images not rewritten,
    # the VOC copy (no masks there) untouched.
    assert _files(folder) == fresh and _files(voc) == fresh_voc
    assert os.stat(image).st_mtime_ns == before
    assert any("Adding instance masks" in r.getMessage() for r in caplog.records)
    # An old folder made with other parameters is still refused.
    _strip_masks(folder)
    with pytest.raises(DataError, match="generated with"):
        ensure_shapes_dataset(folder, "coco", num_train=7, num_val=3)


# ------------------------------------------------------------------ instance masks
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
    from resnet_det.data.detection.instance_masks import InstanceMasks

    h, w = 50, 60
    segm = shape_segmentation(cls, 7, 5, 37, 35, h, w)
    flipped = InstanceMasks([segm], h, w).hflip().to_tensor()[0].numpy()
    assert _iou(flipped, shape_mask(cls, 7, 5, 37, 35, h, w)[:, ::-1]) >= 0.9
