"""Tiny datasets registered for the evaluation tests (removed again afterwards): boxes (COCO),
and randomised masks (segm_dataset)."""

import json
import uuid

import pytest

from resnet_det.data.catalog import DatasetCatalog, MetadataCatalog


@pytest.fixture
def register():
    """register(prefix, dicts_fn, **metadata) -> a unique registered dataset name."""
    names = []

    def _register(prefix, dicts_fn, **metadata):
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        DatasetCatalog.register(name, dicts_fn)
        MetadataCatalog.get(name).set(**metadata)
        names.append(name)
        return name

    yield _register
    for name in names:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)


# Two 100x100 images; categories with non-contiguous COCO ids, listed out of order, so that a
# wrong id mapping cannot pass: dog (id 3) -> contiguous 0, cat (id 7) -> contiguous 1.
COCO_CATEGORIES = [{"id": 7, "name": "cat"}, {"id": 3, "name": "dog"}]
COCO_IMAGES = [
    {"id": 11, "file_name": "a.jpg", "height": 100, "width": 100},
    {"id": 12, "file_name": "b.jpg", "height": 100, "width": 100},
]
# XYWH boxes, all 20x20 (small objects).
COCO_ANNOTATIONS = [
    {"id": 1, "image_id": 11, "category_id": 7, "bbox": [0, 0, 20, 20]},  # cat G1
    {"id": 2, "image_id": 12, "category_id": 7, "bbox": [50, 50, 20, 20]},  # cat G2
    {"id": 3, "image_id": 11, "category_id": 3, "bbox": [10, 40, 20, 20]},  # dog G3
]


def write_coco_json(path):
    anns = [dict(a, area=a["bbox"][2] * a["bbox"][3], iscrowd=0) for a in COCO_ANNOTATIONS]
    data = {"images": COCO_IMAGES, "annotations": anns, "categories": COCO_CATEGORIES}
    path.write_text(json.dumps(data))
    return str(path)


def coco_dicts():
    """The same ground truth as dataset dicts (docs/internals.md: XYXY, contiguous ids)."""
    contiguous = {3: 0, 7: 1}
    out = []
    for img in COCO_IMAGES:
        anns = [
            {
                "bbox": [
                    a["bbox"][0],
                    a["bbox"][1],
                    a["bbox"][0] + a["bbox"][2],
                    a["bbox"][1] + a["bbox"][3],
                ],
                "category_id": contiguous[a["category_id"]],
                "iscrowd": 0,
            }
            for a in COCO_ANNOTATIONS
            if a["image_id"] == img["id"]
        ]
        out.append(
            {
                "file_name": img["file_name"],
                "image_id": img["id"],
                "height": 100,
                "width": 100,
                "annotations": anns,
            }
        )
    return out


@pytest.fixture
def coco_dataset(tmp_path, register):
    """A registered COCO-format dataset (metadata as register_coco_instances + load_coco_json
    set it)."""
    json_file = write_coco_json(tmp_path / "instances.json")
    return register(
        "eval_coco",
        coco_dicts,
        json_file=json_file,
        image_root=str(tmp_path),
        evaluator_type="coco",
        thing_classes=["dog", "cat"],
        thing_dataset_id_to_contiguous_id={3: 0, 7: 1},
    )


@pytest.fixture
def segm_dataset(tmp_path, register):
    """make(seed) -> (registered name, annotation json, {image_id: (input, Mask R-CNN output)})
    of a randomised mask problem (_segm_problem.random_problem)."""
    from ._segm_problem import CATEGORY_IDS, random_problem

    def make(seed):
        data, outputs = random_problem(seed)
        json_file = tmp_path / f"instances_{seed}.json"
        json_file.write_text(json.dumps(data))
        dicts = [
            {
                "file_name": i["file_name"],
                "image_id": i["id"],
                "height": i["height"],
                "width": i["width"],
                "annotations": [],
            }
            for i in data["images"]
        ]
        name = register(
            "segm",
            lambda: dicts,
            json_file=str(json_file),
            evaluator_type="coco",
            thing_classes=[f"c{c}" for c in CATEGORY_IDS],
            thing_dataset_id_to_contiguous_id={c: i for i, c in enumerate(CATEGORY_IDS)},
        )
        return name, str(json_file), outputs

    return make
