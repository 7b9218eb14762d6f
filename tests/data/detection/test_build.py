import itertools
import json
import os
import shutil

import pytest
import torch

from resnet_det.config import ConfigError, get_cfg
from resnet_det.data.catalog import DatasetCatalog, MetadataCatalog
from resnet_det.data.datasets.builtin import register_coco_instances
from resnet_det.data.datasets.coco import load_coco_json
from resnet_det.data.datasets.shapes import write_shapes_datasets
from resnet_det.data.detection.build import (
    build_detection_test_loader,
    build_detection_train_loader,
    build_test_loader,
    build_train_loader,
    get_detection_dataset_dicts,
)
from resnet_det.data.detection.mapper import DatasetMapper
from resnet_det.data.io import MissingImageError
from resnet_det.data.skips import SkipCounts
from resnet_det.utils.errors import DataError, UserKeyError

NAME = "test_build_tiny_shapes"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("tiny_shapes"))
    write_shapes_datasets(root, None, seed=1, num_train=12, num_val=5)
    for split in ("train", "val"):
        register_coco_instances(
            f"{NAME}_{split}", {}, f"{root}/annotations/instances_{split}.json", f"{root}/{split}"
        )
    yield root
    for split in ("train", "val"):
        DatasetCatalog.remove(f"{NAME}_{split}")
        MetadataCatalog.remove(f"{NAME}_{split}")


def _mapper(**kw):
    return DatasetMapper(
        is_train=True, min_size_train=(64, 80), max_size_train=128, flip_prob=0.5, **kw
    )


def _batches(loader, n):
    return list(itertools.islice(iter(loader), n))


def _key(batches):
    return [
        [(d["image_id"], d["image"].sum().item(), d["boxes"].tolist()) for d in b] for b in batches
    ]


def _dicts(root):
    return load_coco_json(f"{root}/annotations/instances_train.json", f"{root}/train")


def test_train_loader_yields_contract_dicts(tiny):
    loader = build_train_loader(_dicts(tiny), mapper=_mapper(), total_batch_size=4, seed=0)
    batches = _batches(loader, 3)
    for batch in batches:
        assert isinstance(batch, list) and len(batch) == 4
        # Aspect-ratio grouping: one orientation per batch.
        assert len({d["width"] > d["height"] for d in batch}) == 1
        for d in batch:
            img = d["image"]
            assert img.dtype == torch.uint8 and img.dim() == 3 and img.shape[0] == 3
            assert min(img.shape[1:]) in (64, 80) or max(img.shape[1:]) == 128
            assert d["boxes"].shape == (len(d["labels"]), 4) and d["labels"].dtype == torch.int64
            assert (d["boxes"][:, 2] <= img.shape[2] + 1e-4).all()
            assert (d["boxes"][:, 3] <= img.shape[1] + 1e-4).all()
            assert {"image_id", "height", "width", "file_name"} <= set(d)


def test_batches_do_not_depend_on_workers_and_resume(tiny):
    dicts = _dicts(tiny)
    kw = dict(mapper=_mapper(), total_batch_size=2, seed=5)
    ref = _key(_batches(build_train_loader(dicts, num_workers=0, **kw), 8))
    assert _key(_batches(build_train_loader(dicts, num_workers=2, **kw), 8)) == ref
    assert _key(_batches(build_train_loader(dicts, start_iter=5, **kw), 3)) == ref[5:]
    other = _key(
        _batches(build_train_loader(dicts, mapper=_mapper(), total_batch_size=2, seed=6), 8)
    )
    assert other != ref


def test_ranks_get_their_share(tiny):
    dicts = _dicts(tiny)
    kw = dict(mapper=_mapper(), total_batch_size=4, seed=0, aspect_ratio_grouping=False)
    single = _key(_batches(build_train_loader(dicts, **kw), 4))
    per_rank = [
        _key(_batches(build_train_loader(dicts, rank=r, world_size=2, **kw), 8)) for r in range(2)
    ]
    for r in range(2):
        assert all(len(b) == 2 for b in per_rank[r])
    # Without grouping, rank r's stream is positions r, r+2, ... of the single-process stream.
    flat = [x for b in single for x in b]
    for r in range(2):
        assert [x for b in per_rank[r] for x in b][:8] == flat[r::2][:8]
    with pytest.raises(ValueError, match="multiple of the number of processes"):
        build_train_loader(
            dicts, mapper=_mapper(), total_batch_size=3, seed=0, rank=0, world_size=2
        )


