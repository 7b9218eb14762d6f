"""resnet_det's backbones and heads in detectron2: registration (and its table in
docs/detectron2.md), shapes, equality with detectron2's own ResNet, and our block options
reaching the C4 head."""

import os

import pytest

pytest.importorskip("detectron2")

import torch  # noqa: E402
from detectron2.config import get_cfg  # noqa: E402
from detectron2.layers import ShapeSpec  # noqa: E402
from detectron2.modeling import (  # noqa: E402  # noqa: E402
    BACKBONE_REGISTRY,
    ROI_HEADS_REGISTRY,
    Backbone,
    build_backbone,
    build_model,
)
from detectron2.modeling.backbone.fpn import FPN  # noqa: E402
from detectron2.modeling.roi_heads import ROI_BOX_HEAD_REGISTRY  # noqa: E402

import resnet_det  # noqa: E402
import resnet_det.d2  # noqa: E402
from resnet_det.config import ConfigError  # noqa: E402
from resnet_det.modeling.resnet import BottleneckBlock  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _cfg(**resnets):
    cfg = get_cfg()
    resnet_det.d2.add_resnet_det_config(cfg)
    cfg.MODEL.DEVICE = "cpu"
    for k, v in resnets.items():
        cfg.MODEL.RESNETS[k] = v
    return cfg


def test_names_registered():
    for name in (
        "build_resnet_det_backbone",
        "build_resnet_det_fpn_backbone",
        "build_vgg16_backbone",
    ):
        assert name in BACKBONE_REGISTRY
    assert "ResNetDetRes5ROIHeads" in ROI_HEADS_REGISTRY
    assert "VGGFCHead" in ROI_BOX_HEAD_REGISTRY


def test_docs_table_names_every_registered_entry():
    """docs/detectron2.md's table of what ``import resnet_det.d2`` registers names every entry
    the plugin put in detectron2's registries (backbones of entries that still exist)."""
    from detectron2.modeling.roi_heads import ROI_MASK_HEAD_REGISTRY

    from resnet_det.modeling.registry import BACKBONES

    doc = open(os.path.join(ROOT, "docs", "detectron2.md")).read()
    rows = {}
    for line in doc.splitlines():
        if line.startswith("| `") and line.count("|") >= 4:
            registry, names = (c.strip() for c in line.strip("|").split("|")[:2])
            rows.setdefault(registry.strip("`"), []).append(names)
    live = {spec.d2_name or spec.name for spec in BACKBONES}
    registries = {
        "BACKBONE_REGISTRY": BACKBONE_REGISTRY,
        "ROI_HEADS_REGISTRY": ROI_HEADS_REGISTRY,
        "ROI_BOX_HEAD_REGISTRY": ROI_BOX_HEAD_REGISTRY,
        "ROI_MASK_HEAD_REGISTRY": ROI_MASK_HEAD_REGISTRY,
    }
    found = 0
    for title, registry in registries.items():
        for name, obj in registry:
            if not getattr(obj, "__module__", "").startswith("resnet_det.d2"):
                continue  # detectron2's own, or a test's
            if registry is BACKBONE_REGISTRY and name not in live:
                continue  # an entry a test registered and removed again
            found += 1
            assert any(f"`{name}`" in cell for cell in rows.get(title, ())), (title, name)
    assert found >= 6  # 3 built-in backbones, the demo's VGG, the C4 heads, VGG's fc head


