"""TorchScript: the backbones and the three detector families script with torch.jit.script and
give the eager outputs (docs/deployment.md)."""

import io
import warnings

import pytest
import torch

from resnet_det.modeling.build import build_model
from resnet_det.modeling.cifar import build_cifar_resnet
from resnet_det.modeling.detection.fpn import build_resnet_fpn
from resnet_det.modeling.resnet import build_resnet
from resnet_det.modeling.vgg import build_vgg

from .detection._tiny import C4, FPN, VGG, synthetic_batch, tiny_cfg


def script(module):
    # torch.jit.script is deprecated in favour of torch.export (FutureWarning) but still works;
    # docs/deployment.md says what each format offers.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.script(module)


def reload(scripted):
    """Through a file's bytes, as a deployment would load it."""
    buf = io.BytesIO()
    torch.jit.save(scripted, buf)
    buf.seek(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.load(buf)


BACKBONES = {
    "resnet18_c4_frozen": lambda: build_resnet(
        depth=18, out_features=["res4"], norm="FrozenBN", freeze_at=2
    ),
    "resnet50_all_stages": lambda: build_resnet(
        depth=50, out_features=["stem", "res2", "res3", "res4", "res5"]
    ),
    "resnet18_fpn": lambda: build_resnet_fpn(
        depth=18, in_features=["res2", "res3", "res4", "res5"], out_channels=32
    ),
    "vgg16_conv5": lambda: build_vgg(depth=16, out_features=["vgg_conv3", "vgg_conv5"]),
    "resnet18_classifier": lambda: build_resnet(depth=18, num_classes=10),
    "cifar_preact": lambda: build_cifar_resnet(depth=20, num_classes=10, preact=True),
}


@pytest.mark.parametrize("name", list(BACKBONES))
def test_backbone_scripts_and_matches_eager(name, single_thread):
    torch.manual_seed(0)
    net = BACKBONES[name]().eval()
    x = torch.randn(1, 3, 64, 96)
    scripted = reload(script(net))
    with torch.no_grad():
        expected, got = net(x), scripted(x)
    if isinstance(expected, torch.Tensor):
        expected, got = {"logits": expected}, {"logits": got}
    assert list(got) == list(expected)
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=0, atol=0)


MASK_FPN = FPN + [
    "MODEL.MASK_ON",
    "True",
    "MODEL.ROI_MASK_HEAD.NUM_CONV",
    "2",
    "MODEL.ROI_MASK_HEAD.CONV_DIM",
    "32",
]
MASK_C4 = C4 + ["MODEL.MASK_ON", "True", "MODEL.ROI_MASK_HEAD.CONV_DIM", "32"]


@pytest.mark.parametrize(
    "base", [C4, FPN, VGG, MASK_FPN, MASK_C4], ids=["C4", "FPN", "VGG", "mask_FPN", "mask_C4"]
)
def test_detector_scripts_and_matches_eager(base, single_thread):
    """Every detector family scripts; with MODEL.MASK_ON the masks are pasted into the original
    image inside the script, and the C4 mask head's shared res5 stays one module."""
    torch.manual_seed(0)
    model = build_model(tiny_cfg(base, "MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0")).eval()
    scripted = reload(script(model))
    batch = synthetic_batch(2, size=(96, 128), scale=1.5)
    # The scripted detector takes Dict[str, Tensor]: "height"/"width" as 0-dim tensors.
    script_batch = [
        {
            "image": x["image"],
            "height": torch.tensor(x["height"]),
            "width": torch.tensor(x["width"]),
        }
        for x in batch
    ]
    with torch.no_grad():
        expected = model([{k: x[k] for k in ("image", "height", "width")} for x in batch])
        got = scripted(script_batch)
    assert len(got) == 2
    keys = {"boxes", "scores", "labels"} | ({"masks"} if "MODEL.MASK_ON" in base else set())
    for e, g in zip(expected, got):
        assert e["boxes"].shape[0] > 0
        assert set(g) == keys
        for key in keys:
            torch.testing.assert_close(g[key], e[key], rtol=0, atol=0)
        if "masks" in keys:
            assert e["masks"].shape[0] > 0 and e["masks"].shape[-2:] == (144, 192)
        # Original coordinates: 1.5x the 96x128 input.
        assert e["boxes"][:, 2].max() <= 192 and e["boxes"][:, 3].max() <= 144


def test_scripting_leaves_training_unchanged(single_thread):
    """The training path is left out of the script (torch.jit.unused), not removed: the eager
    model still trains, and the scripted one (in eval mode) detects."""
    torch.manual_seed(0)
    model = build_model(tiny_cfg(C4)).train()
    scripted = script(model)
    losses = model(synthetic_batch(1))
    assert set(losses) == {"loss_rpn_cls", "loss_rpn_loc", "loss_cls", "loss_box_reg"}
    with torch.no_grad():
        out = scripted.eval()([{"image": synthetic_batch(1)[0]["image"]}])
    assert isinstance(out, list) and set(out[0]) == {"boxes", "scores", "labels"}
