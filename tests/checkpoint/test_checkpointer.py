"""Checkpointer: atomic files, last_checkpoint, weights_only loading, resume_or_load."""

import os
import pickle

import pytest
import torch
from torch import nn

from resnet_det.checkpoint import Checkpointer, DamagedCheckpointError
from resnet_det.solver import WarmupMultiStepLR


def _parts():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = WarmupMultiStepLR(opt, milestones=[5], max_iter=10, warmup_iters=2)
    return model, opt, sched


class _Unpicklable:
    def state_dict(self):
        return {"fine": torch.zeros(1000), "bad": lambda: 0}  # fails half-way through pickling

    def load_state_dict(self, state):
        pass


def test_save_files_names_and_content(tmp_path):
    model, opt, sched = _parts()
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    sched.step()
    scaler = torch.amp.GradScaler("cpu", init_scale=256.0)
    ck = Checkpointer(model, str(tmp_path), optimizer=opt, scheduler=sched, grad_scaler=scaler)
    path = ck.save("model_0000041", iteration=41)
    assert path == str(tmp_path / "model_0000041.pth")
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000041.pth"
    data = torch.load(path, weights_only=True)  # plain types and tensors only
    assert data["iteration"] == 41
    assert set(data) == {
        "model",
        "optimizer",
        "scheduler",
        "grad_scaler",
        "iteration",
        "rng_states",
    }
    assert torch.equal(data["model"]["0.weight"], model[0].weight)
    assert data["scheduler"]["last_epoch"] == 1
    assert len(data["rng_states"]) == 1 and torch.equal(
        data["rng_states"][0]["torch"], torch.get_rng_state()
    )
    assert sorted(os.listdir(tmp_path)) == ["last_checkpoint", "model_0000041.pth"]


def test_failed_save_leaves_previous_checkpoint_intact(tmp_path, monkeypatch):
    model, opt, sched = _parts()
    bad = _Unpicklable()
    ck = Checkpointer(model, str(tmp_path), optimizer=opt, scheduler=sched, extra=bad)
    monkeypatch.setattr(bad, "state_dict", lambda: {"ok": 1})
    ck.save("model_0000004", iteration=4)
    before = (tmp_path / "model_0000004.pth").read_bytes()
    monkeypatch.undo()
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        ck.save("model_0000009", iteration=9)
    assert sorted(os.listdir(tmp_path)) == ["last_checkpoint", "model_0000004.pth"]
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000004.pth"
    assert (tmp_path / "model_0000004.pth").read_bytes() == before

    # Same when the disk fails at the very end (fsync), and when overwriting the same name.
    ck2 = Checkpointer(model, str(tmp_path), optimizer=opt)

    def boom(fd):
        raise OSError("No space left on device")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError, match="No space"):
        ck2.save("model_0000004", iteration=4)
    assert (tmp_path / "model_0000004.pth").read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["last_checkpoint", "model_0000004.pth"]


def test_resume_restores_model_optimizer_scheduler_rng(tmp_path):
    model, opt, sched = _parts()
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(4, 3)).pow(2).sum().backward()
        opt.step()
        sched.step()
    Checkpointer(model, str(tmp_path), optimizer=opt, scheduler=sched).save(
        "model_0000002", iteration=2
    )
    expected_draw = torch.rand(5)
    ref_lr = opt.param_groups[0]["lr"]

    torch.manual_seed(999)
    model2, opt2, sched2 = _parts()
    ck = Checkpointer(model2, str(tmp_path), optimizer=opt2, scheduler=sched2)
    assert ck.resume_or_load("", resume=True) == 3
    assert torch.equal(torch.rand(5), expected_draw)  # RNG stream continues
    for a, b in zip(model.state_dict().values(), model2.state_dict().values()):
        assert torch.equal(a, b)
    m1 = opt.state_dict()["state"][0]["momentum_buffer"]
    assert torch.equal(opt2.state_dict()["state"][0]["momentum_buffer"], m1)
    assert sched2.last_epoch == 3 and opt2.param_groups[0]["lr"] == ref_lr


