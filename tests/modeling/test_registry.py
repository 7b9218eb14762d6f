"""The model registries: a backbone registered in one place (this file) is checked by
describe_model, built by build_model, trained by the built-in engine and, when detectron2 is
installed, by the detectron2 plugin. docs/internals.md ("Adding a backbone") cites this file."""

import json
import os

import pytest
import torch
from torch import nn

from resnet_det.config import ConfigError, get_cfg
from resnet_det.modeling import (
    build_classifier,
    build_model,
    create_model,
    describe_model,
    list_models,
)
from resnet_det.modeling.backbone import Backbone
from resnet_det.modeling.detection.roi_heads import build_standard_roi_heads
from resnet_det.modeling.layers import check_positive_int, make_conv
from resnet_det.modeling.registry import (
    BACKBONES,
    BOX_HEADS,
    CLASSIFIERS,
    ROI_HEADS,
    ConfigKwargs,
    Registry,
)


# --------------------------------------------------------------- the example of docs/internals.md
class ToyBackbone(Backbone):
    """Four 3x3 stride-2 conv-ReLUs: one feature map "toy" at stride 16.

    Args:
        in_channels: image channels.
        width: channels of every conv.
    """

    def __init__(self, *, in_channels: int = 3, width: int = 16):
        super().__init__()
        chans = [in_channels] + [width] * 4
        self.body = nn.Sequential(
            *[
                m
                for i in range(4)
                for m in (make_conv(chans[i], chans[i + 1], 3, stride=2), nn.ReLU())
            ]
        )
        self._out_features = ["toy"]
        self._out_feature_channels = {"toy": width}
        self._out_feature_strides = {"toy": 16}

    def forward(self, x):
        return {"toy": self.body(x)}


def toy_kwargs(cfg) -> dict:
    """The toy's one config -> kwargs function: it has nothing to freeze."""
    if cfg.MODEL.BACKBONE.FREEZE_AT != 0:
        raise ConfigError(
            f"config MODEL.BACKBONE.FREEZE_AT={cfg.MODEL.BACKBONE.FREEZE_AT}: "
            "the toy backbone has nothing to freeze; set 0"
        )
    return dict(in_channels=len(cfg.MODEL.PIXEL_MEAN), width=16)


@pytest.fixture
def toy_backbone():
    """The one registration; removed afterwards so other tests see the built-in names only."""
    spec = BACKBONES.register("toy_backbone", build=ToyBackbone, from_config=toy_kwargs)
    yield spec
    BACKBONES.unregister("toy_backbone")


# A detector on the toy: one feature map for the RPN and the RoI heads, tiny sizes.
TOY_DETECTOR = [
    "MODEL.BACKBONE.NAME",
    "toy_backbone",
    "MODEL.BACKBONE.FREEZE_AT",
    "0",
    "MODEL.RPN.IN_FEATURES",
    "['toy']",
    "MODEL.ANCHOR_GENERATOR.SIZES",
    "[[16, 32, 64]]",
    "MODEL.ROI_HEADS.NAME",
    "StandardROIHeads",
    "MODEL.ROI_HEADS.IN_FEATURES",
    "['toy']",
    "MODEL.ROI_HEADS.NUM_CLASSES",
    "3",
    "MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION",
    "7",
    "MODEL.ROI_BOX_HEAD.FC_DIM",
    "32",
    "MODEL.RPN.BATCH_SIZE_PER_IMAGE",
    "32",
    "MODEL.RPN.POST_NMS_TOPK_TRAIN",
    "32",
    "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE",
    "16",
]
# Two iterations on the generated demo shapes (3 classes), 64-pixel images.
TWO_ITERATIONS = [
    "DATASETS.TRAIN",
    "('shapes_train',)",
    "DATASETS.TEST",
    "()",
    "INPUT.MIN_SIZE_TRAIN",
    "(64,)",
    "INPUT.MAX_SIZE_TRAIN",
    "96",
    "SOLVER.IMS_PER_BATCH",
    "2",
    "SOLVER.BASE_LR",
    "0.01",
    "SOLVER.MAX_ITER",
    "2",
    "SOLVER.STEPS",
    "()",
    "SOLVER.WARMUP_ITERS",
    "0",
    "SOLVER.CHECKPOINT_PERIOD",
    "100",
    "DATALOADER.NUM_WORKERS",
    "0",
    "LOG_PERIOD",
    "1",
    "SEED",
    "3",
]


