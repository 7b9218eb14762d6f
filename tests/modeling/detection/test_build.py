"""build_model / build_backbone: the C4, FPN and VGG assemblies and config validation."""

import pytest
import torch
from torch import nn
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.models.detection.rpn import RegionProposalNetwork

from resnet_det.config import ConfigError
from resnet_det.modeling.build import build_backbone, build_model
from resnet_det.modeling.detection import (
    FastRCNNConvFCHead,
    FPNBackbone,
    GeneralizedRCNN,
    Res5BoxHead,
    SeededBalancedSampler,
    VGGFCHead,
)
from resnet_det.modeling.layers import FrozenBatchNorm2d
from resnet_det.modeling.resnet import ResNet, build_res5_head

from ._tiny import C4, FPN, VGG, tiny_cfg


def test_c4_uses_res5_box_head_from_build_res5_head():
    model = build_model(tiny_cfg(C4))
    assert isinstance(model, GeneralizedRCNN)
    assert isinstance(model.rpn, RegionProposalNetwork) and isinstance(model.roi_heads, RoIHeads)
    # The backbone stops at res4 (stride 16); res5 lives in the box head, as in the paper.
    assert isinstance(model.backbone, ResNet)
    assert model.backbone.output_shape()["res4"].stride == 16
    assert not hasattr(model.backbone, "res5")
    head = model.roi_heads.box_head
    assert isinstance(head, Res5BoxHead)
    ref = build_res5_head(depth=18, in_channels=256, norm="FrozenBN")
    keys = set(head.state_dict())
    assert keys == {f"res5.{k}" for k in ref.state_dict()}
    assert "roi_heads.box_head.res5.0.conv1.weight" in model.state_dict()
    # res5's first block has stride 2: the 14x14 RoI feature becomes 7x7 before pooling.
    assert model.roi_heads.box_roi_pool.output_size == (14, 14)
    assert head.res5(torch.zeros(2, 256, 14, 14)).shape == (2, 512, 7, 7)
    assert head(torch.zeros(2, 256, 14, 14)).shape == (2, 512)
    # 3 classes + background in torchvision's predictor.
    assert model.roi_heads.box_predictor.cls_score.out_features == 4
    assert isinstance(model.rpn.fg_bg_sampler, SeededBalancedSampler)
    assert isinstance(model.roi_heads.fg_bg_sampler, SeededBalancedSampler)


def test_fpn_levels_and_head():
    model = build_model(tiny_cfg(FPN))
    assert isinstance(model.backbone, FPNBackbone)
    shapes = model.backbone.output_shape()
    assert {k: v.stride for k, v in shapes.items()} == {
        "p2": 4,
        "p3": 8,
        "p4": 16,
        "p5": 32,
        "p6": 64,
    }
    feats = model.backbone(torch.zeros(1, 3, 128, 192))
    for name, f in feats.items():
        assert f.shape[1] == 64
        assert f.shape[-2:] == (128 // shapes[name].stride, 192 // shapes[name].stride)
    assert isinstance(model.roi_heads.box_head, FastRCNNConvFCHead)
    assert len(model.roi_heads.box_head.fcs) == 2
    assert model.size_divisibility == 64


def test_vgg_head_named_fc6_fc7():
    model = build_model(tiny_cfg(VGG))
    head = model.roi_heads.box_head
    assert isinstance(head, VGGFCHead)
    assert head.fc6.weight.shape == (64, 512 * 7 * 7) and head.fc7.weight.shape == (64, 64)
    assert model.roi_heads.box_roi_pool.pooler_type == "ROIPool"
    assert model.backbone.output_shape()["vgg_conv5"].stride == 16
    view = model.pretrained_view()
    assert {"fc6.weight", "fc7.bias", "vgg_block5.conv5_3.weight"} <= set(view.state_dict())


def test_frozen_bn_and_freeze_at():
    model = build_model(tiny_cfg(C4, "MODEL.RESNETS.NORM", "BN", "MODEL.BACKBONE.FREEZE_AT", "2"))
    bb = model.backbone
    for part in (bb.stem, bb.res2):
        assert all(not p.requires_grad for p in part.parameters())
        assert not any(isinstance(m, nn.BatchNorm2d) for m in part.modules())
        assert any(isinstance(m, FrozenBatchNorm2d) for m in part.modules())
    assert all(p.requires_grad for p in bb.res3.parameters())
    assert any(isinstance(m, nn.BatchNorm2d) for m in bb.res3.modules())
    # The paper's setting: FrozenBN everywhere, including the res5 box head.
    frozen = build_model(tiny_cfg(C4))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in frozen.modules())


def test_build_backbone_returns_named_features():
    bb = build_backbone(tiny_cfg(C4))
    out = bb(torch.zeros(1, 3, 64, 64))
    assert list(out) == ["res4"] and out["res4"].shape == (1, 256, 4, 4)


@pytest.mark.parametrize(
    "overrides,key",
    [
        (FPN + ["MODEL.ROI_HEADS.NAME", "Res5ROIHeads"], "MODEL.ROI_HEADS.NAME"),
        (VGG + ["MODEL.ROI_HEADS.NAME", "Res5ROIHeads"], "MODEL.ROI_HEADS.NAME"),
        (C4 + ["MODEL.ROI_HEADS.IN_FEATURES", "['res3']"], "MODEL.ROI_HEADS.IN_FEATURES"),
        (C4 + ["MODEL.RESNETS.DEPTH", "42"], "MODEL.RESNETS.DEPTH"),
        (C4 + ["MODEL.RPN.IN_FEATURES", "['res5']"], "MODEL.RPN.IN_FEATURES"),
        (FPN + ["MODEL.ANCHOR_GENERATOR.SIZES", "[[32], [64]]"], "MODEL.ANCHOR_GENERATOR.SIZES"),
        (FPN + ["MODEL.ROI_BOX_HEAD.NAME", "VGGFCHead"], "MODEL.ROI_BOX_HEAD.NAME"),
        (C4 + ["MODEL.ROI_BOX_HEAD.POOLER_TYPE", "ROIMagic"], "MODEL.ROI_BOX_HEAD.POOLER_TYPE"),
        (C4 + ["MODEL.RESNETS.RES2_OUT_CHANNELS", "256"], "MODEL.RESNETS.RES2_OUT_CHANNELS"),
    ],
)
def test_bad_combinations_name_the_key(overrides, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        build_model(tiny_cfg(overrides))


def test_proposal_min_size():
    # MODEL.PROPOSAL_GENERATOR.MIN_SIZE (detectron2's key, pixels of the network input): 0 keeps
    # torchvision's floor; a size drops smaller proposals before NMS; negative is refused.
    assert build_model(tiny_cfg(C4)).rpn.min_size == pytest.approx(1e-3)
    rpn = build_model(tiny_cfg(C4, "MODEL.PROPOSAL_GENERATOR.MIN_SIZE", "16")).rpn
    assert rpn.min_size == 16.0
    boxes = torch.tensor([[[0.0, 0.0, 15.0, 40.0], [0.0, 0.0, 16.0, 16.0], [5.0, 5.0, 60.0, 60.0]]])
    kept, _ = rpn.filter_proposals(boxes, torch.tensor([[3.0, 2.0, 1.0]]), [(64, 64)], [3])
    assert kept[0].tolist() == [[0.0, 0.0, 16.0, 16.0], [5.0, 5.0, 60.0, 60.0]]
    with pytest.raises(ConfigError, match="MODEL.PROPOSAL_GENERATOR.MIN_SIZE"):
        build_model(tiny_cfg(C4, "MODEL.PROPOSAL_GENERATOR.MIN_SIZE", "-1"))
