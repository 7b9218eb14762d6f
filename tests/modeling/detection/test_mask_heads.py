"""Mask R-CNN in the built-in engine: the mask branches (FPN / VGG convs, C4 on the box head's
own res5), their losses, outputs, config checks and state dicts."""

import pytest
import torch

from resnet_det.config import ConfigError
from resnet_det.modeling.build import build_model, describe_model
from resnet_det.modeling.detection import MaskPredictor, Res5MaskHead

from ._tiny import C4, FPN, VGG, synthetic_batch, tiny_cfg

pytestmark = pytest.mark.usefixtures("single_thread")

MASK = ["MODEL.MASK_ON", "True"]
FPN_MASK = FPN + MASK + ["MODEL.ROI_MASK_HEAD.NUM_CONV", "2", "MODEL.ROI_MASK_HEAD.CONV_DIM", "32"]
C4_MASK = C4 + MASK + ["MODEL.ROI_MASK_HEAD.CONV_DIM", "32"]
VGG_MASK = VGG + MASK + ["MODEL.ROI_MASK_HEAD.NUM_CONV", "1", "MODEL.ROI_MASK_HEAD.CONV_DIM", "32"]
LOSSES = {"loss_rpn_cls", "loss_rpn_loc", "loss_cls", "loss_box_reg", "loss_mask"}


def with_masks(batch):
    """Each box's rectangle as its mask (uint8 [N, H, W] at the image's size), as the mapper
    gives them with mask_on=True."""
    for x in batch:
        h, w = x["image"].shape[-2:]
        masks = torch.zeros((len(x["boxes"]), h, w), dtype=torch.uint8)
        for m, (x0, y0, x1, y1) in zip(masks, x["boxes"].long().tolist()):
            m[y0:y1, x0:x1] = 1
        x["masks"] = masks
    return batch


