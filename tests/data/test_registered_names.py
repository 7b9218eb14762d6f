"""Every dataset name of design.md is registered by importing resnet_det.data."""
from resnet_det.data import DatasetCatalog, MetadataCatalog

DESIGN_NAMES = [
    "coco_2017_train", "coco_2017_val", "voc_2007_trainval", "voc_2007_test", "voc_2012_trainval",
    "imagenet_train", "imagenet_val", "cifar10_train", "cifar10_val", "cifar10_test",
    "shapes_train", "shapes_val", "shapes_voc_train", "shapes_voc_val",
]


def test_design_names_registered_on_import():
    registered = set(DatasetCatalog.list())
    missing = [n for n in DESIGN_NAMES if n not in registered]
    assert not missing, f"not registered on import: {missing}"


def test_digits_usable_without_extra_registration():
    dicts = DatasetCatalog.get("digits_test")
    assert len(dicts) == 297
    assert {d["label"] for d in dicts} == set(range(10))
    assert MetadataCatalog.get("digits_test").thing_classes == [str(i) for i in range(10)]
