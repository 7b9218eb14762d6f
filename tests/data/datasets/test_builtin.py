"""The built-in dataset names (docs/datasets.md): registered by importing resnet_det.data,
with their metadata, paths resolved under $RESNET_DET_DATASETS when used."""

import os

import pytest

from resnet_det.data import DatasetCatalog, MetadataCatalog
from resnet_det.data.datasets.builtin import register_classification_dataset
from resnet_det.data.datasets.cifar import CIFAR10_CLASSES
from resnet_det.data.datasets.shapes import SHAPE_CLASSES
from resnet_det.data.datasets.voc import VOC_CLASSES
from resnet_det.utils.errors import MissingFileError, UserKeyError

DETECTION = [
    "coco_2017_train",
    "coco_2017_val",
    "coco_2014_train",
    "coco_2014_val",
    "coco_2014_minival",
    "coco_2014_valminusminival",
    "voc_2007_trainval",
    "voc_2007_train",
    "voc_2007_val",
    "voc_2007_test",
    "voc_2012_trainval",
    "voc_2012_train",
    "voc_2012_val",
    "voc_2012_test",
    "shapes_train",
    "shapes_val",
    "shapes_voc_train",
    "shapes_voc_val",
]
CLASSIFICATION = [
    "imagenet_train",
    "imagenet_val",
    "cifar10_train",
    "cifar10_val",
    "cifar10_trainval",
    "cifar10_test",
    "digits_train",
    "digits_test",
]


def test_every_name_registered_on_import_with_its_task():
    assert set(DETECTION + CLASSIFICATION) <= set(DatasetCatalog.list())
    for name in CLASSIFICATION:
        assert MetadataCatalog.get(name).evaluator_type == "classification", name
    assert MetadataCatalog.get("cifar10_val").thing_classes == list(CIFAR10_CLASSES)
    assert MetadataCatalog.get("imagenet_train").num_classes == 1000


def test_builtin_names_registered_with_metadata():
    assert set(DETECTION) <= set(DatasetCatalog.list())
    coco = MetadataCatalog.get("coco_2017_val")
    assert len(coco.thing_classes) == 80 and coco.thing_classes[0] == "person"
    assert coco.thing_dataset_id_to_contiguous_id[90] == 79 and coco.evaluator_type == "coco"
    voc = MetadataCatalog.get("voc_2012_trainval")
    assert voc.thing_classes == list(VOC_CLASSES) and voc.evaluator_type == "voc"
    assert (voc.split, voc.year) == ("trainval", 2012)
    # VOC 2012 test has no public annotations: its detections go to the PASCAL server.
    test = MetadataCatalog.get("voc_2012_test")
    assert test.evaluator_type == "voc_submission" and test.thing_classes == list(VOC_CLASSES)
    assert (test.split, test.year) == ("test", 2012)
    assert MetadataCatalog.get("voc_2007_test").evaluator_type == "voc"  # also a training set


# detectron2's file names: (dataset, image folder, annotation json).
COCO_2014 = [
    ("coco_2014_train", "train2014", "instances_train2014.json"),
    ("coco_2014_val", "val2014", "instances_val2014.json"),
    ("coco_2014_minival", "val2014", "instances_minival2014.json"),
    ("coco_2014_valminusminival", "val2014", "instances_valminusminival2014.json"),
]


@pytest.mark.parametrize("name,images,json_name", COCO_2014)
def test_coco_2014_names_use_detectron2s_files(monkeypatch, tmp_path, name, images, json_name):
    monkeypatch.setenv("RESNET_DET_DATASETS", str(tmp_path))
    meta = MetadataCatalog.get(name)
    assert meta.image_root == str(tmp_path / "coco" / images)
    assert meta.json_file == str(tmp_path / "coco" / "annotations" / json_name)
    assert (
        meta.evaluator_type == "coco"
        and meta.thing_classes == MetadataCatalog.get("coco_2017_val").thing_classes
    )
    with pytest.raises(MissingFileError, match=json_name):
        DatasetCatalog.get(name)


def test_root_is_read_when_used(monkeypatch, tmp_path):
    monkeypatch.setenv("RESNET_DET_DATASETS", str(tmp_path / "one"))
    assert MetadataCatalog.get("coco_2017_train").json_file == os.path.join(
        str(tmp_path / "one"), "coco", "annotations", "instances_train2017.json"
    )
    monkeypatch.setenv("RESNET_DET_DATASETS", str(tmp_path / "two"))
    assert MetadataCatalog.get("voc_2007_test").dirname == os.path.join(
        str(tmp_path / "two"), "VOC2007"
    )
    with pytest.raises(MissingFileError, match=str(tmp_path / "two" / "VOC2007")):
        DatasetCatalog.get("voc_2007_test")
    with pytest.raises(MissingFileError, match="instances_val2017.json"):
        DatasetCatalog.get("coco_2017_val")
    with pytest.raises(MissingFileError, match=str(tmp_path / "two" / "cifar-10-batches-py")):
        DatasetCatalog.get("cifar10_test")
    with pytest.raises(MissingFileError, match=str(tmp_path / "two" / "imagenet" / "val")):
        DatasetCatalog.get("imagenet_val", on_bad_image="skip")


def test_demo_sets_generated_on_first_use(monkeypatch, tmp_path):
    monkeypatch.setenv("RESNET_DET_DATASETS", str(tmp_path))
    val = DatasetCatalog.get("shapes_val")
    assert len(val) == 100 and os.path.isfile(val[0]["file_name"])
    assert MetadataCatalog.get("shapes_val").thing_classes == list(SHAPE_CLASSES)
    assert len(DatasetCatalog.get("shapes_train")) >= 300
    voc = DatasetCatalog.get("shapes_voc_val")
    assert [int(d["image_id"]) for d in voc] == [d["image_id"] for d in val]
    assert sorted(os.listdir(tmp_path)) == ["shapes", "shapes_voc"]
    assert MetadataCatalog.get("shapes_voc_val").dirname == str(tmp_path / "shapes_voc")


def test_digits_usable_without_extra_registration():
    dicts = DatasetCatalog.get("digits_test")
    assert len(dicts) == 297
    assert {d["label"] for d in dicts} == set(range(10))
    assert MetadataCatalog.get("digits_test").thing_classes == [str(i) for i in range(10)]


def test_register_classification_dataset_passes_reading_options():
    name = "test_builtin_toy_classification"
    seen = []

    def read(on_bad_image="stop"):
        seen.append(on_bad_image)
        return [{"image_id": 0, "label": 0, "file_name": "x.jpg"}]

    register_classification_dataset(name, read, thing_classes=["a"])
    try:
        assert MetadataCatalog.get(name).evaluator_type == "classification"
        DatasetCatalog.get(name)
        DatasetCatalog.get(name, on_bad_image="skip")
        assert seen == ["stop", "skip"]
        with pytest.raises(UserKeyError, match="did you mean"):
            DatasetCatalog.get(name + "s")
    finally:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
