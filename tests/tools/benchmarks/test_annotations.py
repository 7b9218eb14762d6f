"""The COCO-size annotation rows: the generated file is a valid COCO json of the asked size, and
the rows run at a tiny size (never a time or memory figure asserted)."""

import importlib.util
import json
import sys

import pytest
from pycocotools.coco import COCO

from benchmarks import annotations as bench
from benchmarks.harness import BenchOptions
from resnet_det.data.datasets.coco import load_coco_json

HAS_D2 = importlib.util.find_spec("detectron2") is not None


def test_generated_file_has_coco_train_layout(tmp_path):
    path = bench.write_coco_json(str(tmp_path / "i.json"), num_images=60, num_annotations=437)
    data = json.load(open(path))
    assert len(data["images"]) == 60 and len(data["annotations"]) == 437
    assert len(data["categories"]) == 80
    assert set(data["images"][0]) == {
        "license", "file_name", "coco_url", "height", "width", "date_captured", "flickr_url", "id"
    }  # fmt: skip
    assert set(data["annotations"][0]) == {
        "segmentation", "area", "iscrowd", "image_id", "bbox", "category_id", "id"
    }  # fmt: skip
    assert len({a["id"] for a in data["annotations"]}) == 437
    # Every entry passes every check (under "stop"), and pycocotools decodes its masks.
    dicts = load_coco_json(path, "/img", cache=False)
    assert sum(len(d["annotations"]) for d in dicts) == 437
    api = COCO(path)
    crowd = [a for a in data["annotations"] if a["iscrowd"]]
    for a in data["annotations"][:20] + crowd[:3]:
        assert api.annToMask(a).sum() > 0


def test_loads_run_in_a_fresh_named_interpreter(tmp_path):
    path = bench.write_coco_json(str(tmp_path / "i.json"), num_images=30, num_annotations=90)
    r = bench._in_child("ours", path, python=sys.executable)
    assert r["images"] == 30 and r["peak"] >= r["imported"] > 0 and r["wall"] > 0
    assert bench.has_detectron2(sys.executable) == HAS_D2
    assert not bench.has_detectron2(str(tmp_path / "no-such-python"))
    with pytest.raises(RuntimeError, match="the ours load .* exited with status"):
        bench._in_child("ours", str(tmp_path / "missing.json"), python=sys.executable)


def _rows(tmp_path, ranks):
    rows = bench.annotation_rows(
        str(tmp_path),
        BenchOptions(repetitions=1, warmup=0),
        num_images=40,
        num_annotations=300,
        ranks=ranks,
    )
    assert [r.row for r in rows] == [
        "COCO train annotations load",
        "COCO train annotations load, peak RSS",
        "COCO train annotations cached load",
        f"COCO train set on {ranks} ranks, peak PSS",
    ]
    for r in rows[:3]:
        if HAS_D2:
            assert r.ours > 0 and r.peer > 0 and r.ratio == pytest.approx(r.ours / r.peer)
        else:
            assert r.ours is None and "detectron2" in r.note
    assert rows[3].ours > 0 and rows[3].peer > 0 and rows[3].extra["ours_steady_gb"] > 0


def test_rows_run_at_a_tiny_size(tmp_path):
    _rows(tmp_path, ranks=1)


@pytest.mark.slow
def test_rows_run_on_two_ranks(tmp_path):
    _rows(tmp_path, ranks=2)
