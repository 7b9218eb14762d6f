"""FLOPs and parameter counts against the paper (fvcore counts a multiply-add as one flop,
which is the paper's FLOP; the paper counts conv and fc layers: ``conv_fc_flops``)."""

import pytest
import torch

from resnet_det import create_model
from resnet_det.modeling.statistics import family_table, format_table, model_statistics

pytestmark = pytest.mark.usefixtures("single_thread")


# Table 1, 224x224, paper layout (stride in the first 1x1 of a bottleneck: the default).
@pytest.mark.parametrize(
    "name,paper_gflops",
    [
        ("resnet18", 1.8),
        ("resnet34", 3.6),
        ("resnet50", 3.8),
        ("resnet101", 7.6),
        ("resnet152", 11.3),
        ("vgg16", 15.3),
    ],
)
def test_flops_match_table_1(name, paper_gflops):
    stats = model_statistics(create_model(name), 224)
    assert stats["conv_fc_flops"] / 1e9 == pytest.approx(paper_gflops, rel=0.03)
    # fvcore's total adds norm/pool ops on top, under 1% for these nets.
    assert stats["conv_fc_flops"] <= stats["flops"] <= stats["conv_fc_flops"] * 1.01
    assert stats["input_size"] == (3, 224, 224)


def test_stride_in_3x3_costs_more_flops():
    # torchvision's layout does the 3x3 at full resolution in each stage's first block.
    paper = model_statistics(create_model("resnet50"), 112)["conv_fc_flops"]
    tv = model_statistics(create_model("resnet50", stride_in_1x1=False), 112)["conv_fc_flops"]
    assert tv > paper * 1.04


def test_one_pass_counts_equal_fvcore_analyses():
    from fvcore.nn import ActivationCountAnalysis, FlopCountAnalysis

    model = create_model("resnet20_cifar").eval()
    x = torch.zeros(1, 3, 32, 32)
    stats = model_statistics(model, 32)
    assert stats["flops"] == FlopCountAnalysis(model, x).total()
    assert stats["flops_by_operator"] == dict(FlopCountAnalysis(model, x).by_operator())
    assert stats["activations"] == ActivationCountAnalysis(model, x).total()


def test_statistics_fields_and_restores_mode():
    model = create_model("resnet20_cifar", in_channels=1)
    model.train()
    stats = model_statistics(model, 32)
    assert model.training
    assert stats["input_size"] == (1, 32, 32)
    assert stats["params"] == sum(p.numel() for p in model.parameters())
    assert stats["trainable_params"] == stats["params"]
    assert stats["activations"] > 0 and "conv" in stats["flops_by_operator"]
    # Sec. 4.2: ResNet-20's convs on 32x32 inputs, about 41M multiply-adds.
    assert 35e6 < stats["conv_fc_flops"] < 45e6
    with pytest.raises(ValueError, match="input_size"):
        model_statistics(model, (1, 2, 3, 4))


def test_frozen_parameters_not_trainable():
    stats = model_statistics(create_model("resnet18", freeze_at=2), 64)
    assert stats["trainable_params"] < stats["params"]


def test_family_table_and_format():
    rows = family_table(["resnet20_cifar", "plain20_cifar"])
    assert [r["model"] for r in rows] == ["resnet20_cifar", "plain20_cifar"]
    assert rows[0]["input"] == "32x32"
    assert rows[0]["params_m"] == pytest.approx(0.27, rel=0.02)
    assert rows[0]["params_m"] == rows[1]["params_m"]  # option A is parameter-free
    text = format_table(rows)
    lines = text.splitlines()
    assert len(lines) == 4 and "GFLOPs" in lines[0]
    assert "resnet20_cifar" in lines[2] and "0.27" in lines[2]
