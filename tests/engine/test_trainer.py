"""Training loop: exact resume, metrics.json, NaN detection, clipping, hooks, set-up."""

import json
import os
import sys

import pytest
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(__file__))
import engine_toys as toys  # noqa: E402

import resnet_det.checkpoint.checkpointer as ckpt_mod  # noqa: E402
from resnet_det.config import get_cfg  # noqa: E402
from resnet_det.engine import (  # noqa: E402
    DefaultTrainer,
    HookBase,
    SimpleTrainer,
    auto_scale_workers,
    default_argument_parser,
    default_setup,
    launch,
)
from resnet_det.utils.errors import UsageError  # noqa: E402

N = 8  # iterations


def _eval_fn(model):
    # Consumes RNG on purpose: evaluation must not move the training streams.
    torch.rand(3)
    with torch.no_grad():
        x, y = toys.batch_at(10_000, 16)
        return {"val": {"mse": float(((model.linear(model.norm(x)) - y) ** 2).mean())}}


def _run(out, *, crash_at=None, resume=False, seed=0):
    torch.manual_seed(seed)
    cfg = toys.toy_cfg(str(out), max_iter=N)
    cfg.TEST.EVAL_PERIOD = 2
    trainer = DefaultTrainer(
        cfg, model=toys.NoisyRegressor(), data_loader=toys.loader_factory(8), evaluate_fn=_eval_fn
    )
    if crash_at is not None:
        trainer.register_hooks([toys.CrashAt(crash_at)])
    trainer.resume_or_load(resume=resume)
    results = trainer.train()
    return trainer, results


def _weights(trainer):
    return {k: v.clone() for k, v in trainer.checkpointer.model.state_dict().items()}


def test_resume_after_interruption_is_exact(tmp_path, monkeypatch):
    full, results = _run(tmp_path / "full")
    ref = _weights(full)
    assert results["val"]["mse"] == pytest.approx(_eval_fn(full.checkpointer.model)["val"]["mse"])

    # Interrupted after the checkpoint of iteration 5 (period 3: iterations 2 and 5).
    with pytest.raises(toys.Crash):
        _run(tmp_path / "resumed", crash_at=7)
    assert (tmp_path / "resumed" / "last_checkpoint").read_text() == "model_0000005.pth"
    assert not (tmp_path / "resumed" / "model_final.pth").exists()
    # A new trainer object (different initial RNG) resumes at iteration 6.
    resumed, _ = _run(tmp_path / "resumed", resume=True, seed=777)
    assert resumed.start_iter == 6
    got = _weights(resumed)
    assert got.keys() == ref.keys()
    for k in ref:
        assert torch.equal(got[k], ref[k]), k

    # Control: without restoring the RNG streams the same resume diverges (dropout, noise).
    with pytest.raises(toys.Crash):
        _run(tmp_path / "norng", crash_at=7)
    monkeypatch.setattr(ckpt_mod, "set_rng_states", lambda states: None)
    norng, _ = _run(tmp_path / "norng", resume=True, seed=777)
    assert not torch.equal(_weights(norng)["linear.weight"], ref["linear.weight"])


def test_metrics_json_and_output_files(tmp_path):
    _run(tmp_path)
    names = set(os.listdir(tmp_path))
    assert {
        "metrics.json",
        "last_checkpoint",
        "model_0000002.pth",
        "model_0000005.pth",
        "model_final.pth",
    } <= names
    assert any(n.startswith("events.out.tfevents") for n in names)
    rows = [json.loads(line) for line in open(tmp_path / "metrics.json")]
    train_rows = [r for r in rows if "total_loss" in r]
    assert [r["iteration"] for r in train_rows] == [1, 3, 5, 7]  # LOG_PERIOD 2 and the last
    for r in train_rows:
        assert {"iteration", "total_loss", "loss_mse", "loss_l1", "lr", "time", "data_time"} <= set(
            r
        )
        assert r["total_loss"] > 0
    assert "eta_seconds" in train_rows[0]
    # lr of iteration 1: warm-up factor 0.1 * (1 - 1/2) + 1/2 = 0.55 of BASE_LR 0.05;
    # iteration 5: after the step at 4 (gamma 0.1).
    assert train_rows[0]["lr"] == pytest.approx(0.05 * 0.55)
    assert train_rows[2]["lr"] == pytest.approx(0.005)
    evals = [r for r in rows if "val/mse" in r]
    # EVAL_PERIOD 2: after iterations 1, 3, 5 and at the end (iteration N)
    assert [r["iteration"] for r in evals] == [1, 3, 5, N]
    final = torch.load(tmp_path / "model_final.pth", weights_only=True)
    assert final["iteration"] == N - 1


class _NaNAt(nn.Module):
    def __init__(self, it):
        super().__init__()
        self.w = nn.Parameter(torch.ones(2))
        self.calls = 0
        self.it = it

    def forward(self, batch):
        loss = (self.w * batch).sum()
        if self.calls == self.it:
            loss = loss * float("nan")
        self.calls += 1
        return {"loss_cls": loss, "loss_box_reg": loss.detach() * 0 + 1}


