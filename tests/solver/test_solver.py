"""Optimizer param groups and lr schedules at hand-computed iterations, with exact resume."""

import math

import pytest
import torch
from torch import nn

from resnet_det.config import get_cfg
from resnet_det.solver import (
    WarmupCosineLR,
    WarmupMultiStepLR,
    WarmupPlateauLR,
    build_lr_scheduler,
    build_optimizer,
    build_sgd,
)


def _opt(lr=1.0):
    return torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=lr)


def _lrs(opt, sched, n):
    """lr used by each of iterations 0..n-1 (the hook steps the schedule after each)."""
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_warmup_multistep_hand_values():
    opt = _opt(0.1)
    sched = WarmupMultiStepLR(
        opt,
        milestones=[6, 8],
        max_iter=10,
        gamma=0.1,
        warmup_factor=0.001,
        warmup_iters=4,
        warmup_method="linear",
    )
    lrs = _lrs(opt, sched, 10)
    # linear warmup: factor(i) = 0.001 * (1 - i/4) + i/4
    expected = [0.1 * (0.001 * (1 - i / 4) + i / 4) for i in range(4)]
    expected += [0.1, 0.1, 0.01, 0.01, 0.001, 0.001]
    assert lrs == pytest.approx(expected, rel=1e-9)
    assert lrs[1] == pytest.approx(0.1 * 0.25075)


def test_constant_warmup_as_resnet110():
    # Sec. 4.2: ResNet-110 trains at 0.01 (0.1 x 0.1) for the first ~400 iterations.
    opt = _opt(0.1)
    sched = WarmupMultiStepLR(
        opt,
        milestones=[6],
        max_iter=8,
        gamma=0.1,
        warmup_factor=0.1,
        warmup_iters=3,
        warmup_method="constant",
    )
    assert _lrs(opt, sched, 8) == pytest.approx([0.01, 0.01, 0.01, 0.1, 0.1, 0.1, 0.01, 0.01])


def test_cosine_values_and_end():
    opt = _opt(2.0)
    sched = WarmupCosineLR(opt, max_iter=8, warmup_factor=1.0, warmup_iters=0)
    lrs = _lrs(opt, sched, 8)
    expected = [2.0 * 0.5 * (1 + math.cos(math.pi * i / 8)) for i in range(8)]
    assert lrs == pytest.approx(expected)
    assert lrs[4] == pytest.approx(1.0)  # half way: half the lr
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)  # at max_iter: 0


def test_multistep_resume_from_state_dict_is_exact():
    opt = _opt(0.1)
    full = WarmupMultiStepLR(opt, milestones=[5, 7], max_iter=10, warmup_iters=3)
    ref = _lrs(opt, full, 10)
    opt1 = _opt(0.1)
    first = WarmupMultiStepLR(opt1, milestones=[5, 7], max_iter=10, warmup_iters=3)
    head = _lrs(opt1, first, 6)
    state = first.state_dict()
    assert set(state) == {"base_lrs", "last_epoch"}
    opt2 = _opt(0.1)
    second = WarmupMultiStepLR(opt2, milestones=[5, 7], max_iter=10, warmup_iters=3)
    second.load_state_dict(state)
    assert head + _lrs(opt2, second, 4) == ref


def test_milestones_checked():
    with pytest.raises(ValueError, match="milestones"):
        WarmupMultiStepLR(_opt(), milestones=[5, 12], max_iter=10)
    with pytest.raises(ValueError, match="milestones"):
        WarmupMultiStepLR(_opt(), milestones=[5, 5], max_iter=20)
    with pytest.raises(ValueError, match="warmup"):
        WarmupMultiStepLR(_opt(), milestones=[5], max_iter=20, warmup_method="exp")