def _cfg(*opts):
    cfg = get_cfg()
    cfg.merge_from_list(list(opts))
    return cfg


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory):
    """The demo sets under a private RESNET_DET_DATASETS unless the caller points at a cache."""
    with pytest.MonkeyPatch.context() as mp:
        if not os.environ.get("RESNET_DET_DATASETS"):
            mp.setenv("RESNET_DET_DATASETS", str(tmp_path_factory.mktemp("datasets")))
        yield


def _changed(before, module: nn.Module):
    return [k for k, v in module.state_dict().items() if not torch.equal(before[k], v)]


def test_one_registration_reaches_validation_and_the_detector(toy_backbone):
    cfg = _cfg(*TOY_DETECTOR)
    describe_model(cfg)
    model = build_model(cfg)
    assert type(model.backbone) is ToyBackbone
    assert model.roi_heads.box_head.fcs[0].in_features == 16 * 7 * 7  # the toy's width, pooled 7x7
    # The entry's from_config is what describe_model runs: its error names the key.
    with pytest.raises(ConfigError, match=r"MODEL\.BACKBONE\.FREEZE_AT"):
        describe_model(_cfg(*TOY_DETECTOR, "MODEL.BACKBONE.FREEZE_AT", "2"))
    # The heads' requirements are what the entry offers: the toy has no res5 to run on the RoIs.
    with pytest.raises(ConfigError, match=r"MODEL\.ROI_HEADS\.NAME"):
        describe_model(
            _cfg(
                *TOY_DETECTOR,
                "MODEL.ROI_HEADS.NAME",
                "Res5ROIHeads",
                "MODEL.ROI_HEADS.IN_FEATURES",
                "['res4']",
            )
        )


def test_an_unregistered_name_is_refused_naming_the_key():
    assert "toy_backbone" not in BACKBONES
    for check in (describe_model, build_model):
        with pytest.raises(
            ConfigError, match=r"MODEL\.BACKBONE\.NAME.*toy_backbone.*build_resnet_backbone"
        ):
            check(_cfg(*TOY_DETECTOR))


def test_toy_backbone_trains_under_the_builtin_engine(toy_backbone, demo_data, tmp_path):
    from resnet_det.engine import default_setup
    from resnet_det.engine.detection import DetectionTrainer

    cfg = _cfg(*TOY_DETECTOR, *TWO_ITERATIONS, "OUTPUT_DIR", str(tmp_path))
    default_setup(cfg)
    trainer = DetectionTrainer(cfg)
    assert type(trainer.model.backbone) is ToyBackbone
    before = {k: v.clone() for k, v in trainer.model.backbone.state_dict().items()}
    trainer.resume_or_load(resume=False)
    trainer.train()
    with open(tmp_path / "metrics.json") as f:
        rows = [json.loads(line) for line in f if "total_loss" in line]
    assert [r["iteration"] for r in rows] == [0, 1]
    assert all(torch.isfinite(torch.tensor(r["total_loss"])) for r in rows)
    assert _changed(before, trainer.model.backbone)  # the toy's own weights trained


