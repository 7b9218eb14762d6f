"""Registration of every built-in dataset name, detection and classification, and the helpers
to register one's own (docs/datasets.md lists the names and their layouts).

All paths are under ``datasets_root()``: the environment variable RESNET_DET_DATASETS
(default ``./datasets``), read each time a dataset or its metadata path is used rather than
when the package is imported, so it can be set after ``import resnet_det``. Layouts are those
of the official archives (see datasets/README.md). Importing this module has no side effect
besides defining functions (``resnet_det.data`` calls ``register_all_builtin()``).
"""

import os
from functools import partial
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from ..catalog import DatasetCatalog, Lazy, MetadataCatalog
from ..paths import datasets_root
from ..skips import SkipCounts
from .cifar import CIFAR10_CLASSES, load_cifar10
from .cifar import SPLITS as CIFAR10_SPLITS
from .coco import load_coco_json
from .digits import DIGITS_CLASSES, load_digits_split
from .imagenet import load_imagenet
from .shapes import SHAPE_CLASSES, ensure_shapes_datasets
from .voc import VOC_CLASSES, load_voc_images, load_voc_instances

__all__ = [
    "register_coco_instances",
    "register_pascal_voc",
    "register_pascal_voc_images",
    "register_classification_dataset",
    "register_all_builtin",
    "COCO_CATEGORIES",
]

# (COCO category id, name) of the 80 COCO thing classes; contiguous id = position here.
COCO_CATEGORIES = (
    (1, "person"),
    (2, "bicycle"),
    (3, "car"),
    (4, "motorcycle"),
    (5, "airplane"),
    (6, "bus"),
    (7, "train"),
    (8, "truck"),
    (9, "boat"),
    (10, "traffic light"),
    (11, "fire hydrant"),
    (13, "stop sign"),
    (14, "parking meter"),
    (15, "bench"),
    (16, "bird"),
    (17, "cat"),
    (18, "dog"),
    (19, "horse"),
    (20, "sheep"),
    (21, "cow"),
    (22, "elephant"),
    (23, "bear"),
    (24, "zebra"),
    (25, "giraffe"),
    (27, "backpack"),
    (28, "umbrella"),
    (31, "handbag"),
    (32, "tie"),
    (33, "suitcase"),
    (34, "frisbee"),
    (35, "skis"),
    (36, "snowboard"),
    (37, "sports ball"),
    (38, "kite"),
    (39, "baseball bat"),
    (40, "baseball glove"),
    (41, "skateboard"),
    (42, "surfboard"),
    (43, "tennis racket"),
    (44, "bottle"),
    (46, "wine glass"),
    (47, "cup"),
    (48, "fork"),
    (49, "knife"),
    (50, "spoon"),
    (51, "bowl"),
    (52, "banana"),
    (53, "apple"),
    (54, "sandwich"),
    (55, "orange"),
    (56, "broccoli"),
    (57, "carrot"),
    (58, "hot dog"),
    (59, "pizza"),
    (60, "donut"),
    (61, "cake"),
    (62, "chair"),
    (63, "couch"),
    (64, "potted plant"),
    (65, "bed"),
    (67, "dining table"),
    (70, "toilet"),
    (72, "tv"),
    (73, "laptop"),
    (74, "mouse"),
    (75, "remote"),
    (76, "keyboard"),
    (77, "cell phone"),
    (78, "microwave"),
    (79, "oven"),
    (80, "toaster"),
    (81, "sink"),
    (82, "refrigerator"),
    (84, "book"),
    (85, "clock"),
    (86, "vase"),
    (87, "scissors"),
    (88, "teddy bear"),
    (89, "hair drier"),
    (90, "toothbrush"),
)

PathArg = Union[str, Callable[[], str]]


def _resolve(path: PathArg) -> str:
    return path() if callable(path) else path


def _lazy(path: PathArg):
    return Lazy(path) if callable(path) else path


def register_coco_instances(
    name: str, metadata: Dict, json_file: PathArg, image_root: PathArg
) -> None:
    """Register a COCO-format instance dataset under ``name``.

    Args:
        name: dataset name (e.g. "my_train").
        metadata: extra metadata (e.g. thing_classes); json_file, image_root and
            evaluator_type="coco" are added.
        json_file: path of the annotation json, or a no-argument function returning it
            (resolved when used).
        image_root: folder of the images, or a function returning it.
    """

    def read(on_bad_image: str = "stop", skip_counts: Optional[SkipCounts] = None):
        return load_coco_json(
            _resolve(json_file),
            _resolve(image_root),
            name,
            on_bad_image=on_bad_image,
            skip_counts=skip_counts,
        )

    DatasetCatalog.register(name, read)
    MetadataCatalog.get(name).set(
        json_file=_lazy(json_file), image_root=_lazy(image_root), evaluator_type="coco", **metadata
    )


