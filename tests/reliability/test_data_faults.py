"""The data faults of docs/reliability.md, injected into small datasets of every reader (COCO
json, VOC xml, ImageNet folder, CIFAR batches) and read through the loader builders a run
uses, under DATALOADER.ON_BAD_IMAGE stop and skip.

Under "stop" each fault raises the project's error naming the file and the image or
annotation id; under "skip" the loader goes on and its SkipCountingLoader counts the fault by
reason (what reaches metrics.json), or, for a fault that always stops, the same error comes.
CASES lists the (fault, reader) pairs; docs/reliability.md states their number.
"""

import json
import os
import pickle
import re
import uuid

import numpy as np
import pytest
from PIL import Image

from resnet_det.config import ConfigError, get_cfg
from resnet_det.data import (
    DatasetCatalog,
    MetadataCatalog,
    register_classification_dataset,
    register_coco_instances,
    register_pascal_voc,
)
from resnet_det.data.classification import build_classification_train_loader
from resnet_det.data.datasets.cifar import load_cifar10
from resnet_det.data.datasets.imagenet import load_image_folder
from resnet_det.data.detection import build_detection_train_loader
from resnet_det.data.io import BadImageError, ImageSizeError, MissingImageError
from resnet_det.evaluation.results_file import load_results_file
from resnet_det.utils.errors import DataError, MissingFileError

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
CLASSES = ("circle", "square")
W, H = 40, 30

# fault -> the readers it is injected into (one parametrized case each).
CASES = {
    "zero_byte_image": ["coco", "voc", "imagenet"],
    "truncated_image": ["coco", "voc", "imagenet"],
    "missing_image": ["coco", "voc", "imagenet"],
    "size_mismatch": ["coco", "voc"],
    "degenerate_box": ["coco", "voc"],
    "out_of_image_box": ["coco", "voc"],
    "unknown_category": ["coco", "voc", "imagenet", "cifar"],
    "duplicate_image_id": ["coco", "voc", "imagenet"],
    "malformed_annotation_file": ["coco", "voc"],
    "missing_annotation_file": ["coco", "voc", "cifar"],
    "empty_dataset": ["coco", "voc", "imagenet", "cifar"],
    "empty_after_skipping": ["coco", "voc"],
    "hostile_pickle": ["cifar"],
    "malformed_results_file": ["results"],
    "malformed_yaml_config": ["yaml"],
    "short_polygon": ["coco"],
    "rle_size_mismatch": ["coco"],
    "crowd_polygon": ["coco"],
    "missing_mask": ["coco", "voc"],
}
POLICIES = ("stop", "skip")


def _cases(fault):
    return pytest.mark.parametrize("reader", CASES[fault])


def _jpeg(path, seed):
    rng = np.random.RandomState(seed)
    Image.fromarray(rng.randint(0, 255, (H, W, 3), dtype=np.uint8)).save(path, quality=90)