@pytest.mark.parametrize("depth", [50, 101])
def test_same_res4_res5_as_detectron2_resnet(depth, random_norms):
    """The issue's "Must show": stride in the 1x1, FrozenBN, same weights -> same features."""
    cfg = _cfg(DEPTH=depth, NORM="FrozenBN", STRIDE_IN_1X1=True, OUT_FEATURES=["res4", "res5"])
    cfg.MODEL.BACKBONE.FREEZE_AT = 2
    torch.manual_seed(depth)
    cfg.MODEL.BACKBONE.NAME = "build_resnet_backbone"
    theirs = build_backbone(cfg).eval()
    random_norms(theirs, seed=depth)
    cfg.MODEL.BACKBONE.NAME = "build_resnet_det_backbone"
    ours = build_backbone(cfg).eval()
    assert isinstance(ours, Backbone) and type(ours).__name__ == "ResNetDetBackbone"
    assert (
        ours.output_shape()
        == theirs.output_shape()
        == {
            "res4": ShapeSpec(channels=1024, stride=16),
            "res5": ShapeSpec(channels=2048, stride=32),
        }
    )
    assert isinstance(ours.output_shape()["res4"], ShapeSpec)
    # weights through our loader (detectron2 layout detected), strict: every tensor placed
    result = resnet_det.load_weights(ours, theirs.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    x = torch.randn(2, 3, 96, 128) * 50
    with torch.no_grad():
        a, b = ours(x), theirs(x)
    for name in ("res4", "res5"):
        assert a[name].shape == b[name].shape
        assert 1e-2 < b[name].abs().mean() < 1e3  # O(1) activations: 1e-4 is a real tolerance
        assert (a[name] - b[name]).abs().max().item() < 1e-4, name
    # frozen like detectron2's FREEZE_AT 2: stem and res2 fixed, res3 trains
    assert not any(p.requires_grad for p in ours.stem.parameters())
    assert not any(p.requires_grad for p in ours.res2.parameters())
    assert all(p.requires_grad for p in ours.res3.parameters())


def test_c4_backbone_stops_at_res4_and_vgg_fpn_shapes():
    cfg = _cfg(DEPTH=18, RES2_OUT_CHANNELS=64, NORM="BN", OUT_FEATURES=["res4"])
    cfg.MODEL.BACKBONE.NAME = "build_resnet_det_backbone"
    c4 = build_backbone(cfg)
    assert not hasattr(c4, "res5")
    assert c4.output_shape() == {"res4": ShapeSpec(channels=256, stride=16)}
    assert set(c4(torch.zeros(1, 3, 64, 64))) == {"res4"}

    cfg.MODEL.BACKBONE.NAME = "build_resnet_det_fpn_backbone"
    cfg.MODEL.FPN.OUT_CHANNELS = 32
    cfg.MODEL.FPN.IN_FEATURES = ["res2", "res3", "res4", "res5"]
    fpn = build_backbone(cfg)
    assert isinstance(fpn, FPN) and type(fpn.bottom_up).__name__ == "ResNetDetBackbone"
    assert fpn.output_shape() == {f"p{i}": ShapeSpec(channels=32, stride=2**i) for i in range(2, 7)}
    out = fpn(torch.zeros(1, 3, 64, 64))
    assert out["p2"].shape == (1, 32, 16, 16) and out["p6"].shape == (1, 32, 1, 1)

    cfg.MODEL.BACKBONE.NAME = "build_vgg16_backbone"
    vgg = build_backbone(cfg)
    assert isinstance(vgg, Backbone) and type(vgg).__name__ == "VGGDetBackbone"
    assert vgg.output_shape() == {"vgg_conv5": ShapeSpec(channels=512, stride=16)}
    assert vgg(torch.zeros(1, 3, 64, 96))["vgg_conv5"].shape == (1, 512, 4, 6)
    # FREEZE_AT 2 (default): conv1_x and conv2_x fixed, as Faster R-CNN trains VGG-16
    assert not any(p.requires_grad for p in vgg.vgg_block2.parameters())
    assert all(p.requires_grad for p in vgg.vgg_block3.parameters())


def _c4_model(**resnets):
    cfg = _cfg(**resnets)
    cfg.MODEL.BACKBONE.NAME = "build_resnet_det_backbone"
    cfg.MODEL.ROI_HEADS.NAME = "ResNetDetRes5ROIHeads"
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = 3
    return build_model(cfg)


def test_block_options_reach_the_res5_head():
    default = _c4_model(DEPTH=50)
    keys = set(default.state_dict())
    # option B: projection only where the shape changes (first block of each stage)
    assert "roi_heads.res5.0.shortcut.weight" in keys
    assert "roi_heads.res5.1.shortcut.weight" not in keys
    assert "backbone.res4.5.conv3.weight" in keys and "backbone.res5.0.conv1.weight" not in keys
    assert all(isinstance(b, BottleneckBlock) for b in default.roi_heads.res5)
    assert default.roi_heads.res5[0].conv1.stride == (2, 2)  # stride in the 1x1 (paper/MSRA)

    option_c = _c4_model(DEPTH=50, SHORTCUT="C", STRIDE_IN_1X1=False)
    keys = set(option_c.state_dict())
    assert {
        "roi_heads.res5.1.shortcut.weight",
        "roi_heads.res5.2.shortcut.weight",
        "backbone.res3.1.shortcut.weight",
    } <= keys
    assert option_c.roi_heads.res5[0].conv2.stride == (2, 2)

    plain = _c4_model(DEPTH=50, PLAIN=True)
    assert not any("shortcut" in k for k in plain.state_dict())
    x = torch.randn(2, 1024, 14, 14)
    block = plain.roi_heads.res5[1].eval()
    with torch.no_grad():  # no identity added: the block is its branch alone
        branch = torch.relu(
            block.conv3(
                torch.relu(block.conv2(torch.relu(block.conv1(plain.roi_heads.res5[0].eval()(x)))))
            )
        )
        assert torch.allclose(block(plain.roi_heads.res5[0](x)), branch)

    r18 = _c4_model(DEPTH=18, RES2_OUT_CHANNELS=64)
    assert len(r18.roi_heads.res5) == 2 and r18.roi_heads.res5[0].conv1.in_channels == 256
    assert r18.roi_heads.box_predictor.cls_score.in_features == 512


def test_invalid_options_name_the_key():
    with pytest.raises(ConfigError, match="MODEL.RESNETS.RES2_OUT_CHANNELS"):
        _c4_model(DEPTH=18)  # 256 is the bottleneck width; ResNet-18 needs 64
    with pytest.raises(ConfigError, match="SHORTCUT|shortcut"):
        _c4_model(DEPTH=50, SHORTCUT="D")
    with pytest.raises(ConfigError, match="MODEL.RESNETS.DEFORM_ON_PER_STAGE"):
        _c4_model(DEPTH=50, DEFORM_ON_PER_STAGE=[False, False, True, True])


@pytest.mark.parametrize(
    "opts",
    [
        [
            "MODEL.RESNETS.DEPTH",
            "18",
            "MODEL.RESNETS.RES2_OUT_CHANNELS",
            "64",
            "MODEL.RESNETS.NORM",
            "BN",
            "MODEL.RESNETS.SHORTCUT",
            "C",
            "MODEL.BACKBONE.FREEZE_AT",
            "1",
        ],
        ["MODEL.BACKBONE.NAME", "build_vgg_backbone", "MODEL.VGG.NORM", "GN"],
    ],
    ids=["resnet", "vgg"],
)
def test_plugin_builds_the_builtin_engines_backbone(opts):
    """Same registry entry, same kwargs, same init order: with one seed the plugin's backbone
    equals the built-in engine's, parameter names and values (checkpoints move between them)."""
    from resnet_det.config import get_cfg as our_cfg
    from resnet_det.modeling.build import build_backbone as our_backbone

    ours = our_cfg()
    ours.merge_from_list(opts)
    theirs = resnet_det.d2.add_resnet_det_config(get_cfg(), resnet_det_defaults=True)
    theirs.merge_from_list(opts)
    resnet_det.d2.resolve_for_detectron2(theirs)
    torch.manual_seed(0)
    a = our_backbone(ours).state_dict()
    torch.manual_seed(0)
    plugin = build_backbone(theirs)
    b = plugin.state_dict()
    assert type(plugin).__name__ in ("ResNetDetBackbone", "VGGDetBackbone")
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_registry_entries_added_later_reach_detectron2():
    from resnet_det.modeling.backbone import Backbone as OurBackbone
    from resnet_det.modeling.registry import BACKBONES

    class Tiny(OurBackbone):
        def __init__(self, *, in_channels: int = 3):
            super().__init__()
            self.conv = torch.nn.Conv2d(in_channels, 8, 3, stride=4, padding=1)
            self._out_features, self._out_feature_channels, self._out_feature_strides = (
                ["t"],
                {"t": 8},
                {"t": 4},
            )

        def forward(self, x):
            return {"t": self.conv(x)}

    def tiny_kwargs(cfg):
        return dict(in_channels=len(cfg.MODEL.PIXEL_MEAN))

    cfg = _cfg()
    cfg.MODEL.BACKBONE.NAME = "tiny_for_d2_test"
    BACKBONES.register("tiny_for_d2_test", build=Tiny, from_config=tiny_kwargs)
    try:
        assert "tiny_for_d2_test" in BACKBONE_REGISTRY  # registered after the plugin's import
        net = build_backbone(cfg)
        assert (
            isinstance(net, Backbone)
            and isinstance(net, Tiny)
            and list(net.state_dict()) == ["conv.weight", "conv.bias"]
        )  # a subclass, not a wrapper: the names are Tiny's
        assert net.output_shape() == {"t": ShapeSpec(channels=8, stride=4)}
        # A function builder cannot be given detectron2's base class: a clear error, not a crash.
        BACKBONES.unregister("tiny_for_d2_test")
        BACKBONES.register(
            "tiny_for_d2_test", build=lambda **kw: Tiny(**kw), from_config=tiny_kwargs
        )
        with pytest.raises(ConfigError, match="MODEL.BACKBONE.NAME"):
            build_backbone(cfg)
    finally:
        BACKBONES.unregister("tiny_for_d2_test")
    # detectron2's own names are not taken over, and the entry is not half-registered
    with pytest.raises(ConfigError, match="build_retinanet_resnet_fpn_backbone"):
        BACKBONES.register(
            "tiny_for_d2_test",
            d2_name="build_retinanet_resnet_fpn_backbone",
            build=Tiny,
            from_config=tiny_kwargs,
        )
    assert "tiny_for_d2_test" not in BACKBONES
