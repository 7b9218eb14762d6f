"""Data for both tasks, on one spine (docs/datasets.md, docs/reproducibility.md):

- catalog.py: the one registry, DatasetCatalog / MetadataCatalog, for every dataset name;
- paths.py: datasets_root(), where the datasets live;
- io.py: the one read_image (EXIF applied);
- skips.py: DATALOADER.ON_BAD_IMAGE applied to data faults (BadImageError for an image that
  cannot be read), and the counts of what it left out;
- serialized.py, dataset_cache.py: dataset dicts as JSON records in one buffer (SerializedDicts),
  and the cache of a large file's parse that the processes of a machine map and share;
- samplers.py: the training stream and inference shards that both tasks' loaders use;
- datasets/: readers (COCO, VOC, demo shapes, ImageNet, CIFAR-10, digits) and the built-in
  names; they import no task code;
- detection/: mapper, transforms and loaders of the detector;
- classification/: transforms, datasets and loaders of pretraining.

Importing this package registers every built-in dataset name, detection and classification
(no file is read until a dataset is loaded). It does not import torch: the catalog, the
readers and the names need none, and the loaders, samplers and read_image are loaded on first
use (PEP 562), so that what only reads annotations (tools/evaluate.py) starts quickly.
"""

from typing import TYPE_CHECKING

from ..utils.lazy import lazy_attributes
from .catalog import DatasetCatalog, Lazy, Metadata, MetadataCatalog
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
from .paths import datasets_root
from .serialized import SerializedDicts
from .skips import (
    BadImageError,
    ImageSizeError,
    MissingImageError,
    SkipCountingLoader,
    SkipCounts,
    SkippedImage,
)

# The names that need torch, by module, loaded on first use (PEP 562).
_LAZY = {
    "build_classification_test_loader": ".classification",
    "build_classification_train_loader": ".classification",
    "get_classification_dicts": ".classification",
    "DatasetMapper": ".detection",
    "RandomFlip": ".detection",
    "ResizeShortestEdge": ".detection",
    "build_detection_test_loader": ".detection",
    "build_detection_train_loader": ".detection",
    "build_test_loader": ".detection",
    "build_train_loader": ".detection",
    "filter_images_without_annotations": ".detection",
    "get_detection_dataset_dicts": ".detection",
    "trivial_batch_collator": ".detection",
    "read_image": ".io",
    "InferenceSampler": ".samplers",
    "TrainBatchSampler": ".samplers",
    "TrainingSampler": ".samplers",
}

if TYPE_CHECKING:  # pragma: no cover
    from .classification import (
        build_classification_test_loader,
        build_classification_train_loader,
        get_classification_dicts,
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
    from .io import read_image
    from .samplers import InferenceSampler, TrainBatchSampler, TrainingSampler

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
    "SerializedDicts",
    "SkipCountingLoader",
    "SkipCounts",
    "SkippedImage",
]


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())


register_all_builtin()