# --------------------------------------------------------------------- the small datasets
class Detection:
    """Three 40x30 JPEGs with one box each, as a COCO json or a VOC folder, registered under
    a fresh name; ``edit`` the annotations, then ``load(policy)`` through the train loader."""

    def __init__(self, root, layout):
        self.root, self.layout = str(root), layout
        self.name = f"fault_{layout}_{uuid.uuid4().hex[:8]}"
        self.ids = ["000001", "000002", "000003"]
        img_dir = os.path.join(self.root, "JPEGImages")
        os.makedirs(img_dir)
        for k, i in enumerate(self.ids):
            _jpeg(os.path.join(img_dir, i + ".jpg"), k)
        self.coco = {
            "images": [
                {"id": k + 1, "file_name": i + ".jpg", "height": H, "width": W}
                for k, i in enumerate(self.ids)
            ],
            "categories": [{"id": 1, "name": "circle"}, {"id": 2, "name": "square"}],
            "annotations": [
                {
                    "id": k + 1,
                    "image_id": k + 1,
                    "category_id": 1 + k % 2,
                    "bbox": [5, 4, 20, 15],
                    "iscrowd": 0,
                }
                for k in range(3)
            ],
        }
        self.split = list(self.ids)
        self.json_file = os.path.join(self.root, "instances.json")
        if layout == "coco":
            register_coco_instances(self.name, {}, self.json_file, img_dir)
        else:
            register_pascal_voc(self.name, self.root, "train", 2007, class_names=CLASSES)
        self.write()

    def image(self, k):
        return os.path.join(self.root, "JPEGImages", self.ids[k] + ".jpg")

    def image_id(self, k):
        return k + 1 if self.layout == "coco" else self.ids[k]

    def xml(self, k):
        return os.path.join(self.root, "Annotations", self.ids[k] + ".xml")

    def annotation_file(self, k=0):
        return self.json_file if self.layout == "coco" else self.xml(k)

    def write(self):
        with open(self.json_file, "w") as f:
            json.dump(self.coco, f)
        os.makedirs(os.path.join(self.root, "Annotations"), exist_ok=True)
        os.makedirs(os.path.join(self.root, "ImageSets", "Main"), exist_ok=True)
        with open(os.path.join(self.root, "ImageSets", "Main", "train.txt"), "w") as f:
            f.write("".join(i + "\n" for i in self.split))
        for img, anns in zip(self.coco["images"], self._anns_by_image()):
            stem = os.path.splitext(img["file_name"])[0]
            objects = "".join(
                "<object><name>"
                f"{CLASSES[a['category_id'] - 1] if a['category_id'] <= 2 else 'unicorn'}"
                f"</name><bndbox><xmin>{a['bbox'][0] + 1}</xmin><ymin>{a['bbox'][1] + 1}</ymin>"
                f"<xmax>{a['bbox'][0] + a['bbox'][2]}</xmax><ymax>{a['bbox'][1] + a['bbox'][3]}"
                f"</ymax></bndbox></object>"
                for a in anns
            )
            with open(os.path.join(self.root, "Annotations", stem + ".xml"), "w") as f:
                f.write(
                    f"<annotation><size><width>{img['width']}</width><height>"
                    f"{img['height']}</height></size>{objects}</annotation>"
                )

    def _anns_by_image(self):
        return [
            [a for a in self.coco["annotations"] if a["image_id"] == img["id"]]
            for img in self.coco["images"]
        ]

    def load(self, policy, batches=4, mask_on=False):
        """The train loader after ``batches`` batches of 2 (every image met at least once);
        ``mask_on``: as for Mask R-CNN (MODEL.MASK_ON)."""
        cfg = get_cfg()
        cfg.MODEL.MASK_ON = mask_on
        cfg.merge_from_list(
            [
                "DATASETS.TRAIN",
                f"['{self.name}']",
                "DATALOADER.ON_BAD_IMAGE",
                policy,
                "DATALOADER.NUM_WORKERS",
                "0",
                "SOLVER.IMS_PER_BATCH",
                "2",
                "DATALOADER.ASPECT_RATIO_GROUPING",
                "False",
                "SEED",
                "1",
                "INPUT.MIN_SIZE_TRAIN",
                "(30,)",
                "INPUT.MAX_SIZE_TRAIN",
                "64",
            ]
        )
        loader = build_detection_train_loader(cfg)
        it = iter(loader)
        for _ in range(batches):
            assert len(next(it)) == 2
        return loader

    def remove(self):
        DatasetCatalog.remove(self.name)
        MetadataCatalog.remove(self.name)


class Classification:
    """An ImageNet-layout folder (two classes of two 40x30 JPEGs) or CIFAR-10 python batches
    of 4 images each, registered under a fresh name; ``load(policy)`` through the loader."""

    def __init__(self, root, layout):
        self.root, self.layout = str(root), layout
        self.name = f"fault_{layout}_{uuid.uuid4().hex[:8]}"
        self.class_names = None
        if layout == "imagenet":
            for c, wnid in enumerate(["n01", "n02"]):
                os.makedirs(os.path.join(self.root, wnid))
                for i in range(2):
                    _jpeg(self.image(c, i), 10 * c + i)
        else:
            os.makedirs(self.root)
            for b in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
                self.write_batch(b, [0, 1, 2, 3])

        def read(on_bad_image="stop", skip_counts=None):
            if layout == "imagenet":
                return load_image_folder(
                    self.root,
                    class_names=self.class_names,
                    on_bad_image=on_bad_image,
                    skip_counts=skip_counts,
                )
            return load_cifar10(
                self.root, "trainval", on_bad_image=on_bad_image, skip_counts=skip_counts
            )

        register_classification_dataset(self.name, read)

    def image(self, c, i, ext=".JPEG"):
        return os.path.join(self.root, f"n0{c + 1}", f"{i}{ext}")

    def write_batch(self, name, labels, extra=None, protocol=2):
        d = {b"data": np.zeros((len(labels), 3072), np.uint8), b"labels": labels}
        d.update(extra or {})
        with open(os.path.join(self.root, name), "wb") as f:
            pickle.dump(d, f, protocol=protocol)

    def load(self, policy):
        cfg = get_cfg()
        cfg.merge_from_file(os.path.join(ROOT, "configs", "digits", "resnet20.yaml"))
        cfg.merge_from_list(
            [
                "DATASETS.TRAIN",
                f"['{self.name}']",
                "DATALOADER.ON_BAD_IMAGE",
                policy,
                "DATALOADER.NUM_WORKERS",
                "0",
                "SOLVER.IMS_PER_BATCH",
                "4",
                "SEED",
                "1",
            ]
        )
        loader = build_classification_train_loader(cfg)
        it = iter(loader)
        for _ in range(5):  # 20 samples: every image at least once
            next(it)
        return loader

    def remove(self):
        DatasetCatalog.remove(self.name)
        MetadataCatalog.remove(self.name)


