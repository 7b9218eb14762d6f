"""Layer responses (Fig. 7): hooks on the 3x3 conv+BN outputs, std by hand."""

import numpy as np
import torch
import torch.nn.functional as F

import resnet_det
from resnet_det.modeling.layer_responses import (
    layer_response_stds,
    plot_layer_responses,
    response_layers,
)


def test_layers_are_the_3x3_convs_in_order():
    net = resnet_det.create_model("resnet20_cifar")
    names = [n for n, _ in response_layers(net)]
    # The CIFAR stem's 3x3 conv + 3 stages x 3 blocks x 2 convs = 19 layers (6n+1 for n = 3).
    assert len(names) == 19
    assert (
        names[0].startswith("stem")
        and names[1].endswith("0.conv1")
        and names[-1].endswith("2.conv2")
    )
    r18 = [n for n, _ in response_layers(resnet_det.create_model("resnet18"))]
    assert len(r18) == 16 and not any(
        "shortcut" in n for n in r18
    )  # the 7x7 stem and 1x1 projections excluded


def test_std_is_after_bn_before_addition_relu():
    torch.manual_seed(0)
    net = resnet_det.create_model("resnet20_cifar").eval()
    # Non-trivial BN statistics so "after BN" is distinguishable from the raw conv output.
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)
    x = [torch.randn(3, 3, 16, 16), torch.randn(2, 3, 16, 16)]
    names, stds = layer_response_stds(net, x)
    block = dict(net.named_modules())[names[5]]
    # By hand: the conv's output through its BN (no ReLU, no shortcut), std over everything.
    captured = []
    h = block.register_forward_hook(lambda m, i, o: captured.append(i[0]))
    with torch.no_grad():
        for b in x:
            net(b)
    h.remove()
    outs = [
        block.norm(F.conv2d(i, block.weight, block.bias, block.stride, block.padding))
        for i in captured
    ]
    flat = torch.cat([o.flatten() for o in outs]).double()
    assert np.isclose(stds[5], flat.std(unbiased=False).item(), rtol=1e-5)
    assert (flat < 0).any()  # pre-ReLU values included
    assert layer_response_stds(net, x, max_images=3)[1][5] != stds[5]


def test_plot_png(tmp_path):
    out = plot_layer_responses(
        [("plain-20", [1.0, 0.5, 2.0]), ("ResNet-20", [0.5, 0.2, 0.3])],
        str(tmp_path / "responses.png"),
    )
    import matplotlib.image as mpimg

    assert mpimg.imread(out).shape[0] > 100
