"""The parsed-dataset cache: same result as a parse, keyed by the file's content, damaged
files parsed again (never executed), one parse per machine, shared by the ranks."""

import json
import logging
import os
import pickle
import sys

import pytest

from resnet_det.data import dataset_cache
from resnet_det.data.catalog import MetadataCatalog
from resnet_det.data.datasets import coco
from resnet_det.data.datasets.coco import load_coco_json
from resnet_det.data.serialized import SerializedWriter, open_serialized
from resnet_det.data.skips import SkipCounts
from resnet_det.engine import launch
from resnet_det.utils.errors import DataError
from resnet_det.utils.file_io import atomic_open

sys.path.insert(0, os.path.dirname(__file__))  # spawned children import data_workers by name
import data_workers  # noqa: E402


def _coco(num_images=12, bad=True):
    images = [
        {"id": i, "file_name": f"{i:04d}.jpg", "height": 60 + i, "width": 80}
        for i in range(1, num_images + 1)
    ]
    anns = []
    for img in images:
        for k in range(3):
            x = 5.0 * k
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": img["id"],
                    "category_id": [3, 7][k % 2],
                    "bbox": [x, 4.0, 20.5, 10.0],
                    "iscrowd": 0,
                    "segmentation": [[x, 4.0, x + 20, 4.0, x + 20, 14.0]],
                }
            )
    if bad:
        anns[1]["category_id"] = 99  # unknown category: stops under "stop", dropped under "skip"
        anns[4]["bbox"] = [1, 1, 0, 5]  # degenerate: dropped under both
        anns[7]["bbox"] = [70, 4, 30, 10]  # partly outside: clipped
    cats = [{"id": 3, "name": "cat"}, {"id": 7, "name": "dog"}]
    return {"images": images, "annotations": anns, "categories": cats}


@pytest.fixture
def json_file(tmp_path):
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(_coco()))
    return str(path)


@pytest.fixture
def parses(count_calls):
    return count_calls(coco, "_read")


def _load(json_file, policy="skip", name=None, caplog=None):
    counts = SkipCounts()
    if caplog is not None:
        caplog.clear()
    dicts = load_coco_json(
        json_file, "/img", name, on_bad_image=policy, skip_counts=counts, cache=True
    )
    warnings = (
        [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] if caplog else []
    )
    return dicts, counts, warnings


def test_cached_load_is_the_parse_with_the_same_counts(json_file, parses, caplog):
    with caplog.at_level(logging.INFO):
        first, counts1, warn1 = _load(json_file, caplog=caplog)
        assert parses["n"] == 1 and os.path.isfile(json_file + ".resnet_det.cache")
        again, counts2, warn2 = _load(json_file, name="cache_meta_test", caplog=caplog)
    try:
        assert parses["n"] == 1  # read from the cache
        assert again == first and again == load_coco_json(
            json_file, "/img", on_bad_image="skip", cache=False
        )
        assert first.paths == [json_file + ".resnet_det.cache"]
        assert counts1.images == counts2.images and counts1.annotations == counts2.annotations
        assert counts2.annotations == {"unknown category": 1, "degenerate box": 1}
        assert warn1 == warn2 and len(warn2) == 1  # the same summary line, ids included
        meta = MetadataCatalog.get("cache_meta_test")
        assert meta.thing_classes == ["cat", "dog"]
        assert meta.thing_dataset_id_to_contiguous_id == {3: 0, 7: 1}
        # Under "stop" the cached load raises the parse's first fault, word for word.
        with pytest.raises(DataError) as cached_error:
            load_coco_json(json_file, "/img", cache=True)
        with pytest.raises(DataError) as parsed_error:
            load_coco_json(json_file, "/img", cache=False)
        assert str(cached_error.value) == str(parsed_error.value)
        assert "category_id 99" in str(cached_error.value)
    finally:
        MetadataCatalog.remove("cache_meta_test")


