"""Every listed model builds, runs forward and backward, and reports its feature shapes."""

import pytest
import torch

from resnet_det import create_model, list_models
from resnet_det.modeling import ShapeSpec

pytestmark = pytest.mark.usefixtures("single_thread")

# 1202 / 1001 layers: forward only in CI, backward in the slow suite.
HUGE = {"resnet1202_cifar", "preact_resnet1001_cifar"}


def _feature_names(name):
    if name.startswith("vgg"):
        return [f"vgg_conv{k}" for k in range(1, 6)]
    if name.endswith("_cifar"):
        return ["stem", "res2", "res3", "res4"]
    return ["stem", "res2", "res3", "res4", "res5"]


def _check_forward_backward(model, num_classes, side=16):
    # Train mode (BN batch statistics), batch 2 at 16x16: res5 is 1x1, enough for BN.
    logits = model(torch.randn(2, 3, side, side))
    assert logits.shape == (2, num_classes)
    logits.sum().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def _check_output_shape(name):
    # Backbone mode on the meta device: real shapes of every feature, no arithmetic.
    names = _feature_names(name)
    with torch.device("meta"):
        backbone = create_model(name, num_classes=None, out_features=names)
        feats = backbone(torch.empty(1, 3, 64, 64))
    shapes = backbone.output_shape()
    assert list(feats) == names == list(shapes)
    for fname, feat in feats.items():
        spec = shapes[fname]
        assert isinstance(spec, ShapeSpec)
        assert feat.shape[1] == spec.channels
        assert feat.shape[-1] == 64 // spec.stride, fname


@pytest.mark.parametrize("name", [n for n in list_models() if n not in HUGE])
def test_forward_backward_and_output_shape(name):
    torch.manual_seed(0)
    # VGG's five 2x2 pools need 32 pixels; plain nets' vanishing gradients are denormal
    # floats, which are very slow on CPUs unless flushed to zero.
    side = 32 if name.startswith("vgg") else 16
    torch.set_flush_denormal(True)
    try:
        _check_forward_backward(create_model(name), 10 if name.endswith("_cifar") else 1000, side)
    finally:
        torch.set_flush_denormal(False)
    _check_output_shape(name)


def test_imagenet_feature_strides():
    backbone = create_model(
        "resnet50", num_classes=None, out_features=["stem", "res2", "res3", "res4", "res5"]
    )
    assert {k: v.stride for k, v in backbone.output_shape().items()} == {
        "stem": 4,
        "res2": 4,
        "res3": 8,
        "res4": 16,
        "res5": 32,
    }
    assert backbone.output_shape()["res5"].channels == 2048


@pytest.mark.parametrize("name", ["resnet50", "resnet18"])
def test_res5_dilation_keeps_stride_16(name):
    backbone = create_model(
        name, num_classes=None, out_features=["res4", "res5"], res5_dilation=2
    ).eval()
    assert backbone.output_shape()["res5"].stride == 16
    with torch.no_grad():
        feats = backbone(torch.randn(1, 3, 96, 96))
    assert feats["res5"].shape[-2:] == feats["res4"].shape[-2:] == (6, 6)


def test_stages_after_last_requested_are_not_built():
    backbone = create_model("resnet50", num_classes=None, out_features=["res3"])
    assert hasattr(backbone, "res3") and not hasattr(backbone, "res4")
    assert not hasattr(backbone, "linear")
    assert list(backbone.output_shape()) == ["res3"]


def test_vgg_conv5_is_stride_16_without_pool5():
    backbone = create_model("vgg16", num_classes=None).eval()
    assert backbone.output_shape() == {"vgg_conv5": ShapeSpec(channels=512, stride=16)}
    with torch.no_grad():
        out = backbone(torch.randn(1, 3, 64, 80))
    assert out["vgg_conv5"].shape == (1, 512, 4, 5)
    names = [n for n, _ in backbone.named_parameters()]
    assert "vgg_block5.conv5_3.weight" in names and not any(n.startswith("fc") for n in names)


@pytest.mark.parametrize("name", sorted(HUGE))
def test_huge_cifar_nets_cheap_forward_and_output_shape(name):
    # CI version of the 1202/1001-layer check: forward only, at 8x8 (backward is slow), in
    # train mode so that BN keeps the untrained activations bounded.
    names = _feature_names(name)
    with torch.no_grad():
        assert create_model(name)(torch.randn(2, 3, 8, 8)).shape == (2, 10)
        backbone = create_model(name, num_classes=None, out_features=names)
        feats = backbone(torch.randn(2, 3, 8, 8))
    for fname, spec in backbone.output_shape().items():
        assert feats[fname].shape[1:] == (spec.channels, 8 // spec.stride, 8 // spec.stride)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(HUGE))
def test_huge_cifar_nets_forward_backward(name):
    model = create_model(name)
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