def test_resume_or_load_uses_weights_loader_without_checkpoint(tmp_path):
    calls = []
    model, opt, _ = _parts()
    wrapped = nn.DataParallel(model)
    ck = Checkpointer(
        wrapped, str(tmp_path), optimizer=opt, weights_loader=lambda m, p: calls.append((m, p))
    )
    assert ck.resume_or_load("/weights/r50.pkl", resume=True) == 0  # no last_checkpoint yet
    assert calls == [(model, "/weights/r50.pkl")]  # unwrapped model
    assert ck.resume_or_load("", resume=False) == 0
    assert len(calls) == 1  # "" = from scratch
    ck.save("model_0000007", iteration=7)
    assert ck.resume_or_load("/weights/r50.pkl", resume=False) == 0  # no --resume: weights
    assert len(calls) == 2
    assert ck.resume_or_load("/weights/r50.pkl", resume=True) == 8


def test_last_checkpoint_pointing_to_missing_file(tmp_path):
    model, _, _ = _parts()
    (tmp_path / "last_checkpoint").write_text("model_0000100.pth")
    with pytest.raises(FileNotFoundError, match="model_0000100.pth"):
        Checkpointer(model, str(tmp_path)).resume_or_load("", resume=True)


def test_malicious_checkpoint_does_not_run_code(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"model": {}, "iteration": 1, "x": Evil()}, tmp_path / "model_0000001.pth")
    (tmp_path / "last_checkpoint").write_text("model_0000001.pth")
    model, _, _ = _parts()
    # Refused like a damaged file: with no other checkpoint there, an error naming it.
    with pytest.raises(
        DamagedCheckpointError, match="model_0000001.pth: unreadable: WeightsFileError.*refused"
    ):
        Checkpointer(model, str(tmp_path)).resume_or_load("", resume=True)
    assert not marker.exists()
    with pytest.raises(pickle.UnpicklingError):  # loaded directly, the refusal itself
        Checkpointer(model, str(tmp_path)).load_checkpoint(str(tmp_path / "model_0000001.pth"))
    assert not marker.exists()


def test_reserved_and_invalid_checkpointables(tmp_path):
    model, _, _ = _parts()
    with pytest.raises(ValueError, match="iteration"):
        Checkpointer(model, str(tmp_path), iteration=object())
    with pytest.raises(TypeError, match="foo"):
        Checkpointer(model, str(tmp_path), foo=object())


def test_user_caused_checkpoint_errors_are_user_errors(tmp_path):
    from resnet_det.checkpoint import WeightsMismatchError
    from resnet_det.utils.errors import MissingFileError, UserError, WeightsError

    model, opt, _ = _parts()
    (tmp_path / "last_checkpoint").write_text("../elsewhere.pth")
    with pytest.raises(WeightsError, match="not a checkpoint file name"):
        Checkpointer(model, str(tmp_path)).resume_or_load("", resume=True)
    (tmp_path / "last_checkpoint").write_text("model_0000100.pth")
    with pytest.raises(MissingFileError):
        Checkpointer(model, str(tmp_path)).resume_or_load("", resume=True)
    # Resuming another model from the same folder names the keys (a user error: another config).
    Checkpointer(model, str(tmp_path), optimizer=opt).save("model_0000001", iteration=1)
    other = nn.Sequential(nn.Linear(3, 4))
    with pytest.raises(WeightsMismatchError, match="missing keys.*OUTPUT_DIR") as e:
        Checkpointer(other, str(tmp_path)).resume_or_load("", resume=True)
    assert isinstance(e.value, UserError)
    with pytest.raises(WeightsError, match="no 'scheduler' state"):
        Checkpointer(model, str(tmp_path), scheduler=_parts()[2]).resume_or_load("", resume=True)


def test_write_checkpoint_writes_the_file_before_the_tag(tmp_path, monkeypatch):
    # The one writer both checkpointers (ours and the detectron2 plugin's) use.
    from resnet_det.checkpoint import checkpointer as module

    order = []
    real_save, real_text = module.atomic_torch_save, module.atomic_write_text
    monkeypatch.setattr(
        module,
        "atomic_torch_save",
        lambda d, p: (order.append(os.path.basename(p)), real_save(d, p)),
    )
    monkeypatch.setattr(
        module,
        "atomic_write_text",
        lambda p, t: (order.append(os.path.basename(p)), real_text(p, t)),
    )
    path = module.write_checkpoint(
        {"model": {"w": torch.ones(2)}}, str(tmp_path / "new"), "model_final"
    )
    assert order == ["model_final.pth", "last_checkpoint"]
    assert path == str(tmp_path / "new" / "model_final.pth")
    assert (tmp_path / "new" / "last_checkpoint").read_text() == "model_final.pth"
    assert torch.equal(torch.load(path, weights_only=True)["model"]["w"], torch.ones(2))