@pytest.mark.parametrize("base", [FPN_MASK, C4_MASK, VGG_MASK], ids=["FPN", "C4", "VGG"])
def test_training_adds_loss_mask_and_trains_the_mask_predictor(base):
    torch.manual_seed(0)
    model = build_model(tiny_cfg(base)).train()
    losses = model(with_masks(synthetic_batch(2)))
    assert set(losses) == LOSSES
    assert torch.isfinite(losses["loss_mask"]) and losses["loss_mask"] > 0
    losses["loss_mask"].backward()
    grads = [p.grad for p in model.roi_heads.mask_predictor.parameters()]
    assert all(g is not None and g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("base,side", [(FPN_MASK, 28), (C4_MASK, 14)], ids=["FPN", "C4"])
def test_eval_masks_are_probabilities_pasted_into_the_original_image(base, side):
    torch.manual_seed(0)
    model = build_model(tiny_cfg(base, "MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0")).eval()
    batch = synthetic_batch(2, size=(96, 128), scale=1.5)
    with torch.no_grad():
        outs = model(batch)
        # The head's own resolution: 28x28 (FPN, 14x14 RoIs + deconv), 14x14 (C4, res5 halves).
        images = model.preprocess_image(batch)
        feats = model.backbone(images.tensors)
        pooled = model.roi_heads.mask_roi_pool(
            {f: feats[f] for f in model.roi_in_features},
            [outs[0]["boxes"][:3] / 1.5],
            images.image_sizes[:1],
        )
        logits = model.roi_heads.mask_predictor(model.roi_heads.mask_head(pooled))
    assert logits.shape[-2:] == (side, side) and logits.shape[1] == 4  # 3 classes + background
    for out in outs:
        n = len(out["boxes"])
        assert n > 0
        assert out["masks"].dtype == torch.float32
        assert out["masks"].shape == (n, 1, 144, 192)  # 1.5 x the 96x128 input
        assert 0 <= out["masks"].min() and out["masks"].max() <= 1 and out["masks"].max() > 0
        # Each mask lies within its box, which paste_masks_in_image enlarges by one mask pixel.
        ys, xs = torch.nonzero(out["masks"][0, 0] > 0, as_tuple=True)
        x0, y0, x1, y1 = out["boxes"][0].tolist()
        mx, my = (x1 - x0) / side + 2, (y1 - y0) / side + 2
        assert (
            xs.min() >= x0 - mx
            and xs.max() <= x1 + mx
            and ys.min() >= y0 - my
            and ys.max() <= y1 + my
        )


def test_faster_rcnn_outputs_no_masks_and_needs_none():
    model = build_model(tiny_cfg(FPN)).train()
    assert not model.mask_on
    assert "loss_mask" not in model(synthetic_batch(1))
    with torch.no_grad():
        assert "masks" not in model.eval()(synthetic_batch(1))[0]


def test_c4_mask_head_runs_the_box_heads_res5_listed_once():
    torch.manual_seed(0)
    model = build_model(tiny_cfg(C4_MASK))
    head = model.roi_heads.mask_head
    assert isinstance(head, Res5MaskHead)
    assert head.res5 is model.roi_heads.box_head.res5  # shared, not a copy
    sd = model.state_dict()
    assert "roi_heads.box_head.res5.0.conv1.weight" in sd
    assert not any(k.startswith("roi_heads.mask_head.") for k in sd)
    assert {
        "roi_heads.mask_predictor.conv5_mask.weight",
        "roi_heads.mask_predictor.mask_fcn_logits.weight",
    } <= set(sd)
    # Parameters once too (what the optimizer sees).
    names = [n for n, _ in model.named_parameters()]
    assert not any(n.startswith("roi_heads.mask_head.") for n in names)
    # A strict round trip: the shared res5 gets the box head's values on both paths.
    torch.manual_seed(1)
    other = build_model(tiny_cfg(C4_MASK))
    other.load_state_dict(sd, strict=True)
    assert torch.equal(
        other.roi_heads.mask_head.res5[0].conv1.weight, sd["roi_heads.box_head.res5.0.conv1.weight"]
    )
    assert other.roi_heads.mask_head.res5 is other.roi_heads.box_head.res5
    # The mask loss reaches res5 (detectron2's Res5ROIHeads trains res5 on both losses).
    model.train()
    model(with_masks(synthetic_batch(1)))["loss_mask"].backward()
    assert model.roi_heads.box_head.res5[0].conv1.weight.grad.abs().sum() > 0


def test_c4_mask_convs_follow_res5():
    model = build_model(tiny_cfg(C4_MASK, "MODEL.ROI_MASK_HEAD.NUM_CONV", "2"))
    sd = model.state_dict()
    assert "roi_heads.mask_head.convs.1.0.weight" in sd
    assert sd["roi_heads.mask_head.convs.0.0.weight"].shape[1] == 512  # R18's res5
    assert not any(k.startswith("roi_heads.mask_head.res5.") for k in sd)


def test_fpn_mask_head_layers_and_norm():
    model = build_model(
        tiny_cfg(
            FPN_MASK, "MODEL.ROI_MASK_HEAD.NORM", "GN", "MODEL.ROI_MASK_HEAD.POOLER_RESOLUTION", "7"
        )
    )
    sd = model.state_dict()
    # torchvision's MaskRCNNHeads: <i>.0 conv (no bias under a norm, as detectron2), <i>.1 norm.
    assert sd["roi_heads.mask_head.0.0.weight"].shape == (32, 64, 3, 3)
    assert "roi_heads.mask_head.0.0.bias" not in sd and "roi_heads.mask_head.1.1.weight" in sd
    assert model.roi_heads.mask_roi_pool.output_size == (7, 7)
    assert model.roi_heads.mask_roi_pool.in_features == ["p2", "p3", "p4", "p5"]


def test_class_agnostic_masks():
    torch.manual_seed(0)
    model = build_model(
        tiny_cfg(
            FPN_MASK,
            "MODEL.ROI_MASK_HEAD.CLS_AGNOSTIC_MASK",
            "True",
            "MODEL.ROI_HEADS.SCORE_THRESH_TEST",
            "0.0",
        )
    )
    predictor = model.roi_heads.mask_predictor
    assert isinstance(predictor, MaskPredictor) and predictor.mask_fcn_logits.out_channels == 1
    logits = predictor(torch.randn(2, 32, 14, 14))
    assert logits.shape == (2, 4, 28, 28) and torch.equal(logits[:, 0], logits[:, 3])
    assert set(model.train()(with_masks(synthetic_batch(1)))) == LOSSES
    with torch.no_grad():
        assert model.eval()(synthetic_batch(1))[0]["masks"].shape[1] == 1


def test_images_without_objects_train():
    model = build_model(tiny_cfg(FPN_MASK)).train()
    batch = with_masks(synthetic_batch(2))
    batch[1]["boxes"], batch[1]["labels"] = (
        torch.zeros((0, 4)),
        torch.zeros((0,), dtype=torch.int64),
    )
    batch[1]["masks"] = torch.zeros((0, 96, 128), dtype=torch.uint8)
    assert torch.isfinite(model(batch)["loss_mask"])


def test_missing_or_misshapen_masks_name_the_image():
    model = build_model(tiny_cfg(FPN_MASK)).train()
    batch = synthetic_batch(2, ids=["a.jpg", "b.jpg"])
    with pytest.raises(ValueError, match=r"image_id 'a.jpg'.*lacks 'masks'.*MODEL.MASK_ON"):
        model(batch)
    batch = with_masks(batch)
    batch[1]["masks"] = batch[1]["masks"][:, :50]
    with pytest.raises(ValueError, match=r"image_id 'b.jpg'.*'masks' must be \[2, 96, 128\]"):
        model(batch)


R50 = ["MODEL.RESNETS.DEPTH", "50", "MODEL.RESNETS.RES2_OUT_CHANNELS", "256"]
OPTIONS = {
    "shortcut-A": (
        ["MODEL.RESNETS.SHORTCUT", "A"],
        lambda r: not any("shortcut" in k for k in r.state_dict()),
    ),
    "shortcut-C": (
        ["MODEL.RESNETS.SHORTCUT", "C"],
        lambda r: "1.shortcut.weight" in r.state_dict(),
    ),
    "plain": (["MODEL.RESNETS.PLAIN", "True"], lambda r: not r[0].residual),
    "stride-in-3x3": (
        R50 + ["MODEL.RESNETS.STRIDE_IN_1X1", "False"],
        lambda r: r[0].conv1.stride == (1, 1) and r[0].conv2.stride == (2, 2),
    ),
    "stride-in-1x1": (R50, lambda r: r[0].conv1.stride == (2, 2) and r[0].conv2.stride == (1, 1)),
    "GN": (["MODEL.RESNETS.NORM", "GN"], lambda r: isinstance(r[0].conv1.norm, torch.nn.GroupNorm)),
}


@pytest.mark.parametrize("option", list(OPTIONS))
def test_backbone_options_reach_the_c4_mask_branch(option):
    overrides, holds = OPTIONS[option]
    torch.manual_seed(0)
    model = build_model(tiny_cfg(C4_MASK, *overrides))
    res5 = model.roi_heads.mask_head.res5
    assert res5 is model.roi_heads.box_head.res5
    assert holds(res5)
    losses = model.train()(with_masks(synthetic_batch(1)))
    assert torch.isfinite(losses["loss_mask"])


@pytest.mark.parametrize(
    "overrides,key",
    [
        (["MODEL.ROI_MASK_HEAD.NAME", "MaskRCNNPointRendHead"], "MODEL.ROI_MASK_HEAD.NAME"),
        (["MODEL.ROI_MASK_HEAD.NUM_CONV", "-1"], "MODEL.ROI_MASK_HEAD.NUM_CONV"),
        (["MODEL.ROI_MASK_HEAD.CONV_DIM", "0"], "MODEL.ROI_MASK_HEAD.CONV_DIM"),
        (["MODEL.ROI_MASK_HEAD.NORM", "LN"], "MODEL.ROI_MASK_HEAD.NORM"),
        (["MODEL.ROI_MASK_HEAD.POOLER_TYPE", "ROIMax"], "MODEL.ROI_MASK_HEAD.POOLER_TYPE"),
    ],
)
def test_bad_mask_settings_name_the_key(overrides, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        describe_model(tiny_cfg(FPN_MASK, *overrides))
    # Without MASK_ON the mask keys are not read.
    describe_model(tiny_cfg(FPN, *overrides))