def test_plateau_divides_by_10_after_patience_and_resumes():
    opt = _opt(0.1)
    sched = WarmupPlateauLR(
        opt, max_iter=100, metric="top1_err", mode="min", gamma=0.1, patience=1, warmup_iters=0
    )
    lr = lambda: opt.param_groups[0]["lr"]  # noqa: E731
    sched.report(50.0, iteration=9)
    assert lr() == pytest.approx(0.1)
    sched.report(40.0, iteration=19)  # better
    sched.report(40.0, iteration=29)  # 1 bad evaluation: within patience
    assert lr() == pytest.approx(0.1)
    state = sched.state_dict()
    sched.report(41.0, iteration=39)  # 2 bad > patience 1: divide by 10
    assert lr() == pytest.approx(0.01)
    for _ in range(5):
        opt.step()
        sched.step()  # iteration steps keep the reduced rate
    assert lr() == pytest.approx(0.01)

    opt2 = _opt(0.1)
    again = WarmupPlateauLR(opt2, max_iter=100, metric="top1_err", patience=1, warmup_iters=0)
    again.load_state_dict(state)
    again.report(41.0, iteration=39)
    assert opt2.param_groups[0]["lr"] == pytest.approx(0.01)
    assert again.last_report_iter == 39


def test_plateau_mode_max():
    opt = _opt(1.0)
    sched = WarmupPlateauLR(
        opt, max_iter=10, metric="bbox/AP", mode="max", patience=0, warmup_iters=0
    )
    sched.report(10.0)
    sched.report(20.0)
    assert opt.param_groups[0]["lr"] == pytest.approx(1.0)
    sched.report(19.0)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1)


def test_build_sgd_groups_norm_decay_and_frozen():
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.GroupNorm(2, 4), nn.Conv2d(4, 4, 1)
    )
    model[3].weight.requires_grad_(False)  # frozen: not optimized
    opt = build_sgd(
        model, base_lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4, weight_decay_norm=0.0
    )
    assert len(opt.param_groups) == 2
    decay, norm = opt.param_groups
    assert decay["weight_decay"] == 1e-4 and norm["weight_decay"] == 0.0
    ids = lambda ps: {id(p) for p in ps}  # noqa: E731
    assert ids(decay["params"]) == ids([model[0].weight, model[0].bias, model[3].bias])
    assert ids(norm["params"]) == ids(
        [model[1].weight, model[1].bias, model[2].weight, model[2].bias]
    )
    assert all(g["momentum"] == 0.9 and g["nesterov"] and g["lr"] == 0.1 for g in opt.param_groups)


def test_no_decay_on_norm_changes_the_update():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 3), nn.LayerNorm(3))
    opt = build_sgd(model, base_lr=1.0, momentum=0.0, weight_decay=0.5, weight_decay_norm=0.0)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    w, g = model[0].weight.detach().clone(), model[1].weight.detach().clone()
    opt.step()
    assert torch.allclose(model[0].weight, w * 0.5)  # decayed: w - lr * wd * w
    assert torch.equal(model[1].weight, g)  # norm scale untouched


def test_builders_from_cfg():
    cfg = get_cfg()
    cfg.merge_from_list(
        [
            "SOLVER.BASE_LR",
            "0.2",
            "SOLVER.MAX_ITER",
            "20",
            "SOLVER.STEPS",
            "(10,)",
            "SOLVER.WARMUP_ITERS",
            "0",
        ]
    )
    model = nn.Linear(2, 2)
    opt = build_optimizer(cfg, model)
    sched = build_lr_scheduler(cfg, opt)
    assert isinstance(sched, WarmupMultiStepLR)
    lrs = _lrs(opt, sched, 12)
    assert lrs[9] == pytest.approx(0.2) and lrs[10] == pytest.approx(0.02)
    cfg.merge_from_list(["SOLVER.LR_SCHEDULER_NAME", "WarmupCosineLR"])
    assert isinstance(build_lr_scheduler(cfg, build_optimizer(cfg, model)), WarmupCosineLR)
    cfg.merge_from_list(["SOLVER.LR_SCHEDULER_NAME", "ReduceLROnPlateau"])
    with pytest.raises(ValueError, match="SOLVER.PLATEAU_METRIC"):
        build_lr_scheduler(cfg, build_optimizer(cfg, model))
    cfg.merge_from_list(["SOLVER.PLATEAU_METRIC", "top1_err", "TEST.EVAL_PERIOD", "5"])
    assert isinstance(build_lr_scheduler(cfg, build_optimizer(cfg, model)), WarmupPlateauLR)