@pytest.fixture
def make(tmp_path):
    made = []

    def _make(layout):
        cls = Detection if layout in ("coco", "voc") else Classification
        made.append(cls(tmp_path / layout, layout))
        return made[-1]

    yield _make
    for d in made:
        d.remove()


def _skipped(loader, reason):
    counts = loader.counts()
    return counts.images[reason], counts.num_images


def _dropped(loader, reason):
    counts = loader.counts()
    return counts.annotations[reason], counts.num_annotations


# ------------------------------------------------------------- faults met reading an image
def _first_image(d):
    return d.image(0) if isinstance(d, Detection) else d.image(0, 0)


def _image_id(d):
    return d.image_id(0) if isinstance(d, Detection) else "n01/0"


@_cases("zero_byte_image")
def test_zero_byte_image(make, reader):
    d = make(reader)
    open(_first_image(d), "wb").close()
    with pytest.raises(
        BadImageError,
        match=rf"{re.escape(_first_image(d))} \(image id {_image_id(d)}\).*"
        r"DATALOADER.ON_BAD_IMAGE skip",
    ):
        d.load("stop")
    assert _skipped(d.load("skip"), "unreadable") == (1, 1)


@_cases("truncated_image")
def test_truncated_image(make, reader):
    d = make(reader)
    path = _first_image(d)
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])
    with pytest.raises(BadImageError, match=rf"{re.escape(path)} \(image id {_image_id(d)}\)"):
        d.load("stop")
    assert _skipped(d.load("skip"), "unreadable") == (1, 1)


@_cases("missing_image")
def test_missing_image(make, reader):
    d = make(reader)
    os.remove(_first_image(d))
    if reader == "imagenet":  # a folder scan lists what exists: a link to a file now gone
        os.symlink(_first_image(d) + ".gone", _first_image(d))
    with pytest.raises(
        MissingImageError, match=rf"{re.escape(_first_image(d))} \(image id {_image_id(d)}\)"
    ):
        d.load("stop")
    assert _skipped(d.load("skip"), "missing") == (1, 1)


@_cases("size_mismatch")
def test_size_mismatch(make, reader):
    d = make(reader)
    d.coco["images"][0]["height"] = H + 10  # COCO height, VOC <size><height>
    d.write()
    with pytest.raises(
        ImageSizeError,
        match=rf"{re.escape(d.image(0))} \(image id {d.image_id(0)}\) is "
        rf"{W}x{H} .* says {W}x{H + 10}; fix",
    ):
        d.load("stop")
    assert _skipped(d.load("skip"), "size mismatch") == (1, 1)


# ---------------------------------------------------------- faults met reading annotations
@_cases("degenerate_box")
@pytest.mark.parametrize("policy", POLICIES)
def test_degenerate_box(make, reader, policy, caplog):
    d = make(reader)
    d.coco["annotations"][0]["bbox"] = [10, 4, -5, 15]  # no width (VOC: xmax < xmin)
    d.write()
    loader = d.load(policy)  # dropped and counted under both policies: the image stays
    assert _dropped(loader, "degenerate box") == (1, 1) and loader.counts().num_images == 0
    assert any("dropped 1 annotation: 1 degenerate box" in r.getMessage() for r in caplog.records)


@_cases("out_of_image_box")
@pytest.mark.parametrize("policy", POLICIES)
def test_out_of_image_box(make, reader, policy):
    d = make(reader)
    d.coco["annotations"][1]["bbox"] = [W + 5, 4, 10, 10]
    d.write()
    assert _dropped(d.load(policy), "outside image") == (1, 1)