def test_toy_backbone_trains_under_the_detectron2_plugin(toy_backbone, demo_data, tmp_path):
    pytest.importorskip("detectron2")
    from resnet_det.d2 import detectron2_class
    from resnet_det.d2 import train as d2train

    # The same config keys as under the built-in engine.
    cfg = d2train.setup_cfg(
        "", TOY_DETECTOR + TWO_ITERATIONS + ["MODEL.DEVICE", "cpu", "OUTPUT_DIR", str(tmp_path)]
    )
    d2train.setup(cfg)
    d2train.register_datasets(cfg.DATASETS.TRAIN)
    trainer = d2train.Trainer(cfg)
    backbone = trainer.model.backbone
    assert type(backbone) is detectron2_class(ToyBackbone) and isinstance(backbone, ToyBackbone)
    # The same parameter names as under the built-in engine: checkpoints move between them.
    assert set(backbone.state_dict()) == set(build_model(_cfg(*TOY_DETECTOR)).backbone.state_dict())
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    trainer.resume_or_load(resume=False)
    trainer.train()
    values = [v for v, _ in trainer.storage.histories()["total_loss"].values()]
    assert len(values) == 2 and all(torch.isfinite(torch.tensor(values)))
    assert _changed(before, backbone)


# --------------------------------------------------------------- heads, registered the same way
class ToyBoxHead(nn.Module):
    """One fc layer on the flattened pooled RoI feature.

    Args:
        in_channels: channels of the pooled feature (given by the RoI heads).
        pooler_resolution: its side.
        fc_dim: the fc's width.
    """

    def __init__(self, *, in_channels: int, pooler_resolution: int, fc_dim: int):
        super().__init__()
        check_positive_int("fc_dim", fc_dim)  # an ArgumentError naming the argument
        self.fc = nn.Linear(in_channels * pooler_resolution**2, fc_dim)
        self.out_channels = fc_dim

    def forward(self, x):
        return torch.relu(self.fc(x.flatten(1)))


def toy_box_head_kwargs(cfg, backbone) -> ConfigKwargs:
    kwargs = ConfigKwargs()
    box = cfg.MODEL.ROI_BOX_HEAD
    kwargs.add("pooler_resolution", "MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION", box.POOLER_RESOLUTION)
    kwargs.add("fc_dim", "MODEL.ROI_BOX_HEAD.FC_DIM", box.FC_DIM)
    return kwargs


def build_toy_roi_heads(input_shapes, *, in_features, num_classes, box_head):
    """StandardROIHeads' assembly with 8 RoIs per image, half of them foreground."""
    return build_standard_roi_heads(
        input_shapes,
        in_features=in_features,
        num_classes=num_classes,
        box_head=box_head,
        batch_size_per_image=8,
        positive_fraction=0.5,
    )


def toy_roi_heads_kwargs(cfg, backbone) -> ConfigKwargs:
    kwargs = ConfigKwargs(box_head=BOX_HEADS.describe(cfg, backbone))
    kwargs.add("in_features", "MODEL.ROI_HEADS.IN_FEATURES", cfg.MODEL.ROI_HEADS.IN_FEATURES)
    kwargs.add("num_classes", "MODEL.ROI_HEADS.NUM_CLASSES", cfg.MODEL.ROI_HEADS.NUM_CLASSES)
    return kwargs


@pytest.fixture
def toy_heads():
    ROI_HEADS.register("ToyROIHeads", build=build_toy_roi_heads, from_config=toy_roi_heads_kwargs)
    BOX_HEADS.register("ToyBoxHead", build=ToyBoxHead, from_config=toy_box_head_kwargs)
    yield
    ROI_HEADS.unregister("ToyROIHeads")
    BOX_HEADS.unregister("ToyBoxHead")


TOY_HEADS = ["MODEL.ROI_HEADS.NAME", "ToyROIHeads", "MODEL.ROI_BOX_HEAD.NAME", "ToyBoxHead"]