def test_skip_bad_images_draws_others(tiny, tmp_path):
    dicts = _dicts(tiny)
    bad = dict(dicts[0], file_name=str(tmp_path / "missing.jpg"))
    dicts = [bad] + dicts[1:]
    mapper = _mapper(on_bad_image="skip")
    loader = build_train_loader(
        dicts, mapper=mapper, total_batch_size=2, seed=0, aspect_ratio_grouping=False, shuffle=False
    )
    batches = _batches(loader, 3)
    assert all(len(b) == 2 for b in batches)
    assert all(d["file_name"] != bad["file_name"] for b in batches for d in b)
    assert mapper.num_skipped >= 1
    again = _batches(
        build_train_loader(
            dicts,
            mapper=_mapper(on_bad_image="skip"),
            total_batch_size=2,
            seed=0,
            shuffle=False,
            aspect_ratio_grouping=False,
        ),
        3,
    )
    assert _key(again) == _key(batches)
    stop = build_train_loader(
        dicts,
        mapper=_mapper(),
        total_batch_size=2,
        seed=0,
        aspect_ratio_grouping=False,
        shuffle=False,
    )
    with pytest.raises(MissingImageError, match=r"missing\.jpg.*image id 1\b"):
        _batches(stop, 1)


def test_test_loader_order_shards_and_skip(tiny, tmp_path):
    dicts = load_coco_json(f"{tiny}/annotations/instances_val.json", f"{tiny}/val")
    mapper = DatasetMapper(is_train=False, min_size_test=32, max_size_test=64)
    ids = [d["image_id"] for b in build_test_loader(dicts, mapper=mapper, batch_size=2) for d in b]
    assert ids == [d["image_id"] for d in dicts]
    shards = [
        [
            d["image_id"]
            for b in build_test_loader(dicts, mapper=mapper, rank=r, world_size=2)
            for d in b
        ]
        for r in range(2)
    ]
    assert shards[0] + shards[1] == ids and len(shards[0]) == 3
    broken = [dict(dicts[0], file_name=str(tmp_path / "gone.jpg"))] + dicts[1:]
    skip = DatasetMapper(is_train=False, min_size_test=32, on_bad_image="skip")
    loader = build_test_loader(broken, mapper=skip)
    got = [d["image_id"] for b in loader for d in b]
    assert got == ids[1:] and skip.num_skipped == 1 and len(loader) == len(ids)


def _cfg(seed=0):
    cfg = get_cfg()
    cfg.DATASETS.TRAIN = (f"{NAME}_train",)
    cfg.INPUT.MIN_SIZE_TRAIN = (64,)
    cfg.INPUT.MAX_SIZE_TRAIN = 96
    cfg.INPUT.MIN_SIZE_TEST = 48
    cfg.SOLVER.IMS_PER_BATCH = 3
    cfg.DATALOADER.NUM_WORKERS = 0
    cfg.SEED = seed
    return cfg


def test_negative_seed_is_resolved_into_the_config(tiny):
    cfg = _cfg(seed=-1)
    cfg.freeze()
    first = _key(_batches(build_detection_train_loader(cfg), 3))
    assert cfg.SEED >= 0 and cfg.is_frozen()
    # The recorded seed (what OUTPUT_DIR/config.yaml saves) reproduces the data stream.
    assert _key(_batches(build_detection_train_loader(_cfg(seed=cfg.SEED)), 3)) == first


def test_cfg_builders(tiny):
    cfg = _cfg()
    batch = next(iter(build_detection_train_loader(cfg)))
    assert len(batch) == 3 and all(
        min(d["image"].shape[1:]) == 64 or max(d["image"].shape[1:]) == 96 for d in batch
    )
    resumed = next(iter(build_detection_train_loader(cfg, start_iter=2)))
    ref = _batches(build_detection_train_loader(cfg), 3)[2]
    assert [d["image_id"] for d in resumed] == [d["image_id"] for d in ref]
    test = build_detection_test_loader(cfg, f"{NAME}_val")
    first = next(iter(test))[0]
    assert min(first["image"].shape[1:]) == 48 and "boxes" not in first
    cfg.DATALOADER.SAMPLER_TRAIN = "RepeatFactorTrainingSampler"
    with pytest.raises(ConfigError, match="DATALOADER.SAMPLER_TRAIN"):
        build_detection_train_loader(cfg)