def test_a_changed_file_is_parsed_again(json_file, parses, caplog):
    _load(json_file)
    st = os.stat(json_file)
    # Same size and modified time, another byte: the content hash tells.
    text = open(json_file).read().replace('"cat"', '"cow"')
    open(json_file, "w").write(text)
    os.utime(json_file, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.path.getsize(json_file) == st.st_size
    with caplog.at_level(logging.INFO):
        _load(json_file, name="cache_changed_test")
    try:
        assert parses["n"] == 2 and MetadataCatalog.get("cache_changed_test").thing_classes == [
            "cow",
            "dog",
        ]
        assert any("changed since" in r.getMessage() for r in caplog.records)
        # Another size.
        data = _coco()
        data["images"].append({"id": 99, "file_name": "x.jpg", "height": 5, "width": 5})
        open(json_file, "w").write(json.dumps(data))
        dicts, _, _ = _load(json_file)
        assert parses["n"] == 3 and dicts[-1]["image_id"] == 99
    finally:
        MetadataCatalog.remove("cache_changed_test")


def test_same_content_new_time_reuses_the_parse(json_file, parses, caplog):
    first, _, _ = _load(json_file)
    st = os.stat(json_file)
    os.utime(json_file, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched
    with caplog.at_level(logging.INFO):
        again, _, _ = _load(json_file)
    assert parses["n"] == 1 and again == first
    assert any(
        "content" in r.getMessage() and "is the same" in r.getMessage() for r in caplog.records
    )


class _Marker:
    """Unpickling it creates the file ``path``."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def _damage(cache, how):
    raw = bytearray(open(cache, "rb").read())
    if how == "flip":
        raw[len(raw) // 3] ^= 0x01
    elif how == "truncate":
        raw = raw[: len(raw) // 2]
    elif how == "empty":
        raw = bytearray()
    elif how == "pickle":  # a pickle that would create a file next to the cache
        raw = bytearray(pickle.dumps(_Marker(cache + ".unpickled")))
    open(cache, "wb").write(bytes(raw))


@pytest.mark.parametrize("how", ["flip", "truncate", "empty", "pickle"])
def test_damaged_cache_is_parsed_again_with_a_warning(json_file, parses, caplog, how):
    first, _, _ = _load(json_file)
    cache = first.paths[0]
    del first
    _damage(cache, how)
    with caplog.at_level(logging.WARNING):
        again, _, _ = _load(json_file)
    assert parses["n"] == 2 and not os.path.exists(cache + ".unpickled")
    assert any(
        cache in r.getMessage() and "cannot be used" in r.getMessage() for r in caplog.records
    )
    # Rewritten: the next load maps it.
    third, _, _ = _load(json_file)
    assert parses["n"] == 2 and third == again


def test_malformed_metadata_is_parsed_again(json_file, parses, caplog):
    """A cache whose records and hashes are in order but whose reader metadata is not what the
    reader writes (a file made by hand) is not trusted."""
    first, _, _ = _load(json_file)
    cache = first.paths[0]
    _, header = open_serialized(cache)
    meta = header["meta"]
    meta["reader"]["thing_classes"] = "cat"
    with atomic_open(cache, "wb") as f:
        writer = SerializedWriter(f)
        for d in first:
            writer.add(dict(d, file_name=os.path.basename(d["file_name"])), (1, 1, 1, 0))
        writer.finish(meta)
    with caplog.at_level(logging.WARNING):
        again, _, _ = _load(json_file)
    assert parses["n"] == 2 and again == first
    assert any("thing_classes" in r.getMessage() for r in caplog.records)


def test_where_the_cache_goes(json_file, tmp_path, monkeypatch, caplog):
    folder = tmp_path / "caches"
    monkeypatch.setenv(dataset_cache.CACHE_ENV, str(folder))
    first, _, _ = _load(json_file)
    assert os.path.dirname(first.paths[0]) == str(folder) and not os.path.exists(
        json_file + ".resnet_det.cache"
    )
    monkeypatch.setenv(dataset_cache.CACHE_ENV, "off")
    assert _load(json_file)[0].paths == []
    # An annotation folder that is not writable: the user's cache folder, said in the log.
    monkeypatch.delenv(dataset_cache.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(dataset_cache.os, "access", lambda path, mode: False)
    with caplog.at_level(logging.INFO):
        dicts, _, _ = _load(json_file)
    assert dicts.paths[0].startswith(str(tmp_path / "xdg" / "resnet_det") + os.sep)
    assert any("not writable" in r.getMessage() for r in caplog.records)
    # Small files are parsed each time unless asked for.
    monkeypatch.setattr(dataset_cache, "MIN_BYTES", os.path.getsize(json_file) + 1)
    assert load_coco_json(json_file, "/img", on_bad_image="skip").paths == []


@pytest.mark.timeout(300)
def test_four_gloo_ranks_share_one_parse_and_one_copy(tmp_path):
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(_coco(num_images=40)))
    out = tmp_path / "out"
    out.mkdir()
    launch(
        data_workers.gloo_rank,
        4,
        args=(str(path), "shared_copy_test", str(out)),
        backend="gloo",
        device="cpu",
    )
    reports = [json.load(open(out / f"rank{r}.json")) for r in range(4)]
    assert sum(r["parses"] for r in reports) == 1  # one parse on the machine
    assert len({r["digest"] for r in reports}) == 1  # every rank sees the same records
    assert {r["num_images"] for r in reports} == {40}
    # Each rank maps the one cache file (the page cache holds one copy for all), and the
    # loader keeps those records instead of copying them.
    assert all(r["maps_cache"] and r["dataset_is_shared"] for r in reports)
    assert len({r["cache"] for r in reports}) == 1
