"""Mask R-CNN with our backbone under detectron2's trainer: our Mask R-CNN YAML files
build detectron2's Mask R-CNN on our ResNet (FPN: StandardROIHeads with MaskRCNNConvUpsampleHead;
C4: our res5 shared by the box and mask heads), train a couple of iterations on the demo shapes
(whose COCO json holds instance masks: polygons and RLE) and report COCO "segm" AP beside
"bbox"; the run ends with its curves and the next commands, which work."""

import importlib.util
import os
import shlex

import numpy as np
import pytest

pytest.importorskip("detectron2")

import torch  # noqa: E402
from detectron2.data import DatasetCatalog as D2DatasetCatalog  # noqa: E402
from detectron2.modeling.backbone.fpn import FPN  # noqa: E402
from detectron2.modeling.meta_arch import GeneralizedRCNN  # noqa: E402
from detectron2.modeling.roi_heads import MaskRCNNConvUpsampleHead, StandardROIHeads  # noqa: E402

from resnet_det.d2 import ResNetDetBackbone, ResNetDetRes5ROIHeads  # noqa: E402
from resnet_det.d2 import train as d2train  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# A short CPU run: 2 iterations, evaluation on 2 validation images with every detection kept.
SHORT = [
    "MODEL.DEVICE",
    "cpu",
    "DATASETS.TEST",
    "('shapes_val_first2',)",
    "SOLVER.MAX_ITER",
    "2",
    "SOLVER.WARMUP_ITERS",
    "0",
    "SOLVER.CHECKPOINT_PERIOD",
    "100",
    "TEST.EVAL_PERIOD",
    "0",
    "MODEL.ROI_HEADS.SCORE_THRESH_TEST",
    "0.0",
    "DATALOADER.NUM_WORKERS",
    "0",
    "LOG_PERIOD",
    "1",
    "SEED",
    "3",
]
# The C4 model at a small size: small images, few proposals and RoIs.
SMALL_C4 = [
    "MODEL.WEIGHTS",
    "",
    "MODEL.ROI_HEADS.NUM_CLASSES",
    "3",
    "DATASETS.TRAIN",
    "('shapes_train',)",
    "INPUT.MIN_SIZE_TRAIN",
    "(64,)",
    "INPUT.MAX_SIZE_TRAIN",
    "96",
    "INPUT.MIN_SIZE_TEST",
    "64",
    "INPUT.MAX_SIZE_TEST",
    "96",
    "SOLVER.IMS_PER_BATCH",
    "2",
    "SOLVER.STEPS",
    "()",
    "SOLVER.BASE_LR",
    "0.001",
    "MODEL.RPN.PRE_NMS_TOPK_TRAIN",
    "200",
    "MODEL.RPN.POST_NMS_TOPK_TRAIN",
    "32",
    "MODEL.RPN.PRE_NMS_TOPK_TEST",
    "100",
    "MODEL.RPN.POST_NMS_TOPK_TEST",
    "4",
    "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE",
    "16",
    # random weights with FrozenBN: zero-init residuals keep ResNet-101 finite
    "MODEL.RESNETS.ZERO_INIT_RESIDUAL",
    "True",
]
CASES = {
    # The Mask R-CNN demo as it is (R18-FPN from scratch, detectron2's FPN mask head made small).
    "demo-R18-FPN": ("demo/mask_rcnn_shapes.yaml", []),
    # The paper's C4 detector with the mask head on our res5 (detectron2's mask_rcnn_R_101_C4).
    "R101-C4": ("mask_rcnn_R101.yaml", SMALL_C4),
}


@pytest.fixture(scope="module", autouse=True)
def datasets_root(demo_datasets):
    """The demo data (with instance masks), generated once for the plugin's tests."""
    return demo_datasets


@pytest.fixture(scope="module", params=sorted(CASES))
def trained(request, tmp_path_factory):
    name = request.param
    yaml, extra = CASES[name]
    out = str(tmp_path_factory.mktemp(f"out_mask_{name}"))
    cfg = d2train.setup_cfg(
        os.path.join(ROOT, "configs", yaml), extra + SHORT + ["OUTPUT_DIR", out]
    )
    d2train.setup(cfg)
    d2train.register_datasets(list(cfg.DATASETS.TRAIN))
    trainer = d2train.Trainer(cfg)
    before = {k: v.detach().clone() for k, v in trainer.model.named_parameters() if v.requires_grad}
    trainer.resume_or_load(resume=False)
    trainer.train()
    return name, cfg, trainer, before