@_cases("unknown_category")
def test_unknown_category(make, reader, caplog):
    d = make(reader)
    if reader in ("coco", "voc"):
        d.coco["annotations"][2]["category_id"] = 9  # VOC: the class name "unicorn"
        d.write()
        where = (
            r"annotation id 3 \(image id 3\) has category_id 9"
            if reader == "coco"
            else rf"{re.escape(d.xml(2))} \(image id 000003\): unknown class name 'unicorn'"
        )
        with pytest.raises(DataError, match=where):
            d.load("stop")
        assert _dropped(d.load("skip"), "unknown category") == (1, 1)
        assert any(
            "dropped 1 annotation: 1 unknown category" in r.getMessage() for r in caplog.records
        )
    elif reader == "imagenet":
        d.class_names = ["n01"]  # n02 is a folder of a class the list does not have
        with pytest.raises(DataError, match=r"class folder n02 is not in the class list"):
            d.load("stop")
        assert _skipped(d.load("skip"), "unknown category") == (2, 2)
    else:
        d.write_batch("data_batch_2", [0, 12, 1, 2])
        with pytest.raises(DataError, match=r"data_batch_2/1 has label 12, outside 0\.\.9"):
            d.load("stop")
        assert _skipped(d.load("skip"), "unknown category") == (1, 1)


@_cases("duplicate_image_id")
def test_duplicate_image_id(make, reader):
    d = make(reader)
    if reader == "coco":
        d.coco["images"][1]["id"] = 1  # both entries left out: their annotations are ambiguous
        match, n = r"image id 1 is used by 2 'images' entries", 2
    elif reader == "voc":
        d.split.append(d.ids[0])  # listed twice: the repeat is left out
        match, n = r"image id 000001 is listed twice", 1
    else:
        _jpeg(d.image(0, 0, ".png"), 99)  # 0.JPEG and 0.png: both "n01/0"
        match, n = r"0\.png has the image id n01/0 of another file", 1
    if reader != "imagenet":
        d.write()
    with pytest.raises(DataError, match=match):
        d.load("stop")
    assert _skipped(d.load("skip"), "duplicate id") == (n, n)


@_cases("malformed_annotation_file")
def test_malformed_annotation_file(make, reader):
    d = make(reader)
    path = d.annotation_file()
    text = open(path).read()
    open(path, "w").write(text[:37])
    if reader == "coco":  # one file for every image: always stops, with the position
        for policy in POLICIES:
            with pytest.raises(
                DataError, match=rf"{re.escape(path)} is not valid json: .*line 1 column"
            ):
                d.load(policy)
    else:  # one xml per image: that image
        with pytest.raises(
            DataError, match=rf"{re.escape(path)} \(image id 000001\): not valid xml: .*line 1"
        ):
            d.load("stop")
        assert _skipped(d.load("skip"), "bad annotation") == (1, 1)


@_cases("missing_annotation_file")
def test_missing_annotation_file(make, reader):
    d = make(reader)
    if reader == "voc":
        os.remove(d.xml(1))
        with pytest.raises(
            MissingFileError, match=rf"{re.escape(d.xml(1))} \(image id 000002\) does not exist"
        ):
            d.load("stop")
        assert _skipped(d.load("skip"), "bad annotation") == (1, 1)
        return
    path = d.json_file if reader == "coco" else os.path.join(d.root, "data_batch_3")
    os.remove(path)
    for policy in POLICIES:  # the whole set's file: always stops
        with pytest.raises(MissingFileError, match=rf"{re.escape(path)} does not exist"):
            d.load(policy)


@_cases("empty_dataset")
@pytest.mark.parametrize("policy", POLICIES)
def test_empty_dataset(make, reader, policy):
    d = make(reader)
    if reader == "coco":
        d.coco["images"], d.coco["annotations"] = [], []
        d.write()
    elif reader == "voc":
        d.split = []
        d.write()
    elif reader == "imagenet":
        for c in range(2):
            for i in range(2):
                os.remove(d.image(c, i))
    else:
        for b in [f"data_batch_{i}" for i in range(1, 6)]:
            # Protocol 4: an empty array pickled with protocol 2 names builtins.bytes, which the
            # restricted unpickler refuses.
            d.write_batch(b, [], protocol=4)
    with pytest.raises(DataError, match=rf"{re.escape(d.root)}.*: the dataset has no image"):
        d.load(policy)


