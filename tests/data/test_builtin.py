import os

import pytest

import resnet_det.data  # noqa: F401  (registers the built-in names)
from resnet_det.data import DatasetCatalog, MetadataCatalog
from resnet_det.data.shapes import SHAPE_CLASSES
from resnet_det.data.voc import VOC_CLASSES

BUILTIN = ["coco_2017_train", "coco_2017_val", "voc_2007_trainval", "voc_2007_test",
           "voc_2012_trainval", "shapes_train", "shapes_val", "shapes_voc_train",
           "shapes_voc_val"]


def test_builtin_names_registered_with_metadata():
    assert set(BUILTIN) <= set(DatasetCatalog.list())
    coco = MetadataCatalog.get("coco_2017_val")
    assert len(coco.thing_classes) == 80 and coco.thing_classes[0] == "person"
    assert coco.thing_dataset_id_to_contiguous_id[90] == 79 and coco.evaluator_type == "coco"
    voc = MetadataCatalog.get("voc_2012_trainval")
    assert voc.thing_classes == list(VOC_CLASSES) and voc.evaluator_type == "voc"
    assert (voc.split, voc.year) == ("trainval", 2012)


def test_root_is_read_when_used(monkeypatch, tmp_path):
    monkeypatch.setenv("RESNET_DET_DATASETS", str(tmp_path / "one"))
    assert MetadataCatalog.get("coco_2017_train").json_file == \
        os.path.join(str(tmp_path / "one"), "coco", "annotations", "instances_train2017.json")
    monkeypatch.setenv("RESNET_DET_DATASETS", str(tmp_path / "two"))
    assert MetadataCatalog.get("voc_2007_test").dirname == os.path.join(str(tmp_path / "two"),
                                                                        "VOC2007")
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "two" / "VOC2007")):
        DatasetCatalog.get("voc_2007_test")
    with pytest.raises(FileNotFoundError, match="instances_val2017.json"):
        DatasetCatalog.get("coco_2017_val")


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
