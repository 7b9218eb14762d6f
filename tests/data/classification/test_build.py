"""The classification training stream and loaders: determinism across workers, resume offsets,
process shards, SEED < 0 resolved and recorded, config errors that name the key."""

import itertools
import os

import pytest
import torch

from resnet_det.config import ConfigError, get_cfg
from resnet_det.data.classification import (
    build_classification_train_loader,
    build_classification_transform,
    classification_test_loader,
    classification_train_loader,
)
from resnet_det.data.datasets.digits import load_digits_split
from resnet_det.data.samplers import TrainingSampler

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "..")


def _batches(loader, n):
    it = iter(loader)
    return [next(it) for _ in range(n)]


def _loader(dicts, **kw):
    t = build_classification_transform(is_train=True, crop_size=32, pad=4, flip_prob=0.5)
    return classification_train_loader(dicts, transform=t, seed=7, **kw)


def test_stream_deterministic_across_workers_and_resume():
    dicts = load_digits_split("test")  # 297 images: batches cross epoch boundaries
    ref = _batches(_loader(dicts, global_batch_size=64, num_workers=0), 6)
    two = _batches(_loader(dicts, global_batch_size=64, num_workers=2), 6)
    resumed = _batches(_loader(dicts, global_batch_size=64, num_workers=0, start_iter=4), 2)
    for a, b in zip(ref, two):
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])
    for a, b in zip(ref[4:], resumed):
        assert torch.equal(a["image"], b["image"]) and a["image_id"] == b["image_id"]
    # Each epoch visits every image once.
    first_epoch = [i for b in ref for i in b["image_id"]][:297]
    assert sorted(first_epoch) == sorted(d["image_id"] for d in dicts)
    assert not torch.equal(ref[0]["image"], ref[1]["image"])


def test_stream_is_the_shared_training_sampler():
    # Detection and classification draw their order from the same TrainingSampler stream.
    dicts = load_digits_split("test")
    ref = _batches(_loader(dicts, global_batch_size=50), 8)
    order = list(itertools.islice(TrainingSampler(len(dicts), seed=7), 400))
    assert [i for b in ref for i in b["image_id"]] == [dicts[i]["image_id"] for i in order]


def test_process_shards_make_up_the_global_batch():
    dicts = load_digits_split("test")
    full = _batches(_loader(dicts, global_batch_size=8), 3)
    r0 = _batches(_loader(dicts, global_batch_size=8, rank=0, world_size=2), 3)
    r1 = _batches(_loader(dicts, global_batch_size=8, rank=1, world_size=2), 3)
    # Rank r takes the global positions r, r + 2, ... of each global batch.
    for f, a, b in zip(full, r0, r1):
        assert torch.equal(f["image"][0::2], a["image"])
        assert torch.equal(f["image"][1::2], b["image"])
    with pytest.raises(ValueError, match="IMS_PER_BATCH"):
        _loader(dicts, global_batch_size=7, world_size=2)


def test_test_loader_shards_cover_the_set_in_order():
    dicts = load_digits_split("test")
    t = build_classification_transform(is_train=False, crop_size=16)
    ids = [
        i
        for b in classification_test_loader(dicts, transform=t, batch_size=64)
        for i in b["image_id"]
    ]
    assert ids == [d["image_id"] for d in dicts]
    shards = [
        [
            i
            for b in classification_test_loader(
                dicts, transform=t, batch_size=64, rank=r, world_size=2
            )
            for i in b["image_id"]
        ]
        for r in range(2)
    ]
    assert shards[0] + shards[1] == ids and len(shards[0]) - len(shards[1]) == 1


def _digits_cfg(*opts):
    cfg = get_cfg()
    cfg.merge_from_file(os.path.join(ROOT, "configs", "digits", "resnet20.yaml"))
    cfg.merge_from_list(["SOLVER.IMS_PER_BATCH", "16", *opts])
    return cfg


def test_negative_seed_is_resolved_into_the_config():
    cfg = _digits_cfg("SEED", "-1")
    first = next(iter(build_classification_train_loader(cfg)))
    assert cfg.SEED >= 0
    # The recorded seed reproduces the stream (as OUTPUT_DIR/config.yaml would).
    again = next(iter(build_classification_train_loader(_digits_cfg("SEED", str(cfg.SEED)))))
    assert torch.equal(first["image"], again["image"])
    assert first["image_id"] == again["image_id"]


def test_config_errors_name_the_key():
    for key, value, match in (
        ("INPUT.CLS.SCALE_RANGE", "[480, 256]", "INPUT.CLS.SCALE_RANGE"),
        ("TEST.CLS_MODES", "['center', '12crop']", "12crop"),
        ("INPUT.CLS.TEST_RESIZE", "8", "INPUT.CLS.TEST_RESIZE"),
        ("MODEL.CLASSIFIER.NUM_CLASSES", "5", "NUM_CLASSES"),
        ("DATALOADER.ON_BAD_IMAGE", "ignore", "DATALOADER.ON_BAD_IMAGE"),
    ):
        with pytest.raises(ConfigError, match=match):
            build_classification_train_loader(_digits_cfg(key, value))


def test_decode_device_from_the_config_gives_the_same_batches():
    # The digits are in memory: the main process augments their pixels (no file to decode).
    ref = iter(build_classification_train_loader(_digits_cfg("SEED", "3")))
    dev = iter(
        build_classification_train_loader(_digits_cfg("SEED", "3", "INPUT.DECODE_DEVICE", "cpu"))
    )
    for _ in range(3):
        a, b = next(ref), next(dev)
        assert a["image_id"] == b["image_id"] and torch.equal(a["image"], b["image"])
    with pytest.raises(ConfigError, match="INPUT.DECODE_DEVICE"):
        build_classification_train_loader(_digits_cfg("INPUT.DECODE_DEVICE", "gpu"))


def test_serialized_sets_stay_serialized():
    from resnet_det.data.catalog import DatasetCatalog
    from resnet_det.data.classification.build import get_classification_dicts
    from resnet_det.data.serialized import SerializedDicts

    dicts = [{"file_name": f"{i}.jpg", "image_id": i, "label": i % 3} for i in range(5)]
    names = ["test_cls_serialized_a", "test_cls_serialized_b"]
    DatasetCatalog.register(names[0], lambda: SerializedDicts.from_dicts(dicts))
    DatasetCatalog.register(names[1], lambda: SerializedDicts.from_dicts(dicts[:2]))
    try:
        both = get_classification_dicts(names)
        assert isinstance(both, SerializedDicts) and both == dicts + dicts[:2]
    finally:
        for n in names:
            DatasetCatalog.remove(n)