@_cases("empty_after_skipping")
def test_empty_after_skipping(make, reader):
    d = make(reader)
    if reader == "coco":
        for img in d.coco["images"]:
            img["id"] = 5
    else:
        for k in range(3):
            os.remove(d.xml(k))
    if reader == "coco":
        d.write()
    with pytest.raises(
        DataError,
        match=r"the dataset has no image after leaving out what was "
        r"bad \(skipped 3 images: 3 ",
    ):
        d.load("skip")


@_cases("hostile_pickle")
@pytest.mark.parametrize("policy", POLICIES)
def test_hostile_pickle(make, reader, policy, tmp_path):
    d = make(reader)
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    d.write_batch("data_batch_1", [0, 1, 2, 3], extra={b"x": Evil()})
    with pytest.raises(DataError, match=r"data_batch_1: not a CIFAR python batch .*refusing"):
        d.load(policy)
    assert not marker.exists()  # refused before anything ran


# ---------------------------------------------------------------- results file and config
@_cases("malformed_results_file")
def test_malformed_results_file(tmp_path, reader):
    path = tmp_path / "results.json"
    path.write_text('[{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.5}')
    with pytest.raises(
        DataError, match=rf"{re.escape(str(path))}.*not valid JSON: .*line 1 column"
    ):
        load_results_file(str(path))
    path.write_text('[{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3], "score": 0.5}]')
    with pytest.raises(DataError, match=rf"{re.escape(str(path))}: entry 0 has bbox \[1, 2, 3\]"):
        load_results_file(str(path))


@_cases("malformed_yaml_config")
def test_malformed_yaml_config(tmp_path, reader):
    path = tmp_path / "cfg.yaml"
    path.write_text("SOLVER:\n  BASE_LR: [0.1\n")
    with pytest.raises(
        ConfigError,
        match=rf"(?s)Cannot parse config file {re.escape(str(path))}:.*line 3, column 1",
    ):
        get_cfg().merge_from_file(str(path))
    path.write_text("MODEL: &m {RESNETS: *m}\n")
    with pytest.raises(ConfigError, match=rf"{re.escape(str(path))}: a value contains itself"):
        get_cfg().merge_from_file(str(path))


# ------------------------------------------------------------------ instance mask faults
def _masked(d):
    """Every COCO annotation of ``d`` with a polygon mask filling its box."""
    for a in d.coco["annotations"]:
        x, y, w, h = a["bbox"]
        a["segmentation"] = [[x, y, x + w, y, x + w, y + h, x, y + h]]


def _mask_fault(d, k, segm, words):
    """Annotation ``k``'s mask replaced by ``segm``: stops naming the json, the annotation and
    image ids (``words`` follow); under skip the annotation is dropped as "bad mask"."""
    _masked(d)
    d.coco["annotations"][k]["segmentation"] = segm
    d.write()
    where = rf"{re.escape(d.json_file)}: annotation id {k + 1} \(image id {k + 1}\) {words}"
    for mask_on in (False, True):  # a bad mask is a fault of the file, masks trained or not
        with pytest.raises(DataError, match=where + r".*DATALOADER.ON_BAD_IMAGE skip"):
            d.load("stop", mask_on=mask_on)
    loader = d.load("skip", mask_on=True)
    assert _dropped(loader, "bad mask") == (1, 1) and loader.counts().num_images == 0


@_cases("short_polygon")
def test_short_polygon(make, reader):
    _mask_fault(
        make(reader),
        1,
        [[5, 4, 25, 4]],
        r"has polygon 0 of 4 numbers \(2 points\); a polygon needs at least 3 points",
    )


@_cases("rle_size_mismatch")
def test_rle_size_mismatch(make, reader):
    from pycocotools import mask as mask_util

    m = np.zeros((H + 10, W), np.uint8)
    m[4:19, 5:25] = 1
    rle = mask_util.encode(np.asfortranarray(m))
    _mask_fault(
        make(reader),
        0,
        {"size": [H + 10, W], "counts": rle["counts"].decode()},
        rf"has an RLE mask of size \[{H + 10}, {W}\] \(\[height, width\]\) on an image "
        rf"of {H}x{W}",
    )


@_cases("crowd_polygon")
def test_crowd_polygon(make, reader):
    d = make(reader)
    d.coco["annotations"][2]["iscrowd"] = 1
    _mask_fault(
        d,
        2,
        [[5, 4, 25, 4, 25, 19, 5, 19]],
        r"is a crowd region \(iscrowd 1\) whose 'segmentation' is polygons; COCO gives "
        r"crowd regions as RLE",
    )


