"""The COCO reader's bulk passes decide as the per-entry rules do: the same faults (reason,
message, fix, in file order), the same records, whatever the chunking and the parse."""

import json

import numpy as np
import pytest
from rle_helpers import compressed_rle, rectangle_mask, uncompressed_rle

from resnet_det.data.datasets import coco, coco_entries
from resnet_det.data.datasets.coco import load_coco_json
from resnet_det.data.skips import FaultPolicy, SkipCounts
from resnet_det.utils.errors import DataError
from resnet_det.utils.json_chunks import NotStreamable

H1, W1, H2, W2 = 60, 80, 40, 30  # image 1 and image 2 (height, width)


def _rle(h, w, compressed):
    m = rectangle_mask(5, 15, 3, 12, h, w)
    return compressed_rle(m) if compressed else uncompressed_rle(m)


def _entries(non_object=False):
    """Annotations (field overrides) of every kind the rules tell apart; most on image 1.
    ``non_object``: one entry is not an object (such a file is parsed whole)."""
    tri = [5.0, 5.0, 30.5, 5.0, 30.5, 20.25]
    cases = [
        {},  # valid: polygon of floats
        {"segmentation": [[5, 5, 30, 5, 30, 20]]},  # ints
        {"segmentation": [tri, [40, 40, 50, 40, 50, 50, 41, 52]]},  # two polygons
        {"segmentation": [[5, 5, 30, 5]]},  # 2 points
        {"segmentation": [[5, 5, 30, 5, 30]]},  # odd length
        {"segmentation": [[5, 5, 300, 5, 30, 20]]},  # beyond the image
        {"segmentation": [[-3, 5, 30, 5, 30, 20]]},  # negative coordinate
        {"segmentation": [[5, 5, "30", 5, 30, 20]]},  # a string coordinate
        {"segmentation": [[5, 5, True, 5, 30, 20]]},  # a bool coordinate
        {"segmentation": []},  # no polygon
        {"segmentation": [[]]},  # an empty polygon
        {"segmentation": "mask"},
        {"segmentation": {}},
        {"segmentation": None},
        {"segmentation": _rle(H1, W1, True)},  # compressed RLE
        {"segmentation": _rle(H1, W1, False)},  # uncompressed RLE
        {"segmentation": _rle(40, 40, True)},  # RLE of another size
        {"segmentation": {"size": [H1, W1], "counts": [10, 20]}},  # counts not covering it
        {"segmentation": {"size": [H1, W1], "counts": [-5, H1 * W1 + 5]}},  # negative run
        {"segmentation": {"size": [H1, W1], "counts": 17}},
        {"iscrowd": 1, "segmentation": _rle(H1, W1, False)},  # crowd region as RLE
        {"iscrowd": 1, "segmentation": [tri]},  # crowd region as polygons
        {"iscrowd": 2},
        {"iscrowd": 1.0},
        {"iscrowd": True},
        {"bbox": [1, 2, 3]},
        {"bbox": ["1", 2, 3, 4]},
        {"bbox": [1, 2, True, 4]},
        {"bbox": None},
        {"bbox": [1, 1, 0, 5]},  # degenerate
        {"bbox": [500, 1, 5, 5]},  # outside the image
        {"bbox": [70, 4, 30, 10]},  # partly outside: clipped
        {"bbox": [1.5, 2.25, 10, 4]},
        {"category_id": 99},  # unknown category
        {"category_id": "3"},
        {"image_id": 77},  # unknown image
        {"image_id": 2, "segmentation": [[2, 2, 25, 2, 25, 35]]},  # valid on image 2
        {"image_id": 2, "segmentation": [[2, 2, 35, 2, 25, 35]]},  # beyond image 2's width
        {"image_id": 2, "segmentation": _rle(H1, W1, True)},  # image 1's size on image 2
        {"id": "x"},
        {"id": 1},  # the first entry's id again
    ] + ([5] if non_object else [])
    anns = []
    for k, case in enumerate(cases):
        if not isinstance(case, dict):
            anns.append(case)
            continue
        a = {
            "id": k + 1,
            "image_id": 1,
            "category_id": 3 if k % 2 else 7,
            "bbox": [2.0, 3.0, 20.0, 10.0],
            "iscrowd": 0,
            "segmentation": [tri],
        }
        a.update(case)
        if a["segmentation"] is None and "segmentation" in case:
            a["segmentation"] = None
        anns.append(a)
    return anns


def _file(tmp_path, anns=None, non_object=False):
    data = {
        "images": [
            {"id": 1, "file_name": "a.jpg", "height": H1, "width": W1},
            {"id": 2, "file_name": "b.jpg", "height": H2, "width": W2},
            {"id": 3, "file_name": "c.jpg", "height": 0, "width": W2},  # a bad image entry
        ],
        "annotations": _entries(non_object) if anns is None else anns,
        "categories": [{"id": 3, "name": "cat"}, {"id": 7, "name": "dog"}],
    }
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(data))
    return str(path)


