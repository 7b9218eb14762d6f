"""SOLVER.BIAS_LR_FACTOR / WEIGHT_DECAY_BIAS (detectron2's keys; Caffe's lr_mult 2 on biases):
biases get their own learning rate and decay, the schedule scales them like the others, and
the defaults keep the two groups (and optimizer checkpoints) of before."""

import pytest
import torch
from torch import nn

from resnet_det.config import get_cfg
from resnet_det.solver import build_lr_scheduler, build_optimizer, build_sgd, get_param_groups


def _model():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, 4, 1, bias=False))


def test_defaults_keep_two_groups():
    m = _model()
    groups = get_param_groups(m, weight_decay=1e-4, weight_decay_norm=0.0)
    assert [len(g["params"]) for g in groups] == [3, 2] and all("lr" not in g for g in groups)


def test_bias_groups_get_factor_and_decay():
    m = _model()
    opt = build_sgd(
        m,
        base_lr=0.01,
        weight_decay=5e-4,
        weight_decay_norm=0.0,
        bias_lr_factor=2.0,
        weight_decay_bias=0.0,
    )
    ids = lambda ps: {id(p) for p in ps}  # noqa: E731
    other, norm, bias, norm_bias = opt.param_groups
    assert ids(other["params"]) == ids([m[0].weight, m[2].weight])
    assert ids(norm["params"]) == ids([m[1].weight])
    assert ids(bias["params"]) == ids([m[0].bias]) and ids(norm_bias["params"]) == ids([m[1].bias])
    assert (other["lr"], other["weight_decay"]) == (0.01, 5e-4)
    assert (norm["lr"], norm["weight_decay"]) == (0.01, 0.0)
    assert (bias["lr"], bias["weight_decay"]) == (0.02, 0.0) and norm_bias["lr"] == 0.02
    # Factor 2 with the weights' decay: Caffe's lr_mult 2 on a bias with decay_mult 1.
    groups = get_param_groups(
        m, weight_decay=5e-4, weight_decay_norm=0.0, base_lr=0.01, bias_lr_factor=2.0
    )
    assert [(g["weight_decay"], g.get("lr")) for g in groups] == [
        (5e-4, None),
        (0.0, None),
        (5e-4, 0.02),
        (0.0, 0.02),
    ]
    with pytest.raises(ValueError, match="needs base_lr"):
        get_param_groups(m, weight_decay=0.0, weight_decay_norm=0.0, bias_lr_factor=2.0)


def test_from_config_and_scheduled():
    cfg = get_cfg()
    cfg.merge_from_list(
        [
            "SOLVER.BASE_LR",
            "0.001",
            "SOLVER.STEPS",
            "(2,)",
            "SOLVER.MAX_ITER",
            "4",
            "SOLVER.WARMUP_ITERS",
            "0",
            "SOLVER.BIAS_LR_FACTOR",
            "2.0",
            "SOLVER.WEIGHT_DECAY_BIAS",
            "0.0005",
            "SOLVER.WEIGHT_DECAY",
            "0.0005",
        ]
    )
    m = nn.Linear(2, 2)
    opt = build_optimizer(cfg, m)
    sched = build_lr_scheduler(cfg, opt)
    lrs = []
    for _ in range(4):
        lrs.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx([0.001, 0.002]) and lrs[3] == pytest.approx([0.0001, 0.0002])
    # One plain SGD step: the bias moves twice as far as the weight for the same gradient.
    m = nn.Linear(1, 1)
    with torch.no_grad():
        m.weight.zero_()
        m.bias.zero_()
    opt = build_optimizer(cfg, m)
    m.weight.grad, m.bias.grad = torch.ones(1, 1), torch.ones(1)
    opt.step()
    assert m.bias.item() == pytest.approx(2 * m.weight.item()) and m.weight.item() == pytest.approx(
        -0.001
    )