def test_new_heads_are_registered_in_one_place_and_trained(
    toy_backbone, toy_heads, demo_data, tmp_path
):
    """A new RoI heads and box head are an entry each, as a backbone is: described, built and
    trained with no other edit (no code compares head names)."""
    from resnet_det.engine import default_setup
    from resnet_det.engine.detection import DetectionTrainer

    description = describe_model(_cfg(*TOY_DETECTOR, *TOY_HEADS))
    assert description["roi_heads"].name == "ToyROIHeads"
    assert description["roi_heads"]["box_head"].name == "ToyBoxHead"
    # Its builder's argument errors name the key that gave the argument.
    with pytest.raises(ConfigError, match=r"config MODEL\.ROI_BOX_HEAD\.FC_DIM=-1"):
        build_model(_cfg(*TOY_DETECTOR, *TOY_HEADS, "MODEL.ROI_BOX_HEAD.FC_DIM", "-1"))

    cfg = _cfg(*TOY_DETECTOR, *TOY_HEADS, *TWO_ITERATIONS, "OUTPUT_DIR", str(tmp_path))
    default_setup(cfg)
    trainer = DetectionTrainer(cfg)
    head = trainer.model.roi_heads.box_head
    assert type(head) is ToyBoxHead and head.fc.in_features == 16 * 7 * 7
    assert trainer.model.roi_heads.fg_bg_sampler.batch_size_per_image == 8
    before = {k: v.clone() for k, v in head.state_dict().items()}
    trainer.resume_or_load(resume=False)
    trainer.train()
    with open(tmp_path / "metrics.json") as f:
        rows = [json.loads(line) for line in f if "total_loss" in line]
    assert [r["iteration"] for r in rows] == [0, 1]
    assert all(torch.isfinite(torch.tensor(r["total_loss"])) for r in rows)
    assert _changed(before, head)


# --------------------------------------------------------------- the built-in entries
def test_builtin_names_and_the_zoo():
    # (other packages may add entries: only the built-in ones are asserted)
    assert {
        "build_resnet_backbone",
        "build_resnet_fpn_backbone",
        "build_vgg_backbone",
        # the detectron2 plugin's spellings select the same entries
        "build_resnet_det_backbone",
        "build_resnet_det_fpn_backbone",
        "build_vgg16_backbone",
    } <= set(BACKBONES.names())
    assert BACKBONES.get("build_resnet_det_backbone") is BACKBONES.get("build_resnet_backbone")
    # every create_model name is a MODEL.CLASSIFIER.ARCH, first and in the zoo's order
    assert CLASSIFIERS.names()[: len(list_models())] == list_models()
    cfg = _cfg(
        "MODEL.META_ARCHITECTURE",
        "ImageClassifier",
        "MODEL.RESNETS.NORM",
        "BN",
        "MODEL.CLASSIFIER.ARCH",
        "resnet20_cifar",
    )
    torch.manual_seed(0)
    net = CLASSIFIERS.describe(cfg).build()
    torch.manual_seed(0)
    # the config's values (the defaults: 1000 classes, SHORTCUT B, STRIDE_IN_1X1 True) as overrides
    ref = create_model(
        "resnet20_cifar",
        num_classes=1000,
        norm="BN",
        shortcut="B",
        stride_in_1x1=True,
        zero_init_residual=False,
    )
    assert list(net.state_dict()) == list(ref.state_dict())
    assert all(
        torch.equal(a, b) for a, b in zip(net.state_dict().values(), ref.state_dict().values())
    )


def test_validation_accepts_every_norm_vgg_builds():
    vgg = [
        "MODEL.BACKBONE.NAME",
        "build_vgg_backbone",
        "MODEL.ROI_HEADS.NAME",
        "StandardROIHeads",
        "MODEL.ROI_HEADS.IN_FEATURES",
        "['vgg_conv5']",
        "MODEL.RPN.IN_FEATURES",
        "['vgg_conv5']",
    ]
    for norm in ("none", "BN", "GN", "SyncBN", "FrozenBN"):
        describe_model(_cfg(*vgg, "MODEL.VGG.NORM", norm))
    with pytest.raises(ConfigError, match=r"MODEL\.VGG\.NORM"):
        describe_model(_cfg(*vgg, "MODEL.VGG.NORM", "LayerNorm"))