def _per_entry_boxes(self, bboxes):
    """The bbox rule taken entry by entry: four finite numbers (no bool)."""
    out = np.zeros((len(bboxes), 4))
    ok = np.zeros(len(bboxes), dtype=bool)
    for i, b in enumerate(bboxes):
        if type(b) is list and len(b) == 4 and all(coco_entries._is_number(v) for v in b):
            ok[i] = True
            out[i] = [float(v) for v in b]
    return out, ok


def _read(monkeypatch, path, how, policy="skip"):
    """Load ``path`` with the reader as it is ("bulk"), parsed whole ("whole"), in chunks of
    a few entries ("small chunks"), or with the bulk passes vouching for nothing, so that every
    entry goes through the per-entry rules ("per entry"); returns the records, the counts and
    every fault the policy that made the records was told of (a streamed read that meets what
    it cannot stream starts again, parsed whole, with a new policy)."""
    faults = []
    with monkeypatch.context() as m:
        for kind in ("image", "annotation"):
            original = getattr(FaultPolicy, kind)

            def spy(self, reason, message, *, _original=original, _kind=kind, **kw):
                faults.append((self, (_kind, reason, message, kw.get("fix"))))
                return _original(self, reason, message, **kw)

            m.setattr(FaultPolicy, kind, spy)
        if how == "whole":

            def not_streamable(*args, **kwargs):
                raise NotStreamable("asked by the test")

            m.setattr(coco, "_read_streaming", not_streamable)
        elif how == "small chunks":
            m.setattr(coco, "CHUNK_BYTES", 300)
        elif how == "per entry":
            m.setattr(
                coco_entries,
                "polygons_accepted",
                lambda segms, h, w: (np.zeros(len(segms), dtype=bool), None),
            )
            m.setattr(coco_entries, "rles_accepted", lambda segms, h, w: np.zeros(len(segms), bool))
            m.setattr(coco_entries.AnnotationEntries, "_boxes", _per_entry_boxes)
        counts = SkipCounts()
        try:
            dicts = load_coco_json(
                path, "/img", on_bad_image=policy, skip_counts=counts, cache=False
            )
        except DataError as e:
            return str(e), None, faults
    last = [f for p, f in faults if p is faults[-1][0]] if faults else []
    return list(dicts), (counts.summary(), counts.scalars()), last


@pytest.mark.parametrize("non_object", [False, True])
@pytest.mark.parametrize("how", ["whole", "small chunks", "per entry"])
def test_bulk_checks_give_the_per_entry_rules_faults_and_records(
    tmp_path, monkeypatch, count_calls, how, non_object
):
    path = _file(tmp_path, non_object=non_object)
    parsed_whole = count_calls(coco, "_read_whole")
    bulk = _read(monkeypatch, path, "bulk")
    assert parsed_whole["n"] == int(non_object)  # the usual file is streamed
    other = _read(monkeypatch, path, how)
    assert other[2] == bulk[2]  # every fault: kind, reason, message, fix, in file order
    assert other[1] == bulk[1] and other[0] == bulk[0]
    # The file exercises every reason, and most entries are kept.
    reasons = {f[1] for f in bulk[2]}
    assert {"bad mask", "malformed", "unknown image", "unknown category", "duplicate id"} <= reasons
    assert {"bad annotation"} <= {f[1] for f in bulk[2] if f[0] == "image"}
    kept = sum(len(d["annotations"]) for d in bulk[0])
    assert 10 <= kept < len(_entries())
    assert ("malformed" in {f[1] for f in bulk[2] if "not an object" in f[2]}) == non_object


def test_bulk_checks_leave_the_usual_entries_to_numpy(tmp_path, monkeypatch, count_calls):
    # The rule is asked only for what the bulk passes cannot vouch for; and "stop" raises the
    # same first fault as the rules.
    calls = count_calls(coco_entries, "check_segmentation")
    valid = [a for a in _entries()[:3] if isinstance(a, dict)] * 50
    valid = [dict(a, id=i + 1) for i, a in enumerate(valid)]
    _read(monkeypatch, _file(tmp_path, valid), "bulk")
    assert calls["n"] == 0
    _read(monkeypatch, _file(tmp_path, valid), "per entry")
    assert calls["n"] == len(valid)
    path = _file(tmp_path)
    stop_bulk = _read(monkeypatch, path, "bulk", policy="stop")
    stop_rules = _read(monkeypatch, path, "per entry", policy="stop")
    assert isinstance(stop_bulk[0], str) and stop_bulk[0] == stop_rules[0]
    assert "images[2] (image id 3)" in stop_bulk[0]
