"""Damaged checkpoints and full disks: --resume falls back to the newest intact checkpoint; a
failed write leaves the previous checkpoint and last_checkpoint as they were."""

import errno
import logging
import os

import pytest
import torch
from torch import nn

from resnet_det.checkpoint import (
    Checkpointer,
    CheckpointWriteError,
    DamagedCheckpointError,
    checkpoint_files,
)
from resnet_det.checkpoint import checkpointer as module
from resnet_det.utils.errors import MissingFileError, UserError


def _model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))


def _save_three(folder):
    """model_0000001/3/5.pth from three different models; returns their state dicts."""
    states = {}
    for it in (1, 3, 5):
        m = _model(it)
        Checkpointer(m, str(folder)).save(f"model_{it:07d}", iteration=it)
        states[it] = {k: v.clone() for k, v in m.state_dict().items()}
    return states


def _truncate(path):
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])


def _flip(path):
    """Flip bytes inside a tensor's data: torch.load alone would load this without a word."""
    data = bytearray(open(path, "rb").read())
    start = data.find(b"data/0") + 200
    for i in range(start, start + 16):
        data[i] ^= 0xFF
    open(path, "wb").write(bytes(data))


def _same(model, state):
    return all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


@pytest.mark.parametrize(
    "damage",
    [_truncate, _flip, lambda p: open(p, "wb").close()],
    ids=["truncated", "corrupt", "empty"],
)
def test_damaged_newest_falls_back_to_the_newest_intact_with_a_warning(tmp_path, caplog, damage):
    states = _save_three(tmp_path)
    damage(tmp_path / "model_0000005.pth")
    model = _model(99)
    with caplog.at_level(logging.WARNING, logger="resnet_det"):
        start = Checkpointer(model, str(tmp_path)).resume_or_load("", resume=True)
    assert start == 4 and _same(model, states[3])
    warning = [r.getMessage() for r in caplog.records if "newest intact" in r.getMessage()]
    assert len(warning) == 1
    assert (
        str(tmp_path / "model_0000003.pth") in warning[0]
        and str(tmp_path / "model_0000005.pth") in warning[0]
    )


def test_the_corrupt_file_would_load_without_the_crc_check(tmp_path):
    # Why the CRCs are checked: torch.load reads flipped tensor bytes as valid weights.
    _save_three(tmp_path)
    _flip(tmp_path / "model_0000005.pth")
    assert torch.load(tmp_path / "model_0000005.pth", weights_only=True)["iteration"] == 5


def test_no_intact_checkpoint_is_a_clear_error_naming_each_file(tmp_path):
    _save_three(tmp_path)
    _truncate(tmp_path / "model_0000005.pth")
    _flip(tmp_path / "model_0000003.pth")
    (tmp_path / "model_0000001.pth").write_bytes(b"")
    with pytest.raises(DamagedCheckpointError) as e:
        Checkpointer(_model(), str(tmp_path)).resume_or_load("", resume=True)
    msg = str(e.value)
    assert isinstance(e.value, UserError)
    for it, why in ((5, "truncated"), (3, "corrupt: the CRC"), (1, "empty")):
        assert f"model_{it:07d}.pth: {why}" in msg
    assert "Drop --resume" in msg


def test_fallback_only_goes_back_from_what_last_checkpoint_names(tmp_path):
    # A user who pointed last_checkpoint at an older file does not get a newer one instead.
    states = _save_three(tmp_path)
    (tmp_path / "last_checkpoint").write_text("model_0000003.pth")
    _truncate(tmp_path / "model_0000003.pth")
    model = _model(99)
    assert Checkpointer(model, str(tmp_path)).resume_or_load("", resume=True) == 2
    assert _same(model, states[1])
    # model_final.pth is the newest; when it is damaged the numbered ones come next.
    Checkpointer(_model(7), str(tmp_path)).save("model_final", iteration=9)
    _truncate(tmp_path / "model_final.pth")
    assert checkpoint_files(str(tmp_path))[:2] == ["model_final.pth", "model_0000005.pth"]
    assert Checkpointer(model, str(tmp_path)).resume_or_load("", resume=True) == 6
    assert _same(model, states[5])
    # A missing file named with nothing older to fall back to stays a MissingFileError.
    (tmp_path / "last_checkpoint").write_text("model_0000000.pth")
    with pytest.raises(MissingFileError, match="model_0000000.pth.*does not exist"):
        Checkpointer(model, str(tmp_path)).resume_or_load("", resume=True)


def test_full_disk_mid_write_keeps_the_previous_checkpoint_and_reports(tmp_path, monkeypatch):
    model = _model()
    ck = Checkpointer(model, str(tmp_path))
    ck.save("model_0000001", iteration=1)
    before = (tmp_path / "model_0000001.pth").read_bytes()

    def half_then_enospc(obj, f):  # the disk fills up half-way through the file
        f.write(before[: len(before) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    real = module.atomic_torch_save
    monkeypatch.setattr(
        module, "atomic_torch_save", lambda d, p: real(d, p, save_fn=half_then_enospc)
    )
    with pytest.raises(CheckpointWriteError) as e:
        ck.save("model_0000003", iteration=3)
    assert isinstance(e.value, OSError) and isinstance(e.value, UserError)
    assert e.value.errno == errno.ENOSPC
    msg = str(e.value)
    assert str(tmp_path / "model_0000003.pth") in msg and "No space left on device" in msg
    assert f"{tmp_path / 'model_0000001.pth'} (named by last_checkpoint) is intact" in msg
    assert "--resume" in msg and "MB free" in msg
    assert sorted(os.listdir(tmp_path)) == ["last_checkpoint", "model_0000001.pth"]  # no temp file
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000001.pth"
    assert (tmp_path / "model_0000001.pth").read_bytes() == before
    # The tag write failing (after the file) leaves the tag as it was, too.
    monkeypatch.undo()
    real_text = module.atomic_write_text

    def no_room_for_tag(path, text):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(module, "atomic_write_text", no_room_for_tag)
    with pytest.raises(CheckpointWriteError):
        ck.save("model_0000005", iteration=5)
    monkeypatch.setattr(module, "atomic_write_text", real_text)
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000001.pth"
    assert Checkpointer(_model(5), str(tmp_path)).resume_or_load("", resume=True) == 2