@pytest.mark.parametrize(
    "opts, key",
    [
        (["MODEL.RESNETS.DEPTH", "42"], "MODEL.RESNETS.DEPTH"),
        (["MODEL.RESNETS.NORM", "BatchNorm"], "MODEL.RESNETS.NORM"),
        (["MODEL.BACKBONE.FREEZE_AT", "6"], "MODEL.BACKBONE.FREEZE_AT"),
        (
            [
                "MODEL.RESNETS.DEPTH",
                "18",
                "MODEL.RESNETS.RES2_OUT_CHANNELS",
                "64",
                "MODEL.RESNETS.WIDTH_PER_GROUP",
                "4",
            ],
            "MODEL.RESNETS.WIDTH_PER_GROUP",
        ),
        (
            [
                "MODEL.BACKBONE.NAME",
                "build_resnet_fpn_backbone",
                "MODEL.ROI_HEADS.NAME",
                "StandardROIHeads",
                "MODEL.FPN.NORM",
                "Group",
            ],
            "MODEL.FPN.NORM",
        ),
        (
            [
                "MODEL.BACKBONE.NAME",
                "build_resnet_fpn_backbone",
                "MODEL.ROI_HEADS.NAME",
                "StandardROIHeads",
                "MODEL.RESNETS.RES5_DILATION",
                "2",
            ],
            "MODEL.RESNETS.RES5_DILATION",
        ),
    ],
)
def test_validation_and_the_builder_raise_the_same_error(opts, key):
    """One function checks a backbone's keys, whether a run is being described or built."""
    errors = []
    for check in (describe_model, build_model):
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as e:
            check(_cfg(*opts))
        errors.append(str(e.value))
    assert errors[0] == errors[1]


@pytest.mark.parametrize(
    "opts, key",
    [
        (["MODEL.CLASSIFIER.ARCH", "resnet51"], "MODEL.CLASSIFIER.ARCH"),
        (["MODEL.RESNETS.NORM", "FrozenBN"], "MODEL.RESNETS.NORM"),
        (["MODEL.CLASSIFIER.ARCH", "vgg16", "MODEL.VGG.NORM", "FrozenBN"], "MODEL.VGG.NORM"),
        (["MODEL.RESNETS.PLAIN", "True"], "MODEL.RESNETS.PLAIN"),
        (["MODEL.CLASSIFIER.NUM_CLASSES", "0"], "MODEL.CLASSIFIER.NUM_CLASSES"),
    ],
)
def test_classifier_keys_are_checked_by_validation_and_the_builder(opts, key):
    cfg = _cfg("MODEL.META_ARCHITECTURE", "ImageClassifier", "MODEL.RESNETS.NORM", "BN", *opts)
    for check in (describe_model, build_classifier):
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            check(cfg)


def test_the_demo_networks_are_registered_by_the_model_package():
    """The reproduction demo's configs name the quarter-width VGG-16 of modeling/vgg.py; a fresh
    process resolves them without importing the reproduction code first (tools/train_net.py on
    configs/reproduce_demo/*.yaml)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from resnet_det.modeling.registry import BACKBONES, CLASSIFIERS\n"
        "assert 'resnet_det.reproduce' not in sys.modules\n"
        "print(BACKBONES.get('build_vgg16_quarter_backbone').name, "
        "CLASSIFIERS.get('vgg16_quarter').name)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["build_vgg16_quarter_backbone", "vgg16_quarter"]


def test_an_unknown_name_gives_the_config_error_naming_the_key():
    reg = Registry("MODEL.BACKBONE.NAME")
    reg.register("ghost_backbone", build=nn.Identity)
    with pytest.raises(ConfigError, match=r"MODEL\.BACKBONE\.NAME.*'ghost'.*ghost_backbone"):
        reg.get("ghost")
