"""Dataset readers (files -> dataset dicts) and the registration of the built-in names.

Readers know file formats only: they import no detection or classification code, so both
tasks (and tools) can use them. docs/datasets.md lists the names and their on-disk layouts.
"""

from .boxes import BoxSanitizer
from .builtin import (
    COCO_CATEGORIES,
    register_all_builtin,
    register_classification_dataset,
    register_coco_instances,
    register_pascal_voc,
    register_pascal_voc_images,
)
from .cifar import CIFAR10_CLASSES, load_cifar10, read_cifar_batch, read_cifar_meta
from .coco import load_coco_json, read_coco_api
from .digits import DIGITS_CLASSES, load_digits_split
from .imagenet import IMAGE_EXTENSIONS, load_image_folder, load_imagenet
from .shapes import (
    SHAPE_CLASSES,
    ensure_shapes_dataset,
    ensure_shapes_datasets,
    render_shapes_image,
    write_shapes_datasets,
)
from .voc import VOC_CLASSES, load_voc_images, load_voc_instances, read_voc_split

__all__ = [
    "BoxSanitizer",
    "COCO_CATEGORIES",
    "register_all_builtin",
    "register_classification_dataset",
    "register_coco_instances",
    "register_pascal_voc",
    "register_pascal_voc_images",
    "CIFAR10_CLASSES",
    "load_cifar10",
    "read_cifar_batch",
    "read_cifar_meta",
    "load_coco_json",
    "read_coco_api",
    "DIGITS_CLASSES",
    "load_digits_split",
    "IMAGE_EXTENSIONS",
    "load_image_folder",
    "load_imagenet",
    "SHAPE_CLASSES",
    "ensure_shapes_dataset",
    "ensure_shapes_datasets",
    "render_shapes_image",
    "write_shapes_datasets",
    "VOC_CLASSES",
    "load_voc_instances",
    "read_voc_split",
    "load_voc_images",
]
