"""Hooks wired together: plateau schedule fed by evaluation, console log, eval result checks."""

import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))
import engine_toys as toys  # noqa: E402

from resnet_det.engine import (  # noqa: E402
    DefaultTrainer,
    EventStorage,
    SimpleTrainer,
    flatten_results_dict,
    get_event_storage,
)
from resnet_det.utils.logger import setup_logger  # noqa: E402

# top-1 error "measured" after each evaluated iteration (EVAL_PERIOD 2) and at the end (12)
_ERRS = {1: 50.0, 3: 40.0, 5: 40.0, 7: 40.0, 9: 40.0, 12: 40.0}


def _plateau_trainer(out):
    torch.manual_seed(0)
    cfg = toys.toy_cfg(
        str(out),
        max_iter=12,
        LR_SCHEDULER_NAME="ReduceLROnPlateau",
        PLATEAU_METRIC="val/top1_err",
        PLATEAU_PATIENCE=1,
        WARMUP_ITERS=0,
        BASE_LR=0.1,
        CHECKPOINT_PERIOD=4,
    )
    cfg.TEST.EVAL_PERIOD = 2
    return DefaultTrainer(
        cfg,
        model=toys.LinearMSE(),
        data_loader=toys.loader_factory(8),
        evaluate_fn=lambda m: {"val": {"top1_err": _ERRS[get_event_storage().iter]}},
    )


def test_plateau_schedule_driven_by_eval_results_and_resumed(tmp_path):
    t = _plateau_trainer(tmp_path / "full")
    t.resume_or_load(resume=False)
    t.train()
    lrs = [v for v, _ in t.storage.history("lr").values()]
    # evaluations after iterations 1, 3, 5, 7: 50 (best), 40 (best), 40 (1 bad), 40 (2 bad >
    # patience 1: divide by 10), heard at once, so iteration 8 on uses 0.01.
    assert lrs == pytest.approx([0.1] * 8 + [0.01] * 4)
    state = torch.load(tmp_path / "full" / "model_0000007.pth", weights_only=True)["scheduler"]
    assert state["num_reductions"] == 1 and state["best"] == 40.0

    # Interrupted at 9, resumed from the checkpoint of iteration 7: same schedule, weights.
    crashed = _plateau_trainer(tmp_path / "resumed")
    crashed.register_hooks([toys.CrashAt(9)])
    crashed.resume_or_load(resume=False)
    with pytest.raises(toys.Crash):
        crashed.train()
    resumed = _plateau_trainer(tmp_path / "resumed")
    assert resumed.resume_or_load(resume=True) == 8
    resumed.train()
    assert [v for v, _ in resumed.storage.history("lr").values()] == pytest.approx([0.01] * 4)
    for k, v in t.checkpointer.model.state_dict().items():
        assert torch.equal(resumed.checkpointer.model.state_dict()[k], v), k


def test_console_log_has_eta_losses_lr(tmp_path):
    setup_logger(str(tmp_path))
    torch.manual_seed(0)
    cfg = toys.toy_cfg(str(tmp_path), max_iter=6)
    trainer = DefaultTrainer(cfg, model=toys.NoisyRegressor(), data_loader=toys.loader_factory(8))
    trainer.resume_or_load(resume=False)
    assert trainer.train() is None  # no evaluation configured
    log = (tmp_path / "log.txt").read_text()
    line = [ln for ln in log.splitlines() if "iter: 5" in ln][0]
    for part in ("eta:", "total_loss:", "loss_mse:", "loss_l1:", "time:", "data_time:", "lr:"):
        assert part in line, part
    assert "Overall training speed" in log


def test_flatten_results_names_bad_entries():
    assert flatten_results_dict({"bbox": {"AP": 40, "AP50": 60.5}, "top1": 3}) == {
        "bbox/AP": 40.0,
        "bbox/AP50": 60.5,
        "top1": 3.0,
    }
    with pytest.raises(TypeError, match="bbox/per_class"):
        flatten_results_dict({"bbox": {"per_class": [1, 2]}})


def test_finite_loader_is_reported():
    model = toys.LinearMSE()
    t = SimpleTrainer(model, [toys.batch_at(0, 4)], torch.optim.SGD(model.parameters(), lr=0.1))
    with pytest.raises(RuntimeError, match="ended at iteration 1"):
        t.train(0, 3)


def test_storage_smoothing_and_latest():
    with EventStorage(5) as s:
        for v in (1.0, 100.0, 3.0):
            s.put_scalar("loss", v)
            s.put_scalar("lr", v, smoothing_hint=False)
            s.step()
        assert s.latest()["loss"] == (3.0, 7)
        assert s.latest_with_smoothing_hint(3)["loss"] == (3.0, 7)  # median of 1, 100, 3
        assert s.latest_with_smoothing_hint(2)["loss"][0] == pytest.approx(51.5)
        assert s.latest_with_smoothing_hint(3)["lr"] == (3.0, 7)
        with pytest.raises(ValueError, match="loss"):
            s.put_scalar("loss", 1.0, smoothing_hint=False)
