"""GeneralizedRCNN I/O (docs/internals.md "Detector I/O"), batching and weights loading."""

import pytest
import torch

import resnet_det
from resnet_det.checkpoint import WeightsMismatchError, load_pretrained_weights
from resnet_det.modeling.build import build_model

from ._tiny import C4, FPN, VGG, synthetic_batch, tiny_cfg

LOSSES = {"loss_rpn_cls", "loss_rpn_loc", "loss_cls", "loss_box_reg"}


@pytest.mark.parametrize("base", [C4, FPN, VGG], ids=["C4", "FPN", "VGG"])
def test_train_losses_have_detectron2_names_and_backprop(base):
    torch.manual_seed(0)
    model = build_model(tiny_cfg(base)).train()
    losses = model(synthetic_batch())
    assert set(losses) == LOSSES
    for name, value in losses.items():
        assert value.dim() == 0 and torch.isfinite(value), name
    sum(losses.values()).backward()
    grads = [p.grad for p in model.roi_heads.box_predictor.parameters()]
    assert all(g is not None and g.abs().sum() > 0 for g in grads)


def test_eval_output_format():
    torch.manual_seed(0)
    model = build_model(tiny_cfg(C4, "MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0")).eval()
    with torch.no_grad():
        outs = model(synthetic_batch(3))
    assert len(outs) == 3
    for out in outs:
        assert set(out) == {"boxes", "scores", "labels"}
        n = out["boxes"].shape[0]
        assert 0 < n <= 100
        assert out["boxes"].shape == (n, 4) and out["scores"].shape == (n,)
        assert out["labels"].dtype == torch.int64
        # 0-based labels of the 3 foreground classes: background never appears.
        assert out["labels"].min() >= 0 and out["labels"].max() <= 2
        assert torch.all(out["boxes"][:, 2] >= out["boxes"][:, 0])
        # torchvision's per-class NMS keeps detections in decreasing score order.
        assert torch.all(out["scores"][:-1] >= out["scores"][1:])
        assert torch.all((out["scores"] >= 0) & (out["scores"] <= 1))


def test_boxes_are_returned_in_original_image_coordinates():
    torch.manual_seed(0)
    model = build_model(tiny_cfg(C4, "MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0")).eval()
    # The same resized input, once declared as original size and once as a 2.5x / 2.5x
    # downscale of an original 240x320 image.
    with torch.no_grad():
        same = model(synthetic_batch(1, size=(96, 128), scale=1.0))[0]
        orig = model(synthetic_batch(1, size=(96, 128), scale=2.5))[0]
    assert same["boxes"].shape[0] > 0
    expected = same["boxes"] * torch.tensor([320 / 128, 240 / 96, 320 / 128, 240 / 96])
    torch.testing.assert_close(orig["boxes"], expected)
    torch.testing.assert_close(orig["scores"], same["scores"])
    assert orig["boxes"][:, 2].max() <= 320 and orig["boxes"][:, 3].max() <= 240
    # A non-uniform resize (different x and y factors) maps each axis by its own factor.
    batch = synthetic_batch(1, size=(96, 128))
    batch[0]["height"], batch[0]["width"] = 96, 256
    with torch.no_grad():
        wide = model(batch)[0]
    torch.testing.assert_close(wide["boxes"][:, 0::2], same["boxes"][:, 0::2] * 2)
    torch.testing.assert_close(wide["boxes"][:, 1::2], same["boxes"][:, 1::2])


def test_preprocess_normalises_in_format_order_and_pads():
    model = build_model(
        tiny_cfg(C4, "MODEL.PIXEL_MEAN", "[10.0, 20.0, 30.0]", "MODEL.PIXEL_STD", "[1.0, 2.0, 4.0]")
    )
    a = {"image": torch.full((3, 50, 70), 50, dtype=torch.uint8)}
    b = {"image": torch.full((3, 66, 40), 50, dtype=torch.uint8)}
    images = model.preprocess_image([a, b])
    # Padded to a multiple of 16 (C4 stride) around the larger of the two sizes.
    assert images.tensors.shape == (2, 3, 80, 80)
    assert images.image_sizes == [(50, 70), (66, 40)]
    torch.testing.assert_close(images.tensors[0, :, 0, 0], torch.tensor([40.0, 15.0, 5.0]))
    assert (
        images.tensors[0, :, 50:, :].abs().sum() == 0
        and images.tensors[1, :, :, 40:].abs().sum() == 0
    )


def test_imagenet_weights_load_into_backbone_and_res5_head():
    model = build_model(tiny_cfg(C4))
    classifier = resnet_det.create_model("resnet18", norm="FrozenBN")
    with torch.no_grad():
        for p in classifier.parameters():
            p.normal_()
    sd = classifier.state_dict()
    load_pretrained_weights(model, sd)
    msd = model.state_dict()
    torch.testing.assert_close(msd["backbone.res4.1.conv2.weight"], sd["res4.1.conv2.weight"])
    torch.testing.assert_close(msd["backbone.stem.conv1.weight"], sd["stem.conv1.weight"])
    torch.testing.assert_close(
        msd["roi_heads.box_head.res5.0.conv1.weight"], sd["res5.0.conv1.weight"]
    )
    # A source without res5 (an R18 truncated after res4) leaves the head random: refused.
    partial = {k: v for k, v in sd.items() if not k.startswith("res5.")}
    with pytest.raises(WeightsMismatchError, match="res5"):
        load_pretrained_weights(build_model(tiny_cfg(C4)), partial)


def test_full_detector_checkpoint_round_trip():
    torch.manual_seed(1)
    a = build_model(tiny_cfg(FPN))
    torch.manual_seed(2)
    b = build_model(tiny_cfg(FPN))
    load_pretrained_weights(b, {"model": a.state_dict()})
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k


def test_vgg_imagenet_weights_fill_convs_and_fc6_fc7():
    model = build_model(tiny_cfg(VGG, "MODEL.ROI_BOX_HEAD.FC_DIM", "4096"))
    classifier = resnet_det.create_model("vgg16")
    sd = classifier.state_dict()
    result = load_pretrained_weights(model, sd)
    msd = model.state_dict()
    torch.testing.assert_close(msd["roi_heads.box_head.fc6.weight"], sd["fc6.weight"])
    torch.testing.assert_close(msd["roi_heads.box_head.fc7.bias"], sd["fc7.bias"])
    torch.testing.assert_close(
        msd["backbone.vgg_block5.conv5_3.weight"], sd["vgg_block5.conv5_3.weight"]
    )
    # fc8 (the 1000-way ImageNet classifier) has no place in the detector.
    assert set(result.unexpected_keys) == {"fc8.weight", "fc8.bias"}
