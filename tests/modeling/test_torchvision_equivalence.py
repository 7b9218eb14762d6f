"""Same logits as torchvision (random torchvision weights loaded with load_weights).

torchvision's ResNets put the stride in the 3x3 conv ("v1.5"), so ours are built with
stride_in_1x1=False here; the paper's layout (the default) differs only in that.
"""

import pytest
import torch
import torchvision

from resnet_det import create_model, load_weights

pytestmark = pytest.mark.usefixtures("single_thread")


def _randomize_norms(model):
    # Non-trivial BN statistics and affine, so a wrongly mapped norm cannot pass.
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            with torch.no_grad():
                c = m.num_features
                m.running_mean.copy_(torch.rand(c, generator=g) - 0.5)
                m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
                m.weight.copy_(torch.rand(c, generator=g) + 0.5)
                m.bias.copy_(torch.rand(c, generator=g) - 0.5)


@pytest.mark.parametrize(
    "name,side",
    [
        ("resnet18", 64),
        ("resnet34", 64),
        ("resnet50", 64),
        ("resnet101", 32),
        ("resnet152", 32),
        ("resnext50_32x4d", 64),
        ("wide_resnet50_2", 32),
        ("vgg16", 32),
    ],
)
def test_same_logits_as_torchvision(name, side):
    torch.manual_seed(0)
    theirs = getattr(torchvision.models, name)().eval()
    _randomize_norms(theirs)
    kwargs = {} if name.startswith("vgg") else {"stride_in_1x1": False}
    ours = create_model(name, **kwargs).eval()
    result = load_weights(ours, theirs.state_dict())
    assert result.layout == "torchvision"
    assert result.missing_keys == [] and result.unexpected_keys == []
    x = torch.randn(1, 3, side, side)
    with torch.no_grad():
        expected, got = theirs(x), ours(x)
    assert got.shape == (1, 1000)
    assert (got - expected).abs().max().item() < 1e-4


def test_paper_layout_differs_from_torchvision_only_by_stride_position():
    theirs = torchvision.models.resnet50().eval()
    paper = create_model("resnet50").eval()  # stride_in_1x1=True
    load_weights(paper, theirs.state_dict())  # same shapes, so it loads ...
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert (paper(x) - theirs(x)).abs().max().item() > 1e-3  # ... but computes otherwise
    assert paper.res3[0].conv1.stride == (2, 2) and paper.res3[0].conv2.stride == (1, 1)
