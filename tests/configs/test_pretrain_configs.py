"""Every pretraining YAML (configs/imagenet, configs/cifar10, configs/digits) loads, builds its
classifier on CPU and runs one training step on the embedded digits set (real datasets swapped
for digits by override, small crops), with a finite loss that moves the weights."""

import glob
import os

import pytest
import torch

from resnet_det.config import get_cfg
from resnet_det.data.classification import build_classification_train_loader
from resnet_det.modeling import build_classifier
from resnet_det.solver import build_optimizer

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "configs")
PRETRAIN_CONFIGS = sorted(
    os.path.relpath(p, ROOT)
    for sub in ("imagenet", "cifar10", "digits")
    for p in glob.glob(os.path.join(ROOT, sub, "*.yaml"))
)


def test_pretrain_configs_are_found():
    names = set(PRETRAIN_CONFIGS)
    for required in (
        "imagenet/resnet50.yaml",
        "imagenet/resnet50_modern.yaml",
        "imagenet/resnet34_shortcut_A.yaml",
        "imagenet/plain34.yaml",
        "imagenet/vgg16.yaml",
        "cifar10/resnet110.yaml",
        "cifar10/resnet1202.yaml",
        "cifar10/plain56.yaml",
        "cifar10/preact_resnet1001.yaml",
        "digits/resnet20.yaml",
    ):
        assert required.replace("/", os.sep) in names


@pytest.mark.parametrize("name", PRETRAIN_CONFIGS)
def test_pretrain_config_builds_and_trains_one_step(name):
    torch.set_num_threads(1)
    cfg = get_cfg()
    cfg.merge_from_file(os.path.join(ROOT, name))
    arch = cfg.MODEL.CLASSIFIER.ARCH
    cfg.merge_from_list(
        [
            "MODEL.WEIGHTS",
            "",
            "MODEL.DEVICE",
            "cpu",
            "MODEL.CLASSIFIER.NUM_CLASSES",
            "10",
            "DATASETS.TRAIN",
            "['digits_train']",
            "DATASETS.TEST",
            "['digits_test']",
            # VGG's five poolings need 32 pixels; the others run at the digits' own 16.
            "INPUT.CLS.CROP_SIZE",
            "32" if arch.startswith("vgg") else "16",
            "INPUT.CLS.SCALE_RANGE",
            "[36, 40]" if arch.startswith("vgg") else "[]",
            "INPUT.CLS.TEST_RESIZE",
            "0",
            "INPUT.CLS.PAD",
            "2",
            "SOLVER.IMS_PER_BATCH",
            "2",
            "DATALOADER.NUM_WORKERS",
            "0",
        ]
    )
    model = build_classifier(cfg)
    model.train()
    batch = next(iter(build_classification_train_loader(cfg)))
    before = [p.detach().clone() for p in model.parameters()]
    losses = model(batch)
    assert set(losses) == {"loss_cls"} and torch.isfinite(losses["loss_cls"])
    opt = build_optimizer(cfg, model)
    opt.zero_grad()
    losses["loss_cls"].backward()
    opt.step()
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))
