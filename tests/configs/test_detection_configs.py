"""Every detection YAML under configs/ loads, and every one meant to be run (all but the
Base-*.yaml files they inherit from) builds its detector on CPU and runs one training iteration
on the demo data with small images (real datasets swapped for the demo sets and MODEL.WEIGHTS
for a from-scratch start by override). The paper configs' values are checked against
docs/reproduction.md by test_paper_recipes.py."""

import glob
import os

import pytest
import torch

from resnet_det.config import get_cfg
from resnet_det.data import build_detection_train_loader
from resnet_det.modeling.build import build_model
from resnet_det.modeling.detection import GeneralizedRCNN
from resnet_det.solver import build_optimizer

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "configs")
# Classification pretraining configs have their own test (test_pretrain_configs.py).
NOT_DETECTION = ("imagenet", "cifar10", "digits")
DETECTION_CONFIGS = sorted(
    os.path.relpath(p, ROOT)
    for p in glob.glob(os.path.join(ROOT, "**", "*.yaml"), recursive=True)
    if os.path.relpath(p, ROOT).split(os.sep)[0] not in NOT_DETECTION
    # tools/reproduce.py --demo's pretraining stage (tested in tests/tools/reproduction).
    and not os.path.basename(p).lower().startswith(("pretrain", "base-pretrain"))
)
# Bases only hold shared values; a run starts from a leaf config.
RUNNABLE_CONFIGS = [n for n in DETECTION_CONFIGS if not os.path.basename(n).startswith("Base-")]
LOSSES = {"loss_rpn_cls", "loss_rpn_loc", "loss_cls", "loss_box_reg"}


@pytest.fixture(scope="module", autouse=True)
def demo_datasets(tmp_path_factory):
    """The demo sets under a private RESNET_DET_DATASETS unless the caller points at a cache."""
    if os.environ.get("RESNET_DET_DATASETS"):
        yield
        return
    mp = pytest.MonkeyPatch()
    mp.setenv("RESNET_DET_DATASETS", str(tmp_path_factory.mktemp("datasets")))
    yield
    mp.undo()


def test_all_detection_configs_are_found():
    names = set(DETECTION_CONFIGS)
    for required in (
        "faster_rcnn_R101.yaml",
        "faster_rcnn_VGG16.yaml",
        "voc/faster_rcnn_R101.yaml",
        "voc/faster_rcnn_VGG16.yaml",
        "voc/faster_rcnn_R101_07++12.yaml",
        "voc/faster_rcnn_VGG16_07++12.yaml",
        "modern/Base-RCNN-C4.yaml",
        "modern/Base-RCNN-FPN.yaml",
        "modern/faster_rcnn_R50_C4_1x.yaml",
        "modern/faster_rcnn_R50_C4_3x.yaml",
        "modern/faster_rcnn_R101_C4_3x.yaml",
        "modern/faster_rcnn_R50_FPN_1x.yaml",
        "modern/faster_rcnn_R50_FPN_3x.yaml",
        "modern/faster_rcnn_R101_FPN_3x.yaml",
        "demo/faster_rcnn_shapes.yaml",
        "mask_rcnn_R50_FPN.yaml",
        "mask_rcnn_R101.yaml",
        "mask_rcnn_R101_FPN.yaml",
        "demo/mask_rcnn_shapes.yaml",
    ):
        assert required.replace("/", os.sep) in names


@pytest.mark.parametrize("name", DETECTION_CONFIGS)
def test_config_loads(name):
    cfg = get_cfg()
    cfg.merge_from_file(os.path.join(ROOT, name))
    assert cfg.MODEL.META_ARCHITECTURE == "GeneralizedRCNN"


