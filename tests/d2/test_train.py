"""configs/faster_rcnn_R101.yaml and configs/faster_rcnn_VGG16.yaml under detectron2's trainer
on the demo data: a detectron2 GeneralizedRCNN with our parts, a couple of iterations (finite
losses, weights change), COCO bbox AP as the built-in engine reports it, ENGINE saved."""

import os

import pytest

pytest.importorskip("detectron2")

import torch  # noqa: E402
from detectron2.modeling.meta_arch import GeneralizedRCNN  # noqa: E402

from resnet_det.d2 import ResNetDetBackbone, ResNetDetRes5ROIHeads, VGGDetBackbone, VGGFCHead  # noqa: E402
from resnet_det.d2 import train as d2train  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Tiny CPU run: small images, few proposals and RoIs, 2 iterations, 2 validation images.
SMALL = [
    "MODEL.WEIGHTS",
    "",
    "MODEL.DEVICE",
    "cpu",
    "MODEL.ROI_HEADS.NUM_CLASSES",
    "3",
    "DATASETS.TRAIN",
    "('shapes_train',)",
    "DATASETS.TEST",
    "('shapes_val_first2',)",
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
    "SOLVER.MAX_ITER",
    "2",
    "SOLVER.STEPS",
    "()",
    "SOLVER.WARMUP_ITERS",
    "0",
    "SOLVER.BASE_LR",
    "0.001",
    "SOLVER.CHECKPOINT_PERIOD",
    "100",
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
    "DATALOADER.NUM_WORKERS",
    "0",
    "MODEL.ROI_HEADS.SCORE_THRESH_TEST",
    "0.0",  # after 2 iterations scores are low
    "LOG_PERIOD",
    "1",
    "SEED",
    "3",
]
CASES = {
    # Random weights with FrozenBN: zero-init residuals keep ResNet-101's activations finite
    # (each block starts as the identity); it also shows our block options reach detectron2.
    "R101": ("faster_rcnn_R101.yaml", ["MODEL.RESNETS.ZERO_INIT_RESIDUAL", "True"]),
    "VGG16": ("faster_rcnn_VGG16.yaml", ["MODEL.VGG.NORM", "BN"]),
}


@pytest.fixture(scope="module", autouse=True)
def datasets_root(demo_datasets):
    """The demo data, generated once for the plugin's tests (conftest.demo_datasets)."""
    return demo_datasets


@pytest.fixture(scope="module", params=sorted(CASES))
def trained(request, tmp_path_factory, datasets_root):
    name = request.param
    yaml, extra = CASES[name]
    out = str(tmp_path_factory.mktemp(f"out_{name}"))
    cfg = d2train.setup_cfg(
        os.path.join(ROOT, "configs", yaml), SMALL + extra + ["OUTPUT_DIR", out]
    )
    d2train.setup(cfg)
    d2train.register_datasets(cfg.DATASETS.TRAIN)
    trainer = d2train.Trainer(cfg)
    before = {k: v.detach().clone() for k, v in trainer.model.named_parameters() if v.requires_grad}
    trainer.resume_or_load(resume=False)
    trainer.train()
    return name, cfg, trainer, before


def test_model_is_detectron2_rcnn_with_our_parts(trained):
    name, cfg, trainer, _ = trained
    model = trainer.model
    assert isinstance(model, GeneralizedRCNN)
    if name == "R101":
        assert isinstance(model.backbone, ResNetDetBackbone)
        assert isinstance(model.roi_heads, ResNetDetRes5ROIHeads)
        assert len(model.roi_heads.res5) == 3 and len(model.backbone.res4) == 23  # ResNet-101
    else:
        assert isinstance(model.backbone, VGGDetBackbone)
        assert isinstance(model.roi_heads.box_head, VGGFCHead)
        assert model.roi_heads.box_head.fc6.in_features == 512 * 7 * 7
        assert model.roi_heads.box_head.fc7.out_features == 4096
        assert (
            type(model.roi_heads.box_pooler.level_poolers[0]).__name__ == "RoIPool"
        )  # torchvision op


def test_training_losses_finite_and_weights_change(trained):
    _, _, trainer, before = trained
    history = trainer.storage.histories()
    for key in ("loss_rpn_cls", "loss_rpn_loc", "loss_cls", "loss_box_reg", "total_loss"):
        values = [v for v, _ in history[key].values()]
        assert len(values) == 2 and all(torch.isfinite(torch.tensor(values))), key
    params = dict(trainer.model.named_parameters())
    changed = [k for k, v in before.items() if not torch.equal(v, params[k].detach())]
    assert any(k.startswith("backbone.") for k in changed)
    assert any(k.startswith("roi_heads.") for k in changed)
    assert any(k.startswith("proposal_generator.") for k in changed)


def test_evaluation_gives_coco_bbox_ap(trained):
    _, cfg, trainer, _ = trained
    results = trainer._last_eval_results  # the end-of-training evaluation (TEST.EVAL_PERIOD 0)
    bbox = results["bbox"]
    for key in ("AP", "AP50", "AP75"):  # the same keys as the built-in engine's COCOEvaluator
        assert isinstance(bbox[key], float) and 0.0 <= bbox[key] <= 100.0, (key, bbox[key])
    assert {"APs", "APm", "APl"} <= set(bbox)


def test_run_files_record_the_engine(trained):
    _, cfg, _, _ = trained
    out = cfg.OUTPUT_DIR
    assert "ENGINE: detectron2" in open(os.path.join(out, "config.yaml")).read()
    assert os.path.isfile(os.path.join(out, "model_final.pth"))
    assert open(os.path.join(out, "last_checkpoint")).read().strip() == "model_final.pth"
    log = open(os.path.join(out, "log.txt")).read()
    assert "Engine: detectron2" in log
    metrics = open(os.path.join(out, "metrics.json")).read()
    assert '"total_loss"' in metrics and '"bbox/AP"' in metrics


def test_setup_resolves_a_negative_seed_into_the_running_and_saved_config(tmp_path):
    import yaml

    opts = SMALL[:-2] + ["SEED", "-1", "OUTPUT_DIR", str(tmp_path)]
    cfg = d2train.setup_cfg(os.path.join(ROOT, "configs", "faster_rcnn_R101.yaml"), opts)
    d2train.setup(cfg)
    saved = yaml.safe_load(open(os.path.join(str(tmp_path), "config.yaml")))["SEED"]
    assert cfg.SEED >= 0 and saved == cfg.SEED and cfg.is_frozen()
