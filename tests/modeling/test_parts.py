"""Stems, blocks, shortcuts, norms, freezing, zero-init, the res5 head."""

import pytest
import torch
from torch import nn

from resnet_det import create_model
from resnet_det.modeling import (
    BasicBlock,
    BottleneckBlock,
    Conv2dNorm,
    FrozenBatchNorm2d,
    ShortcutA,
    build_res5_head,
    build_resnet,
    get_norm,
)
from resnet_det.modeling.layers import convert_frozen_batchnorm

pytestmark = pytest.mark.usefixtures("single_thread")


def test_detectron2_parameter_names():
    names = set(create_model("resnet50").state_dict())
    for key in [
        "stem.conv1.weight",
        "stem.conv1.norm.running_var",
        "res2.0.conv1.weight",
        "res2.0.conv3.norm.bias",
        "res2.0.shortcut.weight",
        "res2.0.shortcut.norm.weight",
        "res5.2.conv2.weight",
        "linear.weight",
        "linear.bias",
    ]:
        assert key in names, key
    assert "res2.1.shortcut.weight" not in names  # option B: identity where shapes agree
    vgg = set(create_model("vgg16").state_dict())
    assert {
        "vgg_block1.conv1_1.weight",
        "vgg_block5.conv5_3.bias",
        "fc6.weight",
        "fc7.weight",
        "fc8.weight",
    } <= vgg


def test_shortcut_a_pads_zeros_and_subsamples():
    sc = ShortcutA(4, 8, stride=2)
    x = torch.randn(2, 4, 7, 7)
    y = sc(x)
    assert y.shape == (2, 8, 4, 4)
    assert torch.equal(y[:, :4], x[:, :, ::2, ::2])
    assert torch.count_nonzero(y[:, 4:]) == 0
    assert list(sc.parameters()) == []


@pytest.mark.parametrize(
    "shortcut,expected", [("A", ShortcutA), ("B", Conv2dNorm), ("C", Conv2dNorm)]
)
def test_shortcut_options_in_blocks(shortcut, expected):
    down = BasicBlock(16, 32, stride=2, shortcut=shortcut)
    same = BasicBlock(32, 32, shortcut=shortcut)
    assert isinstance(down.shortcut, expected)
    assert (same.shortcut is not None) == (shortcut == "C")
    assert down(torch.randn(2, 16, 8, 8)).shape == (2, 32, 4, 4)


def test_plain_block_has_no_shortcut_and_no_addition():
    block = BasicBlock(8, 8, residual=False).eval()
    nn.init.zeros_(block.conv2.weight)  # residual branch -> BN(0) = bias 0: output relu(0)
    with torch.no_grad():
        assert torch.count_nonzero(block(torch.rand(1, 8, 4, 4))) == 0
    assert block.shortcut is None


def test_stride_in_1x1_position():
    paper = BottleneckBlock(64, 256, bottleneck_channels=64, stride=2, stride_in_1x1=True)
    tv = BottleneckBlock(64, 256, bottleneck_channels=64, stride=2, stride_in_1x1=False)
    assert paper.conv1.stride == (2, 2) and paper.conv2.stride == (1, 1)
    assert tv.conv1.stride == (1, 1) and tv.conv2.stride == (2, 2)


@pytest.mark.parametrize(
    "norm,cls",
    [
        ("BN", nn.BatchNorm2d),
        ("FrozenBN", FrozenBatchNorm2d),
        ("SyncBN", nn.SyncBatchNorm),
        ("GN", nn.GroupNorm),
    ],
)
def test_norms(norm, cls):
    model = create_model("resnet18", norm=norm)
    assert isinstance(model.res2[0].conv1.norm, cls)
    assert model.res2[0].conv1.bias is None
    if norm == "GN":
        assert model.res2[0].conv1.norm.num_groups == 32
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 32, 32)).shape == (1, 1000)


def test_norm_none_gives_conv_biases():
    model = create_model("resnet18", norm="none")
    assert model.res2[0].conv1.norm is None and model.res2[0].conv1.bias is not None
    assert get_norm("none", 8) is None


def test_he_init():
    conv = create_model("resnet50").res4[0].conv2
    fan_out = conv.out_channels * conv.kernel_size[0] * conv.kernel_size[1]
    assert conv.weight.std().item() == pytest.approx((2.0 / fan_out) ** 0.5, rel=0.05)


