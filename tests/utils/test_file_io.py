"""utils.file_io, the package's one atomic writer: all or nothing, synced before the rename."""

import json
import os

import pytest

from resnet_det.utils import file_io


def test_json_and_text_are_written_whole_and_synced(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    path = str(tmp_path / "sub" / "metrics.json")
    file_io.atomic_write_json(path, {"bbox/AP": 1.5})
    assert json.loads(open(path).read()) == {"bbox/AP": 1.5}
    file_io.atomic_write_text(path, "x")
    assert open(path).read() == "x" and len(synced) == 2
    assert os.listdir(tmp_path / "sub") == ["metrics.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = str(tmp_path / "config.yaml")
    file_io.atomic_write_text(path, "old")
    with pytest.raises(TypeError):
        file_io.atomic_write_json(path, {"not json": object()})
    assert open(path).read() == "old" and os.listdir(tmp_path) == ["config.yaml"]


@pytest.mark.parametrize(
    "obj",
    [
        [{"image_id": 1, "category_id": 18, "bbox": [0.1, 2.675, 1e-7, 3e20], "score": 0.93}],
        {"bbox/AP": 18.210739906480118, "name": "caf\u00e9 \u2603", "flags": [True, False]},
        {"bbox/AP-dog": float("nan"), "inf": float("inf")},  # json.dump's NaN / Infinity
        {"nested": {"ok": None}},  # a real null: json.dump writes it, same text meaning
        {1: "int key", 2.5: "float key"},  # json.dump turns keys into strings, orjson refuses
        {"big": 2**70, "np": __import__("numpy").float64(0.5)},  # beyond orjson
    ],
)
def test_json_reads_back_as_json_dump_wrote_it(tmp_path, obj):
    # Written by orjson where its text means what json.dump's does, else by json.dump.
    path = str(tmp_path / "x.json")
    file_io.atomic_write_json(path, obj)
    got = open(path, encoding="utf-8").read()
    want = json.dumps(obj)
    assert json.loads(got) == json.loads(want) or got == want  # NaN != NaN: text equal
    if "NaN" in want or "Infinity" in want:
        assert got == want


def test_what_json_dump_refuses_is_refused(tmp_path):
    import dataclasses
    import datetime

    @dataclasses.dataclass
    class Point:
        x: int

    for obj in ({"p": Point(1)}, [datetime.datetime(2026, 1, 1)]):
        with pytest.raises(TypeError):
            file_io.atomic_write_json(str(tmp_path / "x.json"), obj)
    assert not (tmp_path / "x.json").exists()


def test_dump_kwargs_go_to_json_dump(tmp_path):
    path = str(tmp_path / "x.json")
    file_io.atomic_write_json(path, {"b": 1, "a": [1, 2]}, indent=2, sort_keys=True)
    assert open(path).read() == json.dumps({"b": 1, "a": [1, 2]}, indent=2, sort_keys=True)


def test_checkpoint_and_weights_writers_go_through_it(tmp_path, monkeypatch):
    # save_weights (.pkl and .pth) and Checkpointer files are synced before their rename, as
    # atomic_open does (the writer weights.py used to have of its own did not sync).
    import torch

    from resnet_det.checkpoint import Checkpointer
    from resnet_det.checkpoint.weights import save_weights

    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd)))
    monkeypatch.setattr(
        os, "replace", lambda a, b: (events.append(os.path.basename(b)), real_replace(a, b))
    )
    sd = {"linear.weight": torch.ones(2, 2)}
    save_weights(sd, tmp_path / "w.pkl")
    save_weights(sd, tmp_path / "w.pth")
    Checkpointer(torch.nn.Linear(2, 2), str(tmp_path)).save("model_final")
    assert events == [
        "fsync",
        "w.pkl",
        "fsync",
        "w.pth",
        "fsync",
        "model_final.pth",
        "fsync",
        "last_checkpoint",
    ]


def test_written_files_get_a_new_files_usual_mode(tmp_path):
    # mkstemp creates 0600 files; a config.yaml or checkpoint should be readable like any file.
    if not hasattr(os, "fchmod"):
        pytest.skip("no fchmod on this platform")
    mask = os.umask(0o022)
    os.umask(mask)
    path = str(tmp_path / "config.yaml")
    file_io.atomic_write_text(path, "x")
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~mask
