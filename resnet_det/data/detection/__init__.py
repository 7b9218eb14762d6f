"""Detection data: dataset dict -> model input (mapper, transforms) and the loaders."""

from .build import (
    MappedBatch,
    TestLoader,
    build_detection_test_loader,
    build_detection_train_loader,
    build_test_loader,
    build_train_loader,
    filter_images_without_annotations,
    get_detection_dataset_dicts,
    require_masks,
    trivial_batch_collator,
)
from .dataset import MapDataset, SerializedList
from .mapper import DatasetMapper
from .transforms import RandomFlip, ResizeShortestEdge, apply_transforms

__all__ = [
    "MappedBatch",
    "TestLoader",
    "build_detection_test_loader",
    "build_detection_train_loader",
    "build_test_loader",
    "build_train_loader",
    "filter_images_without_annotations",
    "get_detection_dataset_dicts",
    "require_masks",
    "trivial_batch_collator",
    "MapDataset",
    "SerializedList",
    "DatasetMapper",
    "RandomFlip",
    "ResizeShortestEdge",
    "apply_transforms",
]
