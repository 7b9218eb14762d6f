"""Faults during training: non-finite losses (named terms and image ids, skipping), a full disk
while saving, a damaged newest checkpoint at --resume, CHECKPOINT_KEEP_LAST."""

import errno
import json
import os
import sys

import pytest
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(__file__))
import engine_toys as toys  # noqa: E402

from resnet_det.checkpoint import CheckpointWriteError  # noqa: E402
from resnet_det.checkpoint import checkpointer as ckpt_module  # noqa: E402
from resnet_det.engine import DefaultTrainer  # noqa: E402

N = 12


class _NaNAt(nn.Module):
    """Loss of a list-of-dicts batch (detection style, with image ids); NaN at given calls."""

    def __init__(self, bad_calls):
        super().__init__()
        self.w = nn.Parameter(torch.ones(2))
        self.bad_calls = set(bad_calls)
        self.calls = 0

    def forward(self, batch):
        x = torch.stack([d["x"] for d in batch])
        loss = ((x @ self.w) - 1.0).pow(2).mean()
        box = loss.detach() * 0 + 0.5
        if self.calls in self.bad_calls:
            loss = loss * float("nan")
        self.calls += 1
        return {"loss_cls": loss, "loss_box_reg": box}


def _dict_batches(start_iter):
    it = start_iter
    while True:
        g = torch.Generator().manual_seed(it)
        yield [{"x": torch.randn(2, generator=g), "image_id": f"img_{it}_{j}"} for j in range(2)]
        it += 1


def _nan_trainer(out, bad_calls, **solver):
    cfg = toys.toy_cfg(str(out), max_iter=N, **{"CHECKPOINT_PERIOD": 2, "BASE_LR": 0.01, **solver})
    model = _NaNAt(bad_calls)
    return DefaultTrainer(cfg, model=model, data_loader=_dict_batches), model


def test_nonfinite_loss_names_iteration_terms_and_image_ids_and_keeps_the_checkpoint(tmp_path):
    trainer, model = _nan_trainer(tmp_path, {5})
    trainer.resume_or_load(resume=False)
    with pytest.raises(FloatingPointError) as e:
        trainer.train()
    msg = str(e.value)
    assert "at iteration 5" in msg and "loss_cls = nan" in msg and "loss_box_reg = 0.5" in msg
    assert "['img_5_0', 'img_5_1']" in msg and "SOLVER.BASE_LR" in msg
    assert torch.isfinite(model.w).all()  # never reached the weights
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000003.pth"
    last_good = torch.load(tmp_path / "model_0000003.pth", weights_only=True)
    assert last_good["iteration"] == 3
    assert (
        not (tmp_path / "model_0000005.pth").exists()
        and not (tmp_path / "model_final.pth").exists()
    )


def test_skip_nonfinite_iters_skips_counts_and_then_stops(tmp_path):
    trainer, model = _nan_trainer(tmp_path / "a", {3, 5}, SKIP_NONFINITE_ITERS=2)
    trainer.resume_or_load(resume=False)
    trainer.train()  # two skipped, run completes
    assert torch.isfinite(model.w).all()
    rows = [json.loads(line) for line in open(tmp_path / "a" / "metrics.json")]
    skipped = {r["iteration"]: r["nonfinite_skipped"] for r in rows if "nonfinite_skipped" in r}
    assert skipped == {3: 1, 5: 2}
    trainer, _ = _nan_trainer(tmp_path / "b", {3, 5, 7}, SKIP_NONFINITE_ITERS=2)
    trainer.resume_or_load(resume=False)
    with pytest.raises(FloatingPointError, match="at iteration 7"):
        trainer.train()


def test_skipped_iteration_leaves_weights_and_optimizer_as_they_were(tmp_path):
    # Skipping iteration 3 equals a run whose iteration 3 took no step: the weights after
    # iteration 3 equal those after iteration 2.
    trainer, model = _nan_trainer(tmp_path, {3}, SKIP_NONFINITE_ITERS=1, CHECKPOINT_PERIOD=1)
    trainer.resume_or_load(resume=False)
    trainer.train()
    w2 = torch.load(tmp_path / "model_0000002.pth", weights_only=True)
    w3 = torch.load(tmp_path / "model_0000003.pth", weights_only=True)
    assert torch.equal(w2["model"]["w"], w3["model"]["w"])
    assert torch.equal(
        w2["optimizer"]["state"][0]["momentum_buffer"],
        w3["optimizer"]["state"][0]["momentum_buffer"],
    )
    assert not torch.equal(
        w3["model"]["w"],
        torch.load(tmp_path / "model_0000004.pth", weights_only=True)["model"]["w"],
    )


def _ref(tmp_path):
    ref = toys.run_noisy(str(tmp_path / "ref"), N, period=3)
    return {k: v.clone() for k, v in ref.checkpointer.model.state_dict().items()}


def _assert_equal(trainer, ref):
    got = trainer.checkpointer.model.state_dict()
    for k in ref:
        assert torch.equal(got[k], ref[k]), k


def test_full_disk_during_training_then_resume_is_exact(tmp_path, monkeypatch):
    ref = _ref(tmp_path)
    out = str(tmp_path / "run")
    real = ckpt_module.atomic_torch_save

    def second_save_fails(data, path):
        if path.endswith("model_0000005.pth"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
        real(data, path)

    monkeypatch.setattr(ckpt_module, "atomic_torch_save", second_save_fails)
    with pytest.raises(
        CheckpointWriteError, match="model_0000005.pth failed: No space left on device"
    ):
        toys.run_noisy(out, N, period=3)
    monkeypatch.undo()
    assert open(os.path.join(out, "last_checkpoint")).read() == "model_0000002.pth"
    resumed = toys.run_noisy(out, N, period=3, resume=True)
    assert resumed.start_iter == 3
    _assert_equal(resumed, ref)


def test_damaged_newest_checkpoint_resumes_from_the_previous_one_exactly(tmp_path):
    ref = _ref(tmp_path)
    out = str(tmp_path / "run")
    with pytest.raises(toys.Crash):
        toys.run_noisy(out, N, period=3, extra_hooks=[toys.CrashAt(7)])
    newest = os.path.join(out, "model_0000005.pth")
    data = open(newest, "rb").read()
    open(newest, "wb").write(data[: len(data) // 3])
    resumed = toys.run_noisy(out, N, period=3, resume=True)
    assert resumed.start_iter == 3
    _assert_equal(resumed, ref)


def test_checkpoint_keep_last(tmp_path):
    out = tmp_path / "run"
    toys.run_noisy(str(out), N, period=2, CHECKPOINT_KEEP_LAST=2)
    assert sorted(n for n in os.listdir(out) if n.endswith(".pth")) == [
        "model_0000009.pth",
        "model_0000011.pth",
        "model_final.pth",
    ]
    toys.run_noisy(str(tmp_path / "all"), N, period=2)
    assert len([n for n in os.listdir(tmp_path / "all") if n.endswith(".pth")]) == 7  # 0 keeps all
