"""Data: dataset registry, COCO/VOC readers, demo shapes, transforms, samplers and loaders for
detection; ImageNet/CIFAR-10/digits readers for pretraining (classification.py). Importing
this package registers every built-in dataset name of design.md (no file is read until a
dataset is loaded)."""
from .build import (build_detection_test_loader, build_detection_train_loader,
                    build_test_loader, build_train_loader, filter_images_without_annotations,
                    get_detection_dataset_dicts, trivial_batch_collator)
from .builtin import (datasets_root, register_all_builtin, register_coco_instances,
                      register_pascal_voc)
from .catalog import DatasetCatalog, Lazy, Metadata, MetadataCatalog
from .coco import load_coco_json
from .image_io import read_image
from .mapper import DatasetMapper
from .samplers import InferenceSampler, TrainBatchSampler, TrainingSampler
from .shapes import (SHAPE_CLASSES, ensure_shapes_dataset, ensure_shapes_datasets,
                     write_shapes_datasets)
from .transforms import RandomFlip, ResizeShortestEdge
from .voc import VOC_CLASSES, load_voc_instances

register_all_builtin()


def _register_classification() -> None:
    from .classification import register_all_classification

    register_all_classification()


_register_classification()