def test_the_model_is_detectron2_mask_rcnn_on_our_backbone(trained):
    name, cfg, trainer, _ = trained
    model = trainer.model
    assert isinstance(model, GeneralizedRCNN) and model.roi_heads.mask_on
    head = model.roi_heads.mask_head
    assert isinstance(head, MaskRCNNConvUpsampleHead)
    assert head.predictor.out_channels == 3  # one mask per class
    if name == "demo-R18-FPN":
        assert isinstance(model.backbone, FPN) and isinstance(
            model.backbone.bottom_up, ResNetDetBackbone
        )
        assert len(model.backbone.bottom_up.res2) == 2  # ResNet-18
        assert type(model.roi_heads) is StandardROIHeads
        assert len(head.conv_norm_relus) == 2 and head.deconv.in_channels == 64  # the demo's head
        assert model.roi_heads.mask_pooler.output_size == (14, 14)
    else:
        assert isinstance(model.backbone, ResNetDetBackbone) and len(model.backbone.res4) == 23
        assert isinstance(model.roi_heads, ResNetDetRes5ROIHeads)
        # no convs: the mask head's deconv reads our res5's 2048 channels directly
        assert len(head.conv_norm_relus) == 0 and head.deconv.in_channels == 2048


def test_mask_loss_trains_the_mask_head(trained):
    name, _, trainer, before = trained
    history = trainer.storage.histories()
    for key in ("loss_mask", "loss_cls", "loss_box_reg", "loss_rpn_cls", "total_loss"):
        values = [v for v, _ in history[key].values()]
        assert len(values) == 2 and all(np.isfinite(values)), key
    params = dict(trainer.model.named_parameters())
    changed = {k for k, v in before.items() if not torch.equal(v, params[k].detach())}
    assert {"roi_heads.mask_head.deconv.weight", "roi_heads.mask_head.predictor.weight"} <= changed
    if name == "R101-C4":  # the box and mask losses both reach the shared res5
        assert any(k.startswith("roi_heads.res5.") for k in changed)


def test_evaluation_reports_segm_ap_beside_bbox(trained):
    _, cfg, trainer, _ = trained
    results = trainer._last_eval_results
    assert set(results) == {"bbox", "segm"}
    for task in ("bbox", "segm"):
        for key in ("AP", "AP50", "AP75"):
            value = results[task][key]
            assert isinstance(value, float) and 0.0 <= value <= 100.0, (task, key, value)
    metrics = open(os.path.join(cfg.OUTPUT_DIR, "metrics.json")).read()
    assert '"segm/AP"' in metrics and '"bbox/AP"' in metrics and '"loss_mask"' in metrics


def _train_net():
    spec = importlib.util.spec_from_file_location(
        "train_net", os.path.join(ROOT, "tools", "train_net.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_finish_run_draws_curves_and_its_evaluate_command_works(trained, capsys):
    name, cfg, trainer, _ = trained
    text = d2train.finish_run(cfg)
    out = os.path.normpath(cfg.OUTPUT_DIR)
    curves = os.path.join(out, "training_curves.png")
    assert os.path.isfile(curves) and os.path.getsize(curves) > 1000
    assert curves in text.split("Next:")[0]
    assert (
        os.path.join(out, "model_final.pth") in text and os.path.join(out, "metrics.json") in text
    )
    assert text.count("--engine detectron2") == 2  # evaluate again, resume
    assert "tools/plot_curves.py" in text
    if name != "R101-C4":
        return  # one model is enough for the command
    # "evaluate again" as printed: OUTPUT_DIR/config.yaml (detectron2's full config) and the
    # final weights give the training run's numbers.
    line = next(x for x in text.splitlines() if "evaluate again:" in x)
    argv = shlex.split(line.split("tools/train_net.py", 1)[1])
    results = _train_net().cli(argv)
    printed = capsys.readouterr().out
    assert "segm: AP" in printed and "bbox: AP" in printed
    for task in ("bbox", "segm"):
        assert results[task]["AP"] == pytest.approx(
            trainer._last_eval_results[task]["AP"], abs=1e-6
        )


def test_mask_format_follows_the_annotations():
    cfg = d2train.setup_cfg(os.path.join(ROOT, "configs", "mask_rcnn_R101.yaml"), SHORT)
    d2train.register_datasets(["shapes_train"])
    records = D2DatasetCatalog.get("shapes_train")
    segms = [a["segmentation"] for r in records for a in r["annotations"]]
    assert len(segms) > 100 and all(segms)  # the demo json holds a mask for every object
    assert any(isinstance(s, dict) for s in segms) and any(isinstance(s, list) for s in segms)
    assert d2train.mask_format_for(cfg, records) == "bitmask"  # RLE circles
    polygons_only = [
        {**r, "annotations": [a for a in r["annotations"] if isinstance(a["segmentation"], list)]}
        for r in records
    ]
    assert d2train.mask_format_for(cfg, polygons_only) == "polygon"
    # RLE on a crowd region is dropped by training, so it does not need the bitmask format
    crowd = [
        {
            **r,
            "annotations": [
                {**a, "iscrowd": 1} if isinstance(a["segmentation"], dict) else a
                for a in r["annotations"]
            ],
        }
        for r in records
    ]
    assert d2train.mask_format_for(cfg, crowd) == "polygon"
    assert d2train.evaluation_tasks(cfg) == ("bbox", "segm")
    cfg.defrost()
    cfg.MODEL.MASK_ON = False
    assert d2train.evaluation_tasks(cfg) == ("bbox",)