def register_pascal_voc(
    name: str, dirname: PathArg, split: str, year: int, class_names: Sequence[str] = VOC_CLASSES
) -> None:
    """Register a PASCAL VOC-layout dataset under ``name``.

    Args:
        name: dataset name.
        dirname: folder with Annotations/, JPEGImages/, ImageSets/Main/ (or a function
            returning it, resolved when used).
        split: image set ("trainval", "test", ...), read from ImageSets/Main/<split>.txt.
        year: 2007 or 2012 (metadata for the evaluator).
        class_names: class order (contiguous ids).
    """
    class_names = tuple(class_names)

    def read(on_bad_image: str = "stop", skip_counts: Optional[SkipCounts] = None):
        return load_voc_instances(
            _resolve(dirname),
            split,
            class_names,
            on_bad_image=on_bad_image,
            skip_counts=skip_counts,
        )

    DatasetCatalog.register(name, read)
    MetadataCatalog.get(name).set(
        thing_classes=list(class_names),
        dirname=_lazy(dirname),
        split=split,
        year=year,
        evaluator_type="voc",
    )


def register_pascal_voc_images(
    name: str, dirname: PathArg, split: str, year: int, class_names: Sequence[str] = VOC_CLASSES
) -> None:
    """Register a VOC-layout image set without annotations (e.g. VOC 2012 test), whose
    detections are written in the PASCAL evaluation server's format instead of being scored
    (evaluator_type "voc_submission", resnet_det.evaluation.voc_submission).

    Args:
        name: dataset name.
        dirname: folder with JPEGImages/ and ImageSets/Main/ (or a function returning it).
        split: image set, read from ImageSets/Main/<split>.txt (names the results files:
            comp4_det_<split>_<class>.txt).
        year: the challenge year (names the results folder: results/VOC<year>/Main/).
        class_names: class order (the results files' classes).
    """
    class_names = tuple(class_names)

    def read(on_bad_image: str = "stop", skip_counts: Optional[SkipCounts] = None):
        return load_voc_images(
            _resolve(dirname), split, on_bad_image=on_bad_image, skip_counts=skip_counts
        )

    DatasetCatalog.register(name, read)
    MetadataCatalog.get(name).set(
        thing_classes=list(class_names),
        dirname=_lazy(dirname),
        split=split,
        year=year,
        evaluator_type="voc_submission",
    )


def register_classification_dataset(
    name: str, func: Callable[..., List[Dict[str, Any]]], **metadata: Any
) -> None:
    """Register an image-classification dataset under ``name``.

    Args:
        name: dataset name.
        func: returns classification dicts (docs/internals.md); it may take the keywords
            ``on_bad_image``, which the classification loaders pass from
            DATALOADER.ON_BAD_IMAGE (e.g. to skip an unreadable class folder), and
            ``skip_counts`` (a SkipCounts to add what it left out to).
        **metadata: e.g. thing_classes (label order) or num_classes; evaluator_type is
            "classification".
    """
    DatasetCatalog.register(name, func)
    MetadataCatalog.get(name).set(evaluator_type="classification", **metadata)


def _under_root(*parts: str) -> Callable[[], str]:
    def path() -> str:
        return os.path.join(datasets_root(), *parts)

    path.__name__ = "<RESNET_DET_DATASETS>/" + "/".join(parts)
    return path


_SHAPES_FOLDERS = {"coco": "shapes", "voc": "shapes_voc"}


def _shapes(layout: str, *parts: str) -> Callable[[], str]:
    folder = _SHAPES_FOLDERS[layout]

    def path() -> str:
        root = datasets_root()
        # Both layouts at once: they share the images, which are drawn only once.
        ensure_shapes_datasets({k: os.path.join(root, v) for k, v in _SHAPES_FOLDERS.items()})
        return os.path.join(root, folder, *parts)

    path.__name__ = f"<RESNET_DET_DATASETS>/{folder}/" + "/".join(parts)
    return path


