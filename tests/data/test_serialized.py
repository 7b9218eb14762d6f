import os
import pickle

import numpy as np
import pytest

from resnet_det.data.serialized import (
    COLUMNS,
    SerializedDicts,
    SerializedFileError,
    SerializedWriter,
    concat,
    open_serialized,
)
from resnet_det.utils.file_io import atomic_open

DICTS = [
    {
        "file_name": "a.jpg",
        "image_id": 1,
        "height": 30,
        "width": 40,
        "annotations": [
            {"bbox": [1.5, 2.0, 10.0, 12.25], "category_id": 0, "iscrowd": 0, "id": 1},
            {"bbox": [0.0, 0.0, 4.0, 4.0], "category_id": 1, "iscrowd": 1, "id": 2},
            {
                "bbox": [-0.0, 0.0, 4.0, 4.0],
                "category_id": 1,
                "iscrowd": 0,
                "id": 3,
                "segmentation": [[0.0, 0.0, 4.0, 0.0, 4.0, 4.0]],
            },
        ],
    },
    {"file_name": "sub/b.jpg", "image_id": 2**70, "height": 8, "width": 9, "annotations": []},
    {"file_name": "c.jpg", "image_id": "c", "extra": {"nested": [None, True, 0.1]}},
]


def _rooted(root):
    return [dict(d, file_name=os.path.join(root, d["file_name"])) for d in DICTS]


def _write(path, dicts=DICTS, meta=None):
    with atomic_open(str(path), "wb") as f:
        writer = SerializedWriter(f)
        for d in dicts:
            writer.add(d, (d.get("height", -1), d.get("width", -1), 0, 0))
        return writer.finish(meta or {"reader": "test"})


def test_records_come_back_equal_and_fresh():
    s = SerializedDicts.from_dicts(DICTS, root="/r")
    assert len(s) == 3 and s == _rooted("/r") and _rooted("/r") == s
    assert s[-1] == _rooted("/r")[2] and s[1]["image_id"] == 2**70  # beyond 64 bits: json codec
    assert s[0] is not s[0]  # each access parses a fresh dict
    s[0]["annotations"].clear()
    assert len(s[0]["annotations"]) == 3  # nothing stored changed
    with pytest.raises(IndexError):
        s[3]
    # Columns: height, width (-1 if absent), objects and objects without a mask.
    assert {c: s.column(c).tolist() for c in COLUMNS} == {
        "height": [30, 8, -1],
        "width": [40, 9, -1],
        "num_objects": [2, 0, 0],
        "num_unmasked": [1, 0, 0],
    }
    with pytest.raises(TypeError, match="tuple"):
        SerializedDicts.from_dicts([{"bbox": (1, 2, 3, 4)}])


def test_views_share_the_buffers():
    s = SerializedDicts.from_dicts(DICTS)
    rev = s[::-1]
    assert isinstance(rev, SerializedDicts) and rev == DICTS[::-1]
    assert rev._stores[0].data is s._stores[0].data
    sub = s.subset([2, 0])
    assert sub == [DICTS[2], DICTS[0]] and sub.column("height").tolist() == [-1, 30]
    both = concat([sub, s])
    assert both == [DICTS[2], DICTS[0]] + DICTS
    assert both.column("num_objects").tolist() == [0, 2, 2, 0, 0]
    assert s[1:] + [{"x": 1}] == DICTS[1:] + [{"x": 1}]
    assert [{"x": 1}] + s[:1] == [{"x": 1}, DICTS[0]]
    assert pickle.loads(pickle.dumps(both)) == both


def test_file_round_trip_and_pickled_by_path(tmp_path):
    path = tmp_path / "d.cache"
    _write(path, meta={"reader": {"k": [1, 2]}})
    s, header = open_serialized(str(path), root="/img")
    assert s == _rooted("/img") and header["meta"] == {"reader": {"k": [1, 2]}}
    assert s.paths == [str(path)]
    # Another process gets the path, not the records (it maps the same file).
    blob = pickle.dumps(s[1:])
    assert len(blob) < 1000 and b"sub/b.jpg" not in blob
    assert pickle.loads(blob) == _rooted("/img")[1:]
    # A file replaced under a running loader is refused, not read as the old one.
    _write(path, DICTS[:1])
    with pytest.raises(SerializedFileError, match="replaced"):
        pickle.loads(blob)


def _damage(path, how):
    raw = bytearray(path.read_bytes())
    if how == "flip":
        raw[5] ^= 0x20  # inside the first record
    elif how == "truncate":
        raw = raw[:-3]
    elif how == "magic":
        raw[-1] ^= 1
    elif how == "header":
        raw[-20] = ord("!")
    elif how == "garbage":
        raw = bytearray(os.urandom(len(raw)))
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("how", ["flip", "truncate", "magic", "header", "garbage"])
def test_damaged_files_are_refused(tmp_path, how):
    path = tmp_path / "d.cache"
    _write(path)
    _damage(path, how)
    with pytest.raises(SerializedFileError):
        open_serialized(str(path))


class _Marker:
    """Unpickling this creates a file: the proof that a pickle ran."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_file_never_runs_code(tmp_path):
    marker = str(tmp_path / "ran")
    path = tmp_path / "d.cache"
    # A pickle where the cache should be: not a serialized dataset.
    path.write_bytes(pickle.dumps(_Marker(marker)))
    with pytest.raises(SerializedFileError):
        open_serialized(str(path))
    # A well-formed file whose record is a pickle (the sha256 made to match): reading the
    # record fails as JSON, nothing is unpickled.
    with atomic_open(str(path), "wb") as f:
        writer = SerializedWriter(f)
        writer.add_bytes(pickle.dumps(_Marker(marker)), (1, 1, 0, 0))
        writer.finish({})
    s, _ = open_serialized(str(path))
    with pytest.raises(ValueError):
        s[0]
    assert not os.path.exists(marker)


def test_offsets_are_checked_without_the_sha256(tmp_path):
    path = tmp_path / "d.cache"
    header = _write(path)
    raw = bytearray(path.read_bytes())
    at = header["parts"]["offsets"] + 8
    raw[at : at + 8] = np.array([10**9], "<i8").tobytes()  # an offset past the records
    path.write_bytes(bytes(raw))
    with pytest.raises(SerializedFileError, match="offsets"):
        open_serialized(str(path), verify=False)
