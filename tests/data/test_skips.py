"""resnet_det.data.skips: the policy a reader applies to a fault, the counts and their
summary line and metrics.json keys, and the counting of images skipped while loading
(including through loader worker processes)."""

import itertools
import logging
import pickle

import pytest
import torch

from resnet_det.data.detection.build import MappedBatch, build_test_loader, build_train_loader
from resnet_det.data.detection.mapper import DatasetMapper
from resnet_det.data.skips import (
    FaultPolicy,
    SkipCountingLoader,
    SkipCounts,
    SkippedImage,
    skipped_in_batch,
)
from resnet_det.utils.errors import DataError, MissingFileError


def test_counts_summary_and_scalars():
    c = SkipCounts()
    assert not c and c.summary() == ""
    c.add_image("unreadable", 3)
    c.add_image("size mismatch", 2)
    c.add_annotation("degenerate box")
    assert c and (c.num_images, c.num_annotations) == (5, 1)
    assert c.summary() == (
        "skipped 5 images: 3 unreadable, 2 size mismatch; dropped 1 annotation: 1 degenerate box"
    )
    assert c.scalars() == {
        "data/skipped_images": 5,
        "data/skipped_images/unreadable": 3,
        "data/skipped_images/size_mismatch": 2,
        "data/dropped_annotations": 1,
        "data/dropped_annotations/degenerate_box": 1,
    }
    total = SkipCounts().merge(c).merge(c)
    assert total.images["unreadable"] == 6 and total.num_annotations == 2


def test_policy_stop_raises_naming_source_and_fix_skip_counts(caplog):
    stop = FaultPolicy("/d/x.json", "stop")
    with pytest.raises(
        DataError,
        match=r"^/d/x\.json: image id 4 is bad; fix it, or set "
        r"DATALOADER\.ON_BAD_IMAGE skip",
    ):
        stop.image("bad annotation", "image id 4 is bad", image_id=4, fix="fix it")
    with pytest.raises(MissingFileError):
        stop.image("bad annotation", "gone", error=MissingFileError)
    stop.drop("degenerate box", image_id=4)  # never raises
    assert stop.counts.annotations["degenerate box"] == 1

    into = SkipCounts()
    skip = FaultPolicy("/d/x.json", "skip", into)
    skip.image("duplicate id", "two of 4", image_id=4)
    skip.annotation("unknown category", "cat 9", image_id=5)
    assert not into  # added at finish, once
    with caplog.at_level(logging.WARNING):
        skip.finish(num_images=3)
    assert into.images["duplicate id"] == 1 and into.annotations["unknown category"] == 1
    (line,) = [r.getMessage() for r in caplog.records]
    assert line == (
        "/d/x.json: skipped 1 image: 1 duplicate id; dropped 1 annotation: "
        "1 unknown category (DATALOADER.ON_BAD_IMAGE=skip; image ids 4, 5)"
    )
    with pytest.raises(ValueError, match="on_bad_image"):
        FaultPolicy("x", "ignore")


def test_an_empty_dataset_always_stops():
    with pytest.raises(DataError, match=r"^/d: the dataset has no image; check"):
        FaultPolicy("/d", "skip").finish(0)
    p = FaultPolicy("/d", "skip")
    p.image("missing", "gone")
    with pytest.raises(
        DataError,
        match=r"no image after leaving out what was bad \(skipped 1 "
        r"image: 1 missing\)",
    ):
        p.finish(0)


def test_loader_counts_each_image_once_and_events_each_time():
    bad = SkippedImage("unreadable", "/a.jpg", 1)
    batches = [
        MappedBatch([{"x": 1}], [bad]),
        MappedBatch([{"x": 2}, {"x": 3}]),
        MappedBatch([{"x": 4}], [bad, SkippedImage("missing", "/b.jpg", 2)]),
        {"label": torch.tensor([1, 2]), "skipped": ["/c.jpg"]},
    ]  # an old-style path
    read = SkipCounts()
    read.add_annotation("degenerate box", 2)
    loader = SkipCountingLoader(batches, read)
    assert list(loader) == batches and len(loader) == 4
    assert (loader.num_skipped, loader.num_images) == (4, 6)
    c = loader.counts()
    assert dict(c.images) == {"unreadable": 2, "missing": 1}  # /a.jpg once, /c.jpg
    assert c.annotations["degenerate box"] == 2 and read.num_images == 0  # not modified
    assert skipped_in_batch([{"x": 1}]) == []


def test_mapped_batch_keeps_skipped_through_pickle():
    b = MappedBatch([{"a": 1}], [SkippedImage("missing", "/x.jpg", 7)])
    again = pickle.loads(pickle.dumps(b))
    assert again == [{"a": 1}] and again.skipped == b.skipped and isinstance(again, list)


@pytest.fixture
def images(tmp_path):
    from PIL import Image

    dicts = []
    for i in range(4):
        path = tmp_path / f"{i}.png"
        Image.new("RGB", (32, 24), (50 * i, 10, 10)).save(path)
        dicts.append(
            {
                "file_name": str(path),
                "image_id": i,
                "height": 24,
                "width": 32,
                "annotations": [{"bbox": [1.0, 1.0, 9.0, 9.0], "category_id": 0, "iscrowd": 0}],
            }
        )
    dicts[1] = dict(dicts[1], file_name=str(tmp_path / "gone.png"))
    dicts[2] = dict(dicts[2], height=25)
    return dicts


@pytest.mark.parametrize("num_workers", [0, 2])
def test_train_loader_batches_carry_what_was_skipped(images, num_workers):
    mapper = DatasetMapper(
        is_train=True, min_size_train=(24,), max_size_train=64, on_bad_image="skip"
    )
    loader = SkipCountingLoader(
        build_train_loader(
            images,
            mapper=mapper,
            total_batch_size=2,
            seed=0,
            aspect_ratio_grouping=False,
            num_workers=num_workers,
        )
    )
    batches = list(itertools.islice(iter(loader), 6))
    assert all(len(b) == 2 and all("skipped" not in d for d in b) for b in batches)
    assert {d["image_id"] for b in batches for d in b} == {0, 3}
    # In the main process, from the workers too: both bad images, by reason, once each.
    assert dict(loader.counts().images) == {"missing": 1, "size mismatch": 1}
    assert loader.num_skipped >= 2


def test_test_loader_counts_and_logs_what_it_left_out(images, caplog):
    mapper = DatasetMapper(is_train=False, min_size_test=24, on_bad_image="skip")
    loader = build_test_loader(images, mapper=mapper, batch_size=2, name="my_val")
    with caplog.at_level(logging.WARNING):
        ids = [d["image_id"] for b in loader for d in b]
    assert ids == [0, 3]
    assert dict(loader.skip_counts.images) == {"missing": 1, "size mismatch": 1}
    assert any(
        r.getMessage() == "Evaluating my_val: skipped 2 images: 1 missing, 1 size "
        "mismatch (DATALOADER.ON_BAD_IMAGE=skip)"
        for r in caplog.records
    )


def test_every_reason_is_in_the_bad_data_table():
    """docs/datasets.md "Bad data" lists what each reason counts (a custom mapper's None,
    "other", aside)."""
    import os
    import re

    from resnet_det.data.skips import ANNOTATION_REASONS, IMAGE_REASONS

    doc = open(os.path.join(os.path.dirname(__file__), "..", "..", "docs", "datasets.md")).read()
    table = doc.split("## Bad data", 1)[1]
    named = set(re.findall(r"`([a-z ]+)`", table))
    assert set(IMAGE_REASONS) - {"other"} <= named and set(ANNOTATION_REASONS) <= named
