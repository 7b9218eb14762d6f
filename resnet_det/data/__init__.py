"""Data for both tasks, on one spine (docs/datasets.md, docs/reproducibility.md):

- catalog.py: the one registry, DatasetCatalog / MetadataCatalog, for every dataset name;
- io.py: the one read_image (EXIF applied), datasets_root() and BadImageError;
- skips.py: DATALOADER.ON_BAD_IMAGE applied to data faults, and the counts of what it left out;
- samplers.py: the training stream and inference shards that both tasks' loaders use;
- datasets/: readers (COCO, VOC, demo shapes, ImageNet, CIFAR-10, digits) and the built-in
  names; they import no task code;
- detection/: mapper, transforms and loaders of the detector;
- classification/: transforms, datasets and loaders of pretraining.

Importing this package registers every built-in dataset name, detection and classification
(no file is read until a dataset is loaded).
"""

from .catalog import DatasetCatalog, Lazy, Metadata, MetadataCatalog
from .classification import (
    build_classification_test_loader,
    build_classification_train_loader,
    get_classification_dicts,
)
from .datasets import (
    CIFAR10_CLASSES,
    COCO_CATEGORIES,
    DIGITS_CLASSES,
    SHAPE_CLASSES,
    VOC_CLASSES,
    ensure_shapes_dataset,
    ensure_shapes_datasets,
    load_cifar10,
    load_coco_json,
    load_digits_split,
    load_image_folder,
    load_voc_instances,
    register_all_builtin,
    register_classification_dataset,
    register_coco_instances,
    register_pascal_voc,
    write_shapes_datasets,
)
from .detection import (
    DatasetMapper,
    RandomFlip,
    ResizeShortestEdge,
    build_detection_test_loader,
    build_detection_train_loader,
    build_test_loader,
    build_train_loader,
    filter_images_without_annotations,
    get_detection_dataset_dicts,
    trivial_batch_collator,
)
from .io import BadImageError, ImageSizeError, MissingImageError, datasets_root, read_image
from .samplers import InferenceSampler, TrainBatchSampler, TrainingSampler
from .skips import SkipCountingLoader, SkipCounts, SkippedImage

__all__ = [
    "DatasetCatalog",
    "Lazy",
    "Metadata",
    "MetadataCatalog",
    "build_classification_test_loader",
    "build_classification_train_loader",
    "get_classification_dicts",
    "CIFAR10_CLASSES",
    "COCO_CATEGORIES",
    "DIGITS_CLASSES",
    "SHAPE_CLASSES",
    "VOC_CLASSES",
    "ensure_shapes_dataset",
    "ensure_shapes_datasets",
    "load_cifar10",
    "load_coco_json",
    "load_digits_split",
    "load_image_folder",
    "load_voc_instances",
    "register_all_builtin",
    "register_classification_dataset",
    "register_coco_instances",
    "register_pascal_voc",
    "write_shapes_datasets",
    "DatasetMapper",
    "RandomFlip",
    "ResizeShortestEdge",
    "build_detection_test_loader",
    "build_detection_train_loader",
    "build_test_loader",
    "build_train_loader",
    "filter_images_without_annotations",
    "get_detection_dataset_dicts",
    "trivial_batch_collator",
    "BadImageError",
    "ImageSizeError",
    "MissingImageError",
    "datasets_root",
    "read_image",
    "InferenceSampler",
    "TrainBatchSampler",
    "TrainingSampler",
    "SkipCountingLoader",
    "SkipCounts",
    "SkippedImage",
]

register_all_builtin()