def test_nan_loss_raises_naming_iteration_and_losses():
    model = _NaNAt(3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    trainer = SimpleTrainer(model, iter(lambda: torch.ones(2), None), opt)
    with pytest.raises(FloatingPointError) as e:
        trainer.train(0, 10)
    assert "iteration 3" in str(e.value)
    assert "loss_cls" in str(e.value) and "nan" in str(e.value)
    assert torch.isfinite(model.w).all()  # the NaN never reached the weights


def test_gradient_clipping_by_value_and_norm():
    class Big(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(4))

        def forward(self, batch):
            return {"loss": (self.w * torch.tensor([100.0, -100.0, 0.5, 0.0])).sum()}

    for clip_type, expected in (
        ("value", torch.tensor([-1.0, 1.0, -0.5, 0.0])),
        (
            "norm",
            -torch.tensor([100.0, -100.0, 0.5, 0.0])
            / torch.tensor([100.0, -100.0, 0.5, 0.0]).norm(),
        ),
    ):
        model = Big()
        opt = torch.optim.SGD(model.parameters(), lr=1.0)
        t = SimpleTrainer(
            model, iter(lambda: None, 1), opt, grad_clip_type=clip_type, grad_clip_value=1.0
        )
        t.train(0, 1)
        assert torch.allclose(model.w.detach(), expected, atol=1e-6), clip_type


def test_amp_on_cpu_is_ignored_with_one_warning():
    model = nn.Linear(2, 1)
    with pytest.warns(UserWarning, match="AMP") as rec:
        t = SimpleTrainer(
            model,
            None,
            torch.optim.SGD(model.parameters(), lr=0.1),
            amp_enabled=True,
            amp_dtype="bfloat16",
        )
    assert len(rec) == 1
    assert t.amp_enabled is False and t.grad_scaler is None
    with pytest.raises(ValueError, match="amp_dtype"):
        SimpleTrainer(model, None, torch.optim.SGD(model.parameters(), lr=0.1), amp_dtype="float8")


def test_hook_call_order():
    calls = []

    class Rec(HookBase):
        def before_train(self):
            calls.append("before_train")

        def before_step(self):
            calls.append(f"before_step{self.trainer.iter}")

        def after_step(self):
            calls.append(f"after_step{self.trainer.iter}")

        def after_train(self):
            calls.append(f"after_train{self.trainer.iter}")

    model = toys.LinearMSE()
    t = SimpleTrainer(model, toys.loader_factory(4)(0), torch.optim.SGD(model.parameters(), 0.1))
    t.register_hooks([Rec()])
    t.train(0, 2)
    assert calls == [
        "before_train",
        "before_step0",
        "after_step0",
        "before_step1",
        "after_step1",
        "after_train2",
    ]
    assert t.storage.history("total_loss").values()[-1][1] == 1


def test_default_setup_writes_config_log_and_seed(tmp_path):
    cfg = toys.toy_cfg(str(tmp_path / "run"))
    cfg.SEED = -1
    args = default_argument_parser().parse_args(["--num-gpus", "1"])
    seed = default_setup(cfg, args)
    saved = get_cfg()
    saved.merge_from_file(str(tmp_path / "run" / "config.yaml"))
    assert saved.SEED == seed >= 0  # the drawn seed is recorded
    assert saved.SOLVER.MAX_ITER == N
    log = (tmp_path / "run" / "log.txt").read_text()
    assert f"drew seed {seed}" in log and "torchvision" in log and "engine: builtin" in log
    a = torch.rand(3)
    torch.manual_seed(seed)
    assert torch.equal(torch.rand(3), a)


def test_default_setup_flushes_subnormal_floats(tmp_path):
    # Subnormal arithmetic is what made late, small-lr CPU iterations 40x slower.
    cfg = toys.toy_cfg(str(tmp_path / "run"))
    try:
        torch.set_flush_denormal(False)
        assert torch.tensor([1e-39], dtype=torch.float32).item() != 0.0
        default_setup(cfg, default_argument_parser().parse_args([]))
        assert torch.tensor([1e-39], dtype=torch.float32).item() == 0.0
    finally:
        torch.set_flush_denormal(False)


def test_argument_parser_flags():
    args = default_argument_parser().parse_args(
        [
            "--config-file",
            "c.yaml",
            "--resume",
            "--eval-only",
            "--num-gpus",
            "2",
            "--num-machines",
            "2",
            "--machine-rank",
            "1",
            "SOLVER.BASE_LR",
            "0.1",
            "MODEL.WEIGHTS",
            "w.pth",
        ]
    )
    assert args.config_file == "c.yaml" and args.resume and args.eval_only
    assert (args.num_gpus, args.num_machines, args.machine_rank) == (2, 2, 1)
    assert args.opts == ["SOLVER.BASE_LR", "0.1", "MODEL.WEIGHTS", "w.pth"]
    assert default_argument_parser().parse_args([]).dist_url == "auto"


def test_launch_single_process_and_cpu_errors(monkeypatch):
    got = []
    launch(got.append, 1, args=("x",))
    assert got == ["x"]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv("RESNET_DET_LAUNCH_DEVICE", raising=False)
    # Usage errors: the tools print them as one line.
    with pytest.raises(UsageError, match="device='cpu'"):
        launch(got.append, 2)
    with pytest.raises(UsageError, match="dist_url='auto'"):
        launch(got.append, 2, num_machines=2, device="cpu")


def test_auto_scale_workers():
    cfg = toys.toy_cfg("/tmp/unused", max_iter=1000)
    cfg.SOLVER.STEPS = (600, 800)
    cfg.SOLVER.REFERENCE_WORLD_SIZE = 8
    cfg.SOLVER.IMS_PER_BATCH = 16
    new = auto_scale_workers(cfg, 4)
    assert new.SOLVER.IMS_PER_BATCH == 8 and new.SOLVER.BASE_LR == pytest.approx(0.025)
    assert new.SOLVER.MAX_ITER == 2000 and new.SOLVER.STEPS == (1200, 1600)
    assert cfg.SOLVER.MAX_ITER == 1000  # the input is not modified
    assert auto_scale_workers(cfg, 8) is cfg
