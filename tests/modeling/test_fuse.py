"""Folding FrozenBN / eval-mode BN into the preceding convolution (resnet_det.modeling.fuse)."""

import pytest
import torch
from torch import nn

from resnet_det.modeling.build import build_model
from resnet_det.modeling.fuse import fuse_conv_norms
from resnet_det.modeling.layers import Conv2dNorm, FrozenBatchNorm2d

from .detection._tiny import C4, FPN, synthetic_batch, tiny_cfg


def randomize_norm_statistics(model, seed=0):
    """Non-trivial statistics and affine parameters, so that a wrong fold shows; the last norm
    of each residual branch small, so that the random net's activations stay O(1) (large ones
    would make the box regression amplify float rounding beyond any fixed tolerance)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, (FrozenBatchNorm2d, nn.BatchNorm2d)):
                n = m.running_mean.numel()
                low, high = (0.05, 0.2) if name.endswith("conv2.norm") else (0.5, 1.5)
                m.weight.copy_(torch.empty(n).uniform_(low, high, generator=g))
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(torch.empty(n).uniform_(0.5, 1.5, generator=g))


@pytest.mark.parametrize(
    "base,norm", [(C4, "FrozenBN"), (FPN, "BN")], ids=["C4_FrozenBN", "FPN_BN"]
)
def test_fused_detector_matches_unfused(base, norm, single_thread):
    torch.manual_seed(0)
    model = build_model(
        tiny_cfg(
            base,
            "MODEL.RESNETS.NORM",
            norm,
            "MODEL.BACKBONE.FREEZE_AT",
            "0",
            "MODEL.ROI_HEADS.SCORE_THRESH_TEST",
            "0.0",
        )
    ).eval()
    randomize_norm_statistics(model)
    batch = [{"image": x["image"]} for x in synthetic_batch(2)]
    with torch.no_grad():
        expected = model(batch)
    norms_before = sum(isinstance(m, Conv2dNorm) and m.norm is not None for m in model.modules())
    folded = fuse_conv_norms(model)
    assert folded == norms_before > 0
    assert not any(isinstance(m, (FrozenBatchNorm2d, nn.BatchNorm2d)) for m in model.modules())
    with torch.no_grad():
        got = model(batch)
    for e, g in zip(expected, got):
        assert e["boxes"].shape[0] > 0
        assert torch.equal(e["labels"], g["labels"])
        torch.testing.assert_close(g["boxes"], e["boxes"], rtol=0, atol=1e-4)
        torch.testing.assert_close(g["scores"], e["scores"], rtol=0, atol=1e-4)


def test_fold_keeps_gn_and_refuses_training_mode():
    conv = Conv2dNorm(4, 32, 3, padding=1, bias=False, norm=nn.GroupNorm(32, 32))
    model = nn.Sequential(conv).eval()
    assert fuse_conv_norms(model) == 0 and isinstance(conv.norm, nn.GroupNorm)
    model.train()
    with pytest.raises(ValueError, match="training mode"):
        fuse_conv_norms(model)


@pytest.mark.parametrize("base", [C4, FPN], ids=["C4", "FPN"])
def test_fused_mask_rcnn_matches_unfused(base, single_thread):
    """Mask R-CNN too: C4's mask head runs the box head's res5 (folded once, used twice)."""
    torch.manual_seed(0)
    model = build_model(
        tiny_cfg(
            base,
            "MODEL.MASK_ON",
            "True",
            "MODEL.ROI_MASK_HEAD.CONV_DIM",
            "32",
            "MODEL.ROI_MASK_HEAD.NUM_CONV",
            "0" if base is C4 else "2",
            "MODEL.ROI_HEADS.SCORE_THRESH_TEST",
            "0.0",
        )
    ).eval()
    randomize_norm_statistics(model)
    batch = [{"image": x["image"]} for x in synthetic_batch(2)]
    with torch.no_grad():
        expected = model(batch)
    assert fuse_conv_norms(model) > 0
    assert not any(isinstance(m, FrozenBatchNorm2d) for m in model.modules())
    if base is C4:
        assert model.roi_heads.mask_head.res5 is model.roi_heads.box_head.res5
    with torch.no_grad():
        got = model(batch)
    for e, g in zip(expected, got):
        assert e["masks"].shape[0] > 0 and e["masks"].shape == g["masks"].shape
        torch.testing.assert_close(g["boxes"], e["boxes"], rtol=0, atol=1e-4)
        torch.testing.assert_close(g["masks"], e["masks"], rtol=0, atol=1e-4)
