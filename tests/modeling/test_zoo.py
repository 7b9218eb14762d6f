"""Model names, parameter counts against torchvision and the paper, and argument errors."""

import pytest
import torch
import torchvision

import resnet_det
from resnet_det.modeling import build_resnet, create_model
from resnet_det.modeling.cifar import CifarResNet
from resnet_det.modeling.vgg import VGG

pytestmark = pytest.mark.usefixtures("single_thread")

ALL_NAMES = [
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnet200",
    "plain18",
    "plain34",
    "plain50",
    "plain101",
    "plain152",
    "resnext50_32x4d",
    "resnext101_32x8d",
    "wide_resnet50_2",
    "wide_resnet101_2",
    "vgg16",
    "vgg19",
    "resnet20_cifar",
    "resnet32_cifar",
    "resnet44_cifar",
    "resnet56_cifar",
    "resnet110_cifar",
    "resnet1202_cifar",
    "plain20_cifar",
    "plain32_cifar",
    "plain44_cifar",
    "plain56_cifar",
    "plain110_cifar",
    "preact_resnet110_cifar",
    "preact_resnet1001_cifar",
]


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def test_list_models_is_the_design_list():
    assert sorted(resnet_det.list_models()) == sorted(ALL_NAMES)
    assert resnet_det.create_model is create_model


TORCHVISION_NAMES = [
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnext50_32x4d",
    "resnext101_32x8d",
    "wide_resnet50_2",
    "wide_resnet101_2",
    "vgg16",
    "vgg19",
]


@pytest.mark.parametrize("name", TORCHVISION_NAMES)
def test_param_count_equals_torchvision(name):
    # Built on the meta device: only shapes matter here, and it skips the init cost.
    with torch.device("meta"):
        ours = create_model(name)
        theirs = getattr(torchvision.models, name)()
    assert n_params(ours) == n_params(theirs)
    assert len(list(ours.parameters())) == len(list(theirs.parameters()))


# Table 6 of the paper (CIFAR-10 parameter counts).
@pytest.mark.parametrize(
    "name,paper_m",
    [
        ("resnet20_cifar", 0.27),
        ("resnet32_cifar", 0.46),
        ("resnet44_cifar", 0.66),
        ("resnet56_cifar", 0.85),
        ("resnet110_cifar", 1.7),
        ("resnet1202_cifar", 19.4),
    ],
)
def test_cifar_param_counts_match_paper(name, paper_m):
    with torch.device("meta"):
        model = create_model(name)
    assert n_params(model) / 1e6 == pytest.approx(paper_m, rel=0.02)


@pytest.mark.parametrize("depth", [20, 32, 44, 56, 110])
def test_option_a_adds_no_parameter_to_the_plain_cifar_net(depth):
    with torch.device("meta"):
        res, plain = create_model(f"resnet{depth}_cifar"), create_model(f"plain{depth}_cifar")
    assert n_params(res) == n_params(plain)


def test_shortcut_options_param_order_resnet34():
    # Sec. 3.3 / Table 3: A is parameter-free, B adds projections where the shape changes,
    # C projects everywhere.
    with torch.device("meta"):
        counts = {s: n_params(create_model("resnet34", shortcut=s)) for s in "ABC"}
        plain = n_params(create_model("plain34"))
    assert counts["A"] == plain
    assert counts["A"] < counts["B"] < counts["C"]


def test_preact_1001_is_9n_plus_2_bottleneck():
    with torch.device("meta"):
        model = create_model("preact_resnet1001_cifar")
    assert [len(s) for s in model.stages] == [111, 111, 111]
    assert model.res2[0].conv3.out_channels == 64
    assert n_params(model) / 1e6 == pytest.approx(10.2, rel=0.03)


# ---------------------------------------------------------------- errors
def test_unknown_name_suggests_close_names():
    with pytest.raises(ValueError, match="name") as e:
        create_model("resnet5")
    assert "'resnet50'" in str(e.value)


def test_unknown_and_inapplicable_overrides():
    with pytest.raises(ValueError, match="foo"):
        create_model("resnet18", foo=1)
    with pytest.raises(ValueError, match="depth"):
        create_model("resnet18", depth=50)
    with pytest.raises(ValueError, match="shortcut"):
        create_model("plain18", shortcut="B")
    with pytest.raises(ValueError, match="groups"):
        create_model("resnet20_cifar", groups=2)


def test_depth_error_lists_valid_depths():
    with pytest.raises(ValueError, match="depth=42") as e:
        build_resnet(depth=42)
    assert "18, 34, 50, 101, 152, 200" in str(e.value)


def test_shortcut_error():
    with pytest.raises(ValueError, match="shortcut='D'"):
        create_model("resnet18", shortcut="D")


def test_basic_block_rejects_groups_and_width():
    with pytest.raises(ValueError, match="groups=32"):
        create_model("resnet18", groups=32)
    with pytest.raises(ValueError, match="width_per_group=128"):
        create_model("resnet34", width_per_group=128)


def test_norm_errors():
    with pytest.raises(ValueError, match="norm='LN'"):
        create_model("resnet18", norm="LN")
    # 16-channel CIFAR layers cannot be split into 32 groups.
    with pytest.raises(ValueError, match="norm='GN'"):
        create_model("resnet20_cifar", norm="GN")


def test_cifar_depth_errors():
    with pytest.raises(ValueError, match="depth=21"):
        CifarResNet(depth=21)
    with pytest.raises(ValueError, match="9n"):
        CifarResNet(depth=110 + 1, bottleneck=True)


@pytest.mark.parametrize(
    "kwargs,arg",
    [
        (dict(res5_dilation=3), "res5_dilation"),
        (dict(num_classes=None, out_features=["res6"]), "out_features"),
        (dict(out_features=["res4"]), "out_features"),  # features need num_classes=None
        (dict(freeze_at=6), "freeze_at"),
        (dict(num_classes=0), "num_classes"),
        (dict(in_channels=0), "in_channels"),
        (dict(stride_in_1x1="yes"), "stride_in_1x1"),
    ],
)
def test_argument_errors_name_the_argument(kwargs, arg):
    with pytest.raises(ValueError, match=arg):
        create_model("resnet50", **kwargs)


def test_vgg_errors():
    with pytest.raises(ValueError, match="depth=11"):
        VGG(depth=11)
    with pytest.raises(ValueError, match="out_features"):
        create_model("vgg16", num_classes=None, out_features=["res4"])


def test_zero_init_residual_needs_residual_blocks():
    with pytest.raises(ValueError, match="zero_init_residual"):
        create_model("plain18", zero_init_residual=True)


def test_import_is_light_and_never_imports_detectron2():
    import os
    import subprocess
    import sys

    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    code = (
        "import sys, resnet_det\n"
        "assert 'torch' not in sys.modules, 'import resnet_det imported torch'\n"
        "m = resnet_det.create_model('resnet20_cifar')\n"
        "assert callable(resnet_det.load_weights) and 'resnet18' in resnet_det.list_models()\n"
        "assert 'detectron2' not in sys.modules\n"
        "print('ok')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
