"""plan_steps: which runs a comparison takes, with which configs and weights."""

import pytest

from reproduction import COMPARISONS, DEMO, plan_steps
from reproduction.paper import repo_path
from resnet_det.config import get_cfg
from resnet_det.utils.errors import MissingFileError, UsageError


def test_given_weights_two_detection_runs_with_the_paper_configs(tmp_path):
    r101, vgg = tmp_path / "R-101.pkl", tmp_path / "vgg16.pth"
    r101.write_bytes(b"x")
    vgg.write_bytes(b"x")
    steps = plan_steps(
        COMPARISONS["8"],
        output_dir=str(tmp_path / "out"),
        pretrain=False,
        weights={"r101": str(r101), "vgg16": str(vgg)},
        opts=["SOLVER.MAX_ITER", "10"],
    )
    assert [s.name for s in steps] == ["detect_vgg16", "detect_r101"]
    for step, weights, config in (
        (steps[0], vgg, "configs/faster_rcnn_VGG16.yaml"),
        (steps[1], r101, "configs/faster_rcnn_R101.yaml"),
    ):
        assert step.config_file == config
        assert step.cfg.MODEL.WEIGHTS == str(weights)
        assert step.cfg.SOLVER.MAX_ITER == 10
        assert step.cfg.OUTPUT_DIR == str(tmp_path / "out" / step.name)
        # Nothing else changes: the paper config's input contract stays (MSRA BGR for R101).
        paper = get_cfg()
        paper.merge_from_file(repo_path(config))
        assert step.cfg.INPUT.FORMAT == paper.INPUT.FORMAT
        assert list(step.cfg.MODEL.PIXEL_STD) == list(paper.MODEL.PIXEL_STD)
    assert "--config-file configs/faster_rcnn_R101.yaml" in steps[1].command(8)
    assert "--num-gpus 8 --resume" in steps[1].command(8)


def test_pretrain_chains_pretraining_conversion_and_the_weights_input_contract(tmp_path):
    steps = plan_steps(COMPARISONS["7"], output_dir=str(tmp_path), pretrain=True)
    assert [s.name for s in steps] == [
        "pretrain_vgg16",
        "convert_vgg16",
        "detect_vgg16",
        "pretrain_r101",
        "convert_r101",
        "detect_r101",
    ]
    by_name = {s.name: s for s in steps}
    for slug, imagenet in (
        ("vgg16", "configs/imagenet/vgg16.yaml"),
        ("r101", "configs/imagenet/resnet101.yaml"),
    ):
        pre, conv, det = (
            by_name[f"pretrain_{slug}"],
            by_name[f"convert_{slug}"],
            by_name[f"detect_{slug}"],
        )
        assert pre.config_file == imagenet
        assert conv.source == pre.artifact == str(tmp_path / f"pretrain_{slug}" / "model_final.pth")
        assert det.cfg.MODEL.WEIGHTS == conv.artifact
        # The detector reads images as the classifier was trained on them (RGB, its mean/std),
        # not as the paper config's MSRA weights want (BGR, std 1).
        assert det.cfg.INPUT.FORMAT == pre.cfg.INPUT.FORMAT == "RGB"
        assert list(det.cfg.MODEL.PIXEL_MEAN) == list(pre.cfg.INPUT.CLS.PIXEL_MEAN)
        assert list(det.cfg.MODEL.PIXEL_STD) == list(pre.cfg.INPUT.CLS.PIXEL_STD)


def test_the_demo_always_pretrains():
    steps = plan_steps(DEMO, output_dir="/tmp/x", pretrain=False)
    assert [s.kind for s in steps] == ["pretrain", "convert", "detect"] * 2


def test_user_errors_name_the_flag(tmp_path):
    with pytest.raises(MissingFileError, match="--weights-vgg16.*does not exist.*--pretrain"):
        plan_steps(
            COMPARISONS["8"],
            output_dir=str(tmp_path),
            pretrain=False,
            weights={"vgg16": str(tmp_path / "nope.pth"), "r101": str(tmp_path / "nope.pkl")},
        )
    with pytest.raises(UsageError, match="--weights-r101.*either"):
        plan_steps(
            COMPARISONS["8"], output_dir=str(tmp_path), pretrain=True, weights={"r101": "R-101.pkl"}
        )
    with pytest.raises(UsageError, match="MODEL.WEIGHTS is set by the command"):
        plan_steps(DEMO, output_dir=str(tmp_path), pretrain=True, opts=["MODEL.WEIGHTS", "x.pth"])
    with pytest.raises(UsageError, match="KEY VALUE pairs"):
        plan_steps(DEMO, output_dir=str(tmp_path), pretrain=True, opts=["SOLVER.MAX_ITER"])