@pytest.mark.parametrize("name", RUNNABLE_CONFIGS)
def test_config_builds_and_trains_one_iteration(name):
    cfg = get_cfg()
    cfg.merge_from_file(os.path.join(ROOT, name))
    voc = cfg.DATASETS.TRAIN and any(str(d).startswith("voc") for d in cfg.DATASETS.TRAIN)
    cfg.merge_from_list(
        [
            "MODEL.WEIGHTS",
            "",
            "MODEL.DEVICE",
            "cpu",
            "DATASETS.TRAIN",
            "['shapes_voc_train']" if voc else "['shapes_train']",
            "DATASETS.TEST",
            "['shapes_voc_val']" if voc else "['shapes_val']",
            "INPUT.MIN_SIZE_TRAIN",
            "[64]",
            "INPUT.MAX_SIZE_TRAIN",
            "96",
            "INPUT.MIN_SIZE_TEST",
            "64",
            "INPUT.MAX_SIZE_TEST",
            "96",
            "SOLVER.IMS_PER_BATCH",
            "2",
            "DATALOADER.NUM_WORKERS",
            "0",
            "MODEL.RPN.BATCH_SIZE_PER_IMAGE",
            "32",
            "MODEL.RPN.POST_NMS_TOPK_TRAIN",
            "32",
            "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE",
            "8",
        ]
    )
    torch.manual_seed(0)
    model = build_model(cfg).train()
    assert isinstance(model, GeneralizedRCNN)
    if cfg.MODEL.ROI_HEADS.NAME == "Res5ROIHeads":
        assert "roi_heads.box_head.res5.0.conv1.weight" in model.state_dict()
    optimizer = build_optimizer(cfg, model)
    batch = next(iter(build_detection_train_loader(cfg)))
    assert len(batch) == 2 and max(x["image"].shape[-2:].numel() for x in batch) <= 96 * 96
    before = {k: v.clone() for k, v in model.roi_heads.box_predictor.state_dict().items()}
    losses = model(batch)
    assert set(losses) == LOSSES | ({"loss_mask"} if cfg.MODEL.MASK_ON else set())
    assert all(torch.isfinite(v) for v in losses.values()), losses
    optimizer.zero_grad()
    sum(losses.values()).backward()
    optimizer.step()
    after = model.roi_heads.box_predictor.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize(
    "name,depth,head,steps,max_iter,box_ap,mask_ap",
    [
        ("mask_rcnn_R50_FPN.yaml", 50, "StandardROIHeads", [60000, 80000], 90000, "38.6", "35.2"),
        (
            "mask_rcnn_R101_FPN.yaml",
            101,
            "StandardROIHeads",
            [210000, 250000],
            270000,
            "42.9",
            "38.6",
        ),
        ("mask_rcnn_R101.yaml", 101, "Res5ROIHeads", [210000, 250000], 270000, "42.6", "36.7"),
    ],
)
def test_mask_rcnn_configs_are_detectron2_recipes(
    name, depth, head, steps, max_iter, box_ap, mask_ap
):
    """detectron2's COCO-InstanceSegmentation recipes (2017 split, batch 16 at lr 0.02, its mask
    heads), each citing the model-zoo numbers of the schedule it runs."""
    cfg = get_cfg()
    path = os.path.join(ROOT, name)
    cfg.merge_from_file(path)
    m = cfg.MODEL
    assert m.MASK_ON and m.RESNETS.DEPTH == depth and m.ROI_HEADS.NAME == head
    assert (
        m.ROI_HEADS.NUM_CLASSES == 80 and m.RESNETS.NORM == "FrozenBN" and m.RESNETS.STRIDE_IN_1X1
    )
    assert m.ROI_MASK_HEAD.NAME == "MaskRCNNConvUpsampleHead" and m.ROI_MASK_HEAD.CONV_DIM == 256
    # FPN: 4 convs on 14x14 RoIAlign; C4: the deconv right after res5 on the box head's 14x14 RoIs.
    assert m.ROI_MASK_HEAD.NUM_CONV == (4 if head == "StandardROIHeads" else 0)
    pooled = m.ROI_MASK_HEAD if head == "StandardROIHeads" else m.ROI_BOX_HEAD
    assert pooled.POOLER_RESOLUTION == 14 and pooled.POOLER_TYPE == "ROIAlignV2"
    assert list(cfg.DATASETS.TRAIN) == ["coco_2017_train"] and list(cfg.DATASETS.TEST) == [
        "coco_2017_val"
    ]
    s = cfg.SOLVER
    assert (s.IMS_PER_BATCH, s.BASE_LR, list(s.STEPS), s.MAX_ITER) == (16, 0.02, steps, max_iter)
    header = open(path).read().split("_BASE_")[0]
    assert f"box AP {box_ap}" in header.replace(
        "\n# ", " "
    ) and f"mask AP {mask_ap}" in header.replace("\n# ", " ")


def test_mask_demo_is_the_box_demo_with_a_small_mask_head():
    box, mask = get_cfg(), get_cfg()
    box.merge_from_file(os.path.join(ROOT, "demo", "faster_rcnn_shapes.yaml"))
    mask.merge_from_file(os.path.join(ROOT, "demo", "mask_rcnn_shapes.yaml"))
    assert mask.MODEL.MASK_ON and not box.MODEL.MASK_ON
    assert mask.MODEL.ROI_MASK_HEAD.NUM_CONV == 2 and mask.MODEL.ROI_MASK_HEAD.CONV_DIM == 64
    assert mask.OUTPUT_DIR == "./output/demo_mask_shapes"
    assert mask.DATASETS.TRAIN == box.DATASETS.TRAIN and mask.SOLVER.MAX_ITER == box.SOLVER.MAX_ITER