def test_zero_init_residual_zeroes_last_gamma():
    model = create_model("resnet50", zero_init_residual=True)
    for stage in model.stages:
        for block in stage:
            assert torch.count_nonzero(block.conv3.norm.weight) == 0
            assert torch.count_nonzero(block.conv1.norm.weight) > 0
    basic = create_model("resnet18", zero_init_residual=True)
    assert torch.count_nonzero(basic.res3[1].conv2.norm.weight) == 0
    # Each block then starts as its shortcut: relu(x) for an identity block.
    block = basic.res3[1].eval()
    x = torch.randn(1, 128, 4, 4)
    with torch.no_grad():
        assert torch.allclose(block(x), torch.relu(x))


def test_freeze_2_freezes_stem_and_res2():
    model = create_model("resnet50").eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        before = model(x)
    assert model.freeze(2) is model
    for part in (model.stem, model.res2):
        assert all(not p.requires_grad for p in part.parameters())
        norms = [m for m in part.modules() if isinstance(m, (nn.BatchNorm2d, FrozenBatchNorm2d))]
        assert norms and all(isinstance(m, FrozenBatchNorm2d) for m in norms)
    assert all(p.requires_grad for p in model.res3.parameters())
    assert isinstance(model.res3[0].conv1.norm, nn.BatchNorm2d)
    with torch.no_grad():
        assert torch.allclose(model(x), before, atol=1e-5)  # frozen BN == BN in eval


def test_freeze_at_constructor_and_frozen_bn_state_dict_names():
    model = build_resnet(depth=18, freeze_at=1)
    assert isinstance(model.stem.conv1.norm, FrozenBatchNorm2d)
    keys = set(model.state_dict())
    assert "stem.conv1.norm.running_mean" in keys
    assert "stem.conv1.norm.num_batches_tracked" not in keys


def test_convert_frozen_batchnorm_keeps_statistics():
    bn = nn.BatchNorm2d(4)
    bn.running_mean.uniform_()
    bn.running_var.uniform_(1, 2)
    frozen = convert_frozen_batchnorm(nn.Sequential(bn))[0]
    assert isinstance(frozen, FrozenBatchNorm2d)
    assert torch.equal(frozen.running_var, bn.running_var)
    x = torch.randn(2, 4, 3, 3)
    assert torch.allclose(frozen(x), bn.eval()(x), atol=1e-6)


def test_res5_head_matches_backbone_res5():
    head = build_res5_head(depth=50, norm="BN")
    assert head.out_channels == 2048 and len(head) == 3
    assert head[0].conv1.in_channels == 1024 and head[0].stride == 2
    backbone_res5 = build_resnet(depth=50).res5
    assert {k: v.shape for k, v in head.state_dict().items()} == {
        k: v.shape for k, v in backbone_res5.state_dict().items()
    }
    head.eval()
    assert head(torch.randn(2, 1024, 14, 14)).shape == (2, 2048, 7, 7)
    small = build_res5_head(depth=18)
    assert small.out_channels == 512 and small[0].conv1.in_channels == 256
    assert isinstance(small[0].conv1.norm, FrozenBatchNorm2d)  # detection default


def test_in_channels_and_num_classes_overrides():
    model = create_model("resnet18", in_channels=1, num_classes=7).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, 32, 32)).shape == (1, 7)
    cifar = create_model("resnet20_cifar", num_classes=100).eval()
    with torch.no_grad():
        assert cifar(torch.randn(1, 3, 32, 32)).shape == (1, 100)


def test_cifar_structure_matches_section_4_2():
    model = create_model("resnet56_cifar")
    assert model.stem.conv1.kernel_size == (3, 3) and model.stem.conv1.out_channels == 16
    assert [len(s) for s in model.stages] == [9, 9, 9]
    assert [s[-1].out_channels for s in model.stages] == [16, 32, 64]
    assert isinstance(model.res3[0].shortcut, ShortcutA)
    assert {
        k: v.stride
        for k, v in create_model(
            "resnet20_cifar", num_classes=None, out_features=["res2", "res3", "res4"]
        )
        .output_shape()
        .items()
    } == {"res2": 1, "res3": 2, "res4": 4}


def test_resnext_and_wide_widths():
    rx = create_model("resnext50_32x4d")
    assert rx.res2[0].conv2.groups == 32 and rx.res2[0].conv2.out_channels == 128
    wide = create_model("wide_resnet50_2")
    assert wide.res2[0].conv2.out_channels == 128 and wide.res2[0].conv3.out_channels == 256
