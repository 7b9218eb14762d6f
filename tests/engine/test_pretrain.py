"""ClassificationTrainer on the embedded digits: exact resume, the metrics it writes, bad
images skipped or stopping the run, and export of a checkpoint to a detection backbone."""

import json
import os

import pytest
import torch
from PIL import Image

from resnet_det.config import get_cfg
from resnet_det.data import BadImageError, register_classification_dataset
from resnet_det.data.datasets.imagenet import load_image_folder
from resnet_det.engine.pretrain import ClassificationTrainer
from resnet_det.utils.seeding import seed_all_rng

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def tiny_cfg(out, *opts):
    cfg = get_cfg()
    cfg.merge_from_file(os.path.join(ROOT, "configs", "digits", "resnet20.yaml"))
    cfg.merge_from_list(
        [
            "SOLVER.IMS_PER_BATCH",
            "8",
            "SOLVER.MAX_ITER",
            "6",
            "SOLVER.STEPS",
            "[4]",
            "SOLVER.CHECKPOINT_PERIOD",
            "3",
            "TEST.EVAL_PERIOD",
            "0",
            "LOG_PERIOD",
            "1",
            "OUTPUT_DIR",
            str(out),
            *opts,
        ]
    )
    return cfg


class Interrupt(Exception):
    pass


def train(cfg, resume=False, stop_after=None):
    seed_all_rng(cfg.SEED)
    trainer = ClassificationTrainer(cfg)
    if stop_after is not None:
        from resnet_det.engine.train_loop import HookBase

        class Stop(HookBase):
            def after_step(self):
                if self.trainer.iter == stop_after:
                    raise Interrupt()

        trainer.register_hooks([Stop()])
    trainer.resume_or_load(resume=resume)
    try:
        trainer.train()
    except Interrupt:
        pass
    return trainer


def test_resume_gives_the_same_weights(tmp_path):
    torch.set_num_threads(1)
    full = train(tiny_cfg(tmp_path / "full"))
    ref = {k: v.clone() for k, v in full.model.state_dict().items()}
    # Interrupted after iteration 3 (checkpoint model_0000002 written after iteration 2), then
    # resumed.
    part = tiny_cfg(tmp_path / "part")
    train(part, stop_after=3)
    assert os.path.exists(tmp_path / "part" / "model_0000002.pth")
    resumed = train(part, resume=True)
    assert resumed.start_iter == 3
    got = resumed.model.state_dict()
    assert set(got) == set(ref)
    for k in ref:
        assert torch.equal(got[k], ref[k]), k
    init = ClassificationTrainer.build_model(part).state_dict()
    assert not torch.equal(init["linear.weight"], ref["linear.weight"])
    # The checkpoint holds the network's own keys (resnet_det layout), not "net.*".
    ckpt = torch.load(tmp_path / "full" / "model_final.pth", weights_only=True)
    assert "stem.conv1.weight" in ckpt["model"] and "linear.weight" in ckpt["model"]


def test_metrics_and_eval(tmp_path):
    cfg = tiny_cfg(tmp_path, "SOLVER.MAX_ITER", "3", "SOLVER.STEPS", "[2]", "TEST.EVAL_PERIOD", "3")
    trainer = train(cfg)
    recs = [json.loads(line) for line in open(tmp_path / "metrics.json")]
    keys = set().union(*recs)
    assert {
        "train_top1_err",
        "images_per_sec",
        "loss_cls",
        "lr",
        "center/top1_err",
        "center/top5_err",
    } <= keys
    errs = [r["train_top1_err"] for r in recs if "train_top1_err" in r]
    assert all(0.0 <= e <= 100.0 for e in errs)
    # The last evaluation equals a fresh evaluation of the final weights.
    final = [r for r in recs if "center/top1_err" in r][-1]["center/top1_err"]
    again = ClassificationTrainer.test(cfg, trainer.model)["center"]["top1_err"]
    assert final == pytest.approx(again)
    assert trainer.model.training


def _bad_tree(root):
    for k, wnid in enumerate(["n01", "n02"]):
        os.makedirs(os.path.join(root, wnid))
        for i in range(3):
            Image.new("RGB", (20, 18), (100 * k, 50 * i, 30)).save(
                os.path.join(root, wnid, f"{i}.JPEG")
            )
    bad = os.path.join(root, "n02", "corrupt.JPEG")
    with open(bad, "wb") as f:
        f.write(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    return bad


@pytest.mark.parametrize("policy", ["skip", "stop"])
def test_bad_image_policy(tmp_path, policy):
    _bad_tree(str(tmp_path / "tree"))
    name = f"_test_bad_tree_{policy}"
    register_classification_dataset(
        name,
        lambda on_bad_image="stop": load_image_folder(
            str(tmp_path / "tree"), on_bad_image=on_bad_image
        ),
    )
    # One batch = the whole epoch of 7 images, so the corrupt one is met in iteration 0.
    cfg = tiny_cfg(
        tmp_path / "out",
        "DATASETS.TRAIN",
        f"['{name}']",
        "DATALOADER.ON_BAD_IMAGE",
        policy,
        "SOLVER.IMS_PER_BATCH",
        "7",
        "SOLVER.MAX_ITER",
        "2",
        "SOLVER.STEPS",
        "[]",
    )
    if policy == "stop":
        with pytest.raises(BadImageError, match="corrupt.JPEG"):
            train(cfg)
        return
    trainer = train(cfg)
    assert trainer.counting_loader.num_skipped == 2  # once per epoch, two iterations
    assert trainer.counting_loader.num_images == 12
    recs = [json.loads(line) for line in open(tmp_path / "out" / "metrics.json")]
    # metrics.json counts the image once, by reason.
    assert max(r.get("data/skipped_images", 0) for r in recs) == 1
    assert max(r.get("data/skipped_images/unreadable", 0) for r in recs) == 1


def test_test_modes_are_checked_before_any_loader_is_built(tmp_path):
    # User errors (ConfigError, printed as one line by the tools), before any image is read.
    from torch import nn

    from resnet_det.config import ConfigError

    class VGGLike(nn.Module):  # no global pooling + fc: the multi-scale test cannot apply
        def __init__(self):
            super().__init__()
            self.avgpool, self.linear = nn.AdaptiveAvgPool2d((7, 7)), nn.Linear(3 * 49, 4)

    cfg = tiny_cfg(tmp_path, "TEST.CLS_MODES", "['center', 'multiscale']")
    with pytest.raises(ConfigError, match="TEST.CLS_MODES: 'multiscale'.*'resnet20_cifar'"):
        ClassificationTrainer.test(cfg, VGGLike())
    cfg = tiny_cfg(tmp_path, "TEST.CLS_MODES", "['centre']")
    with pytest.raises(ConfigError, match="unknown mode 'centre'"):
        ClassificationTrainer.test(cfg, VGGLike())
