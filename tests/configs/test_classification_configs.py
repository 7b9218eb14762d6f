"""The ImageNet and CIFAR-10 configs cite only numbers their own settings target, and build the
nets those numbers belong to (He et al. 2015, Tables 2, 3 and 6; He et al. 2016, Table 4)."""

import glob
import os
import re

import pytest
import torch
from torch import nn

import resnet_det
from resnet_det.config import get_cfg
from resnet_det.modeling import build_classifier

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CONFIGS = sorted(
    os.path.relpath(p, ROOT)
    for sub in ("imagenet", "cifar10")
    for p in glob.glob(os.path.join(ROOT, "configs", sub, "*.yaml"))
)

# The papers' numbers, each with the net and shortcut option it was measured on (None: a
# plain net, no shortcuts). Table 2 (10-crop top-1) and Table 3 (10-crop top-1 / top-5) on
# ImageNet val; Table 6 on CIFAR-10 test; preact: He et al. 2016, Table 4.
PAPER_NUMBERS = {
    ("plain18", None): ("27.94",),
    ("resnet18", "A"): ("27.88",),
    ("plain34", None): ("28.54", "10.02"),
    ("resnet34", "A"): ("25.03", "7.76"),
    ("resnet34", "B"): ("24.52", "7.46"),
    ("resnet34", "C"): ("24.19", "7.40"),
    ("resnet50", "B"): ("22.85", "6.71"),
    ("resnet101", "B"): ("21.75", "6.05"),
    ("resnet152", "B"): ("21.43", "5.71"),
    ("resnet20_cifar", "A"): ("8.75",),
    ("resnet32_cifar", "A"): ("7.51",),
    ("resnet44_cifar", "A"): ("7.17",),
    ("resnet56_cifar", "A"): ("6.97",),
    ("resnet110_cifar", "A"): ("6.43", "6.61"),
    ("resnet1202_cifar", "A"): ("7.93",),
    ("preact_resnet1001_cifar", "B"): ("4.92", "4.89"),
}


def _cfg(path):
    cfg = get_cfg()
    cfg.merge_from_file(os.path.join(ROOT, path))
    return cfg


def _setting(cfg):
    arch = cfg.MODEL.CLASSIFIER.ARCH
    return arch, (None if arch.startswith("plain") else cfg.MODEL.RESNETS.SHORTCUT)


def _cited(path):
    """Two-decimal numbers in the file's comments (the papers' errors are written so)."""
    comments = " ".join(
        line.split("#", 1)[1] for line in open(os.path.join(ROOT, path)) if "#" in line
    )
    return set(re.findall(r"(?<![\d.])\d+\.\d\d(?![\d.])", comments))


@pytest.mark.parametrize("path", CONFIGS)
def test_numbers_cited_for_a_net_are_its_own_settings(path):
    arch, shortcut = _setting(_cfg(path))
    cited = _cited(path)
    for (other_arch, other_shortcut), numbers in PAPER_NUMBERS.items():
        # Numbers of another net are a comparison; of the same net, they must be this option's.
        if other_arch == arch and other_shortcut != shortcut:
            assert not cited & set(numbers), (
                f"{path} builds {arch} with shortcut {shortcut} but cites "
                f"{sorted(cited & set(numbers))}, "
                f"measured with shortcut {other_shortcut}"
            )
    # A config that quotes the papers at all quotes its own net's result (bases and the modern
    # recipe quote none).
    own = PAPER_NUMBERS.get((arch, shortcut))
    if own is not None and cited & {n for numbers in PAPER_NUMBERS.values() for n in numbers}:
        assert own[0] in cited, (
            f"{path} builds {arch} ({shortcut}) and should cite its result {own[0]}"
        )


@pytest.mark.parametrize("path", [p for p in CONFIGS if os.sep + "cifar10" + os.sep in p])
def test_cifar_configs_train_on_the_50k_training_set_and_test_on_the_test_set(path):
    # Sec. 4.2: "trained on the training set and evaluated on the test set"; the 45k/5k split
    # only fixed the schedule.
    cfg = _cfg(path)
    assert list(cfg.DATASETS.TRAIN) == ["cifar10_trainval"] and list(cfg.DATASETS.TEST) == [
        "cifar10_test"
    ]
    assert (
        cfg.SOLVER.IMS_PER_BATCH,
        cfg.SOLVER.BASE_LR,
        list(cfg.SOLVER.STEPS),
        cfg.SOLVER.MAX_ITER,
    ) == (128, 0.1, [32000, 48000], 64000)


def _num_params(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("depth", [18, 34])
def test_table2_resnets_have_exactly_the_parameters_of_their_plain_nets(single_thread, depth):
    # Sec. 4.1 on Table 2: option A "so they have no extra parameter compared to the plain
    # counterparts".
    resnet = build_classifier(_cfg(f"configs/imagenet/resnet{depth}.yaml"))
    plain = build_classifier(_cfg(f"configs/imagenet/plain{depth}.yaml"))
    assert _num_params(resnet) == _num_params(plain)
    option_b = build_classifier(_cfg("configs/imagenet/resnet34_shortcut_B.yaml"))
    if depth == 34:
        assert _num_params(option_b) > _num_params(resnet)


def _layout(net):
    """(parameter and buffer names with shapes, {conv name: stride}) of a network."""
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    strides = {n: m.stride for n, m in net.named_modules() if isinstance(m, nn.Conv2d)}
    return shapes, strides


@pytest.fixture(scope="module")
def preact1001():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        from_config = build_classifier(_cfg("configs/cifar10/preact_resnet1001.yaml")).net
        from_api = resnet_det.create_model("preact_resnet1001_cifar")
    finally:
        torch.set_num_threads(previous)
    return _layout(from_config), _layout(from_api)


def test_preact_resnet1001_config_builds_the_authors_layout(preact1001):
    # github.com/KaimingHe/resnet-1k-layers, resnet-pre-act.lua: in a unit that halves the size,
    # the first 1x1 carries the stride and a strided 1x1 conv is the shortcut.
    (shapes, strides), _ = preact1001
    for stage in ("res3", "res4"):
        assert strides[f"{stage}.0.conv1"] == (2, 2) and strides[f"{stage}.0.conv2"] == (1, 1)
        assert strides[f"{stage}.0.shortcut"] == (2, 2)
    assert (
        shapes["res4.110.conv3.weight"] == (256, 64, 1, 1) and "res4.111.conv1.weight" not in shapes
    )


def test_preact_resnet1001_config_and_api_have_the_same_parameters(preact1001):
    (config_shapes, _), (api_shapes, _) = preact1001
    assert config_shapes == api_shapes


def test_preact_resnet1001_config_and_api_put_the_strides_in_the_same_convs(preact1001):
    (_, config_strides), (_, api_strides) = preact1001
    differ = sorted(n for n in config_strides if config_strides[n] != api_strides[n])
    assert not differ, f"strides differ in {differ}"