def test_dataset_dicts_filter_and_errors(tiny, tmp_path):
    names = [f"{NAME}_train", f"{NAME}_val"]
    all_dicts = get_detection_dataset_dicts(names, filter_empty=False)
    assert len(all_dicts) == 17
    with pytest.raises(UserKeyError, match="did you mean"):
        get_detection_dataset_dicts([f"{NAME}_trian"])
    with pytest.raises(ConfigError, match="no dataset"):
        get_detection_dataset_dicts([])
    # An image without annotations is dropped by the filter, kept without it.
    root = str(tmp_path / "copy")
    shutil.copytree(tiny, root)
    import json

    path = f"{root}/annotations/instances_train.json"
    data = json.load(open(path))
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] != 1]
    json.dump(data, open(path, "w"))
    register_coco_instances("test_build_filter", {}, path, f"{root}/train")
    try:
        assert len(get_detection_dataset_dicts(["test_build_filter"], filter_empty=False)) == 12
        kept = get_detection_dataset_dicts(["test_build_filter"])
        assert len(kept) == 11 and 1 not in [d["image_id"] for d in kept]
    finally:
        DatasetCatalog.remove("test_build_filter")
        MetadataCatalog.remove("test_build_filter")
    assert os.path.isdir(root)


def test_concatenating_datasets_with_different_classes_is_refused(tiny):
    DatasetCatalog.register(
        "test_build_other_classes",
        lambda: [{"file_name": "x.jpg", "image_id": 1, "height": 2, "width": 2, "annotations": []}],
    )
    MetadataCatalog.get("test_build_other_classes").set(thing_classes=["cat", "dog", "cow"])
    try:
        # Loading the shapes set records its classes (circle, square, triangle).
        with pytest.raises(DataError, match="different thing_classes"):
            get_detection_dataset_dicts([f"{NAME}_train", "test_build_other_classes"])
    finally:
        DatasetCatalog.remove("test_build_other_classes")
        MetadataCatalog.remove("test_build_other_classes")


def test_mask_on_loader_gives_a_mask_per_box(tiny):
    cfg = _cfg()
    cfg.MODEL.MASK_ON = True
    masked = _batches(build_detection_train_loader(cfg), 3)
    plain = _batches(build_detection_train_loader(_cfg()), 3)
    assert _key(masked) == _key(plain)  # same stream, same images and boxes
    for d in (d for b in masked for d in b):
        masks = d["masks"]
        assert masks.dtype == torch.uint8 and masks.shape == (
            len(d["boxes"]),
            *d["image"].shape[1:],
        )
        for m, box in zip(masks, d["boxes"].tolist()):
            ys, xs = torch.nonzero(m, as_tuple=True)
            got = [xs.min().item(), ys.min().item(), xs.max().item() + 1, ys.max().item() + 1]
            assert all(abs(g - b) <= 1.5 for g, b in zip(got, box)), (got, box)


def _register_copy(tiny, tmp_path, name, edit):
    import json

    root = str(tmp_path / name)
    shutil.copytree(tiny, root)
    path = f"{root}/annotations/instances_train.json"
    data = json.load(open(path))
    edit(data)
    json.dump(data, open(path, "w"))
    register_coco_instances(name, {}, path, f"{root}/train")
    return path


def test_mask_on_needs_a_mask_for_every_object(tiny, tmp_path):
    def drop_one(data):
        del data["annotations"][3]["segmentation"]

    def drop_all(data):
        for a in data["annotations"]:
            del a["segmentation"]

    try:
        path = _register_copy(tiny, tmp_path, "test_build_one_mask_less", drop_one)
        ann = json.load(open(path))["annotations"][3]
        with pytest.raises(
            DataError,
            match=rf"{path}: annotation id {ann['id']} of image id "
            rf"{ann['image_id']} \(.*\) has no 'segmentation'",
        ):
            get_detection_dataset_dicts(["test_build_one_mask_less"], mask_on=True)
        counts = SkipCounts()
        kept = get_detection_dataset_dicts(
            ["test_build_one_mask_less"], mask_on=True, on_bad_image="skip", skip_counts=counts
        )
        assert counts.images == {"missing mask": 1} and len(kept) == 11
        assert ann["image_id"] not in [d["image_id"] for d in kept]
        assert len(get_detection_dataset_dicts(["test_build_one_mask_less"])) == 12
        # No mask at all: a set without masks (e.g. VOC) stops under either policy.
        path = _register_copy(tiny, tmp_path, "test_build_no_masks", drop_all)
        with pytest.raises(
            DataError,
            match=rf"{path}: dataset 'test_build_no_masks' has no "
            r"instance masks.*MODEL.MASK_ON",
        ):
            get_detection_dataset_dicts(["test_build_no_masks"], mask_on=True, on_bad_image="skip")
    finally:
        for name in ("test_build_one_mask_less", "test_build_no_masks"):
            if name in DatasetCatalog:
                DatasetCatalog.remove(name)
                MetadataCatalog.remove(name)