@_cases("missing_mask")
@pytest.mark.parametrize("policy", POLICIES)
def test_missing_mask(make, reader, policy):
    d = make(reader)
    if reader == "voc":  # VOC xml has no masks: the whole set has none, always a stop
        with pytest.raises(
            DataError,
            match=rf"{re.escape(d.root)}: dataset '{d.name}' has no "
            r"instance masks .*MODEL.MASK_ON",
        ):
            d.load(policy, mask_on=True)
        return
    _masked(d)
    del d.coco["annotations"][0]["segmentation"]
    d.write()
    assert d.load(policy).counts().num_images == 0  # boxes alone need no mask
    if policy == "stop":
        with pytest.raises(
            DataError,
            match=rf"{re.escape(d.json_file)}: annotation id 1 of "
            r"image id 1 \(.*000001\.jpg\) has no 'segmentation'",
        ):
            d.load(policy, mask_on=True)
    else:
        assert _skipped(d.load(policy, mask_on=True), "missing mask") == (1, 1)


def test_cases_are_all_run():
    """Every (fault, reader) pair of CASES is a test above: the count in docs/reliability.md
    is the number of cases pytest runs."""
    names = {n[len("test_") :] for n in globals() if n.startswith("test_")}
    assert set(CASES) <= names


# ------------------------------------------------------------------- what a run writes
def test_skipped_data_reaches_the_log_and_metrics_json(make, tmp_path):
    """A detection run under skip with an unreadable image, a size mismatch and a degenerate
    box: metrics.json has the counts by reason, the log a summary line for the dataset (at
    reading) and the totals (after training)."""
    from resnet_det.engine import default_setup
    from resnet_det.engine.detection import DetectionTrainer

    d = make("coco")
    open(d.image(0), "wb").close()
    d.coco["images"][1]["width"] = W + 1
    d.coco["annotations"][2]["bbox"] = [5, 5, 0, 3]
    d.write()
    cfg = get_cfg()
    cfg.merge_from_list(
        [
            "MODEL.RESNETS.DEPTH",
            "18",
            "MODEL.RESNETS.RES2_OUT_CHANNELS",
            "64",
            "MODEL.ROI_HEADS.NUM_CLASSES",
            "2",
            "MODEL.RPN.BATCH_SIZE_PER_IMAGE",
            "32",
            "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE",
            "8",
            "MODEL.RPN.POST_NMS_TOPK_TRAIN",
            "32",
            "MODEL.ANCHOR_GENERATOR.SIZES",
            "[[16, 32]]",
            "MODEL.DEVICE",
            "cpu",
            "DATASETS.TRAIN",
            f"['{d.name}']",
            "DATASETS.TEST",
            "[]",
            "DATALOADER.ON_BAD_IMAGE",
            "skip",
            "DATALOADER.NUM_WORKERS",
            "0",
            "DATALOADER.FILTER_EMPTY_ANNOTATIONS",
            "False",
            "SOLVER.IMS_PER_BATCH",
            "2",
            "SOLVER.MAX_ITER",
            "3",
            "SOLVER.STEPS",
            "[]",
            "SOLVER.BASE_LR",
            "0.001",
            "SOLVER.CHECKPOINT_PERIOD",
            "100",
            "LOG_PERIOD",
            "1",
            "SEED",
            "3",
            "INPUT.MIN_SIZE_TRAIN",
            "(32,)",
            "INPUT.MAX_SIZE_TRAIN",
            "64",
            "OUTPUT_DIR",
            str(tmp_path / "out"),
        ]
    )
    default_setup(cfg)
    trainer = DetectionTrainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()
    rows = [json.loads(line) for line in open(tmp_path / "out" / "metrics.json")]
    last = {k: v for r in rows for k, v in r.items() if k.startswith("data/")}
    # Each bad image once, however often the sampler met it (6 samples of 3 images).
    assert last["data/skipped_images"] == 2
    assert last["data/skipped_images/unreadable"] == last["data/skipped_images/size_mismatch"] == 1
    assert last["data/dropped_annotations"] == last["data/dropped_annotations/degenerate_box"] == 1
    first = next(r for r in rows if "data/skipped_images" in r)
    assert first["iteration"] == 0  # the read-time counts are written with the first step
    log = open(tmp_path / "out" / "log.txt").read()
    assert f"{d.json_file}: dropped 1 annotation: 1 degenerate box" in log
    assert (
        "Training data: skipped 2 images: 1 size mismatch, 1 unreadable; dropped 1 "
        "annotation: 1 degenerate box"
    ) in log