def _folder_reader(
    load: Callable[..., List[Dict[str, Any]]], folder: str, split: str
) -> Callable[..., List[Dict[str, Any]]]:
    """``load(<RESNET_DET_DATASETS>/folder, split, on_bad_image=..., skip_counts=...)``, the
    root read when the data is."""
    dirname = _under_root(folder)

    def read(
        on_bad_image: str = "stop", skip_counts: Optional[SkipCounts] = None
    ) -> List[Dict[str, Any]]:
        return load(dirname(), split, on_bad_image=on_bad_image, skip_counts=skip_counts)

    return read


_REGISTERED = False


def register_all_builtin() -> None:
    """Register the detection sets coco_2017_{train,val},
    coco_2014_{train,val,minival,valminusminival}, voc_2007_{trainval,train,val,test},
    voc_2012_{trainval,train,val}, voc_2012_test (images only: results go to the PASCAL
    server), shapes_{train,val}, shapes_voc_{train,val} and the classification sets
    imagenet_{train,val}, cifar10_{train,val,trainval,test}, digits_{train,test}. Called once
    by ``import resnet_det.data``; further calls do nothing."""
    global _REGISTERED
    if _REGISTERED:
        return
    _REGISTERED = True
    _register_detection()
    _register_classification()


def _register_detection() -> None:
    coco_meta = {
        "thing_classes": [n for _, n in COCO_CATEGORIES],
        "thing_dataset_id_to_contiguous_id": {cid: i for i, (cid, _) in enumerate(COCO_CATEGORIES)},
    }
    for split in ("train", "val"):
        register_coco_instances(
            f"coco_2017_{split}",
            dict(coco_meta),
            _under_root("coco", "annotations", f"instances_{split}2017.json"),
            _under_root("coco", f"{split}2017"),
        )
    # The 2014 split the paper trains and tests on (Appendix A: the 80k train images, the 40k
    # val images), with detectron2's names; minival / valminusminival are Detectron's 5k / 35k
    # split of val2014 (their json files come with Detectron, not with COCO).
    for name, images, json_name in (
        ("train", "train2014", "train2014"),
        ("val", "val2014", "val2014"),
        ("minival", "val2014", "minival2014"),
        ("valminusminival", "val2014", "valminusminival2014"),
    ):
        register_coco_instances(
            f"coco_2014_{name}",
            dict(coco_meta),
            _under_root("coco", "annotations", f"instances_{json_name}.json"),
            _under_root("coco", images),
        )
    # detectron2's VOC names. voc_2007_test has public annotations, so it also serves as
    # training data ("07++12": voc_2007_trainval + voc_2007_test + voc_2012_trainval).
    for year, split in (
        (2007, "trainval"),
        (2007, "train"),
        (2007, "val"),
        (2007, "test"),
        (2012, "trainval"),
        (2012, "train"),
        (2012, "val"),
    ):
        register_pascal_voc(f"voc_{year}_{split}", _under_root(f"VOC{year}"), split, year)
    register_pascal_voc_images("voc_2012_test", _under_root("VOC2012"), "test", 2012)

    shapes_meta = {
        "thing_classes": list(SHAPE_CLASSES),
        "thing_dataset_id_to_contiguous_id": {i + 1: i for i in range(len(SHAPE_CLASSES))},
    }
    for split in ("train", "val"):
        register_coco_instances(
            f"shapes_{split}",
            dict(shapes_meta),
            _shapes("coco", "annotations", f"instances_{split}.json"),
            _shapes("coco", split),
        )
        # year 2007: the demo is evaluated like VOC07 (11-point AP when TEST.VOC_USE_07_METRIC).
        register_pascal_voc(
            f"shapes_voc_{split}", _shapes("voc"), split, 2007, class_names=SHAPE_CLASSES
        )


def _register_classification() -> None:
    for split in ("train", "val"):
        # No thing_classes: the label order is that of the class folders found on disk.
        register_classification_dataset(
            f"imagenet_{split}", _folder_reader(load_imagenet, "imagenet", split), num_classes=1000
        )
    # The paper's Sec. 4.2 split: cifar10_train 45k, cifar10_val 5k, trainval 50k, test 10k.
    for split in CIFAR10_SPLITS:
        register_classification_dataset(
            f"cifar10_{split}",
            _folder_reader(load_cifar10, "cifar-10-batches-py", split),
            thing_classes=list(CIFAR10_CLASSES),
        )
    for split in ("train", "test"):
        # Embedded: nothing under the root; partial keeps the on_bad_image keyword.
        register_classification_dataset(
            f"digits_{split}", partial(load_digits_split, split), thing_classes=list(DIGITS_CLASSES)
        )
