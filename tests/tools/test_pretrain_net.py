"""tools/pretrain_net.py end to end on the embedded digits (train, --resume, --eval-only), and
export: a pretraining checkpoint converted by tools/convert_weights.py loads into the backbone
(and res5 head) of a detection config's model with no missing key."""

import importlib.util
import json
import os

import pytest
import torch

from resnet_det.checkpoint import Checkpointer
from resnet_det.config import get_cfg
from resnet_det.modeling import build_classifier

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def _load_tool(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "tools", f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run_tool(capsys, out, *args):
    """tools/pretrain_net.py in this process (a subprocess would pay the imports again);
    returns what it printed plus the run's log.txt."""
    tool = _load_tool("pretrain_net")
    tool.main(tool.default_argument_parser().parse_args(list(args)))
    with open(os.path.join(out, "log.txt")) as f:
        return capsys.readouterr().out + f.read()


def test_train_resume_eval_only(tmp_path, capsys):
    out = str(tmp_path / "run")
    cfg_file = os.path.join(ROOT, "configs", "digits", "resnet20.yaml")
    opts = [
        "SOLVER.IMS_PER_BATCH",
        "16",
        "SOLVER.MAX_ITER",
        "4",
        "SOLVER.STEPS",
        "[2]",
        "SOLVER.CHECKPOINT_PERIOD",
        "2",
        "TEST.EVAL_PERIOD",
        "0",
        "LOG_PERIOD",
        "2",
        "OUTPUT_DIR",
        out,
    ]
    log = run_tool(capsys, out, "--config-file", cfg_file, *opts)
    assert "center: top-1 error" in log and "Training throughput" in log
    assert "iter: 3  images/s:" in log  # the periodic throughput line
    for f in (
        "config.yaml",
        "log.txt",
        "metrics.json",
        "last_checkpoint",
        "model_final.pth",
        "model_0000001.pth",
    ):
        assert os.path.exists(os.path.join(out, f)), f
    recs = [json.loads(line) for line in open(os.path.join(out, "metrics.json"))]
    assert any(r["iteration"] == 3 and "train_top1_err" in r for r in recs)
    assert any("center/top1_err" in r for r in recs)
    # --resume with everything done: starts after the last checkpoint and ends at once.
    log = run_tool(capsys, out, "--config-file", cfg_file, "--resume", *opts)
    assert "Starting training from iteration 4" in log
    log = run_tool(
        capsys,
        out,
        "--config-file",
        cfg_file,
        "--eval-only",
        *opts,
        "MODEL.WEIGHTS",
        os.path.join(out, "model_final.pth"),
        "TEST.CLS_MODES",
        "['center', '10crop']",
        "INPUT.CLS.TEST_RESIZE",
        "18",
    )
    assert "center: top-1 error" in log and "10crop: top-1 error" in log


def _convert(src, dst, to):
    assert _load_tool("convert_weights").main([src, dst, "--to", to]) == 0


@pytest.mark.parametrize("depth", [18, pytest.param(50, marks=pytest.mark.slow)])
def test_export_to_detection_backbone(tmp_path, depth):
    from resnet_det.checkpoint import load_pretrained_weights
    from resnet_det.modeling import build_model

    torch.manual_seed(0)
    ccfg = get_cfg()
    ccfg.merge_from_file(os.path.join(ROOT, "configs", "imagenet", f"resnet{depth}.yaml"))
    ccfg.merge_from_list(["MODEL.CLASSIFIER.NUM_CLASSES", "10"])
    classifier = build_classifier(ccfg)
    Checkpointer(classifier, str(tmp_path)).save("model_final", iteration=99)
    ckpt = os.path.join(str(tmp_path), "model_final.pth")
    _convert(ckpt, str(tmp_path / "backbone.pth"), "resnet_det")
    _convert(ckpt, str(tmp_path / "backbone.pkl"), "detectron2")

    dcfg = get_cfg()
    dcfg.merge_from_file(os.path.join(ROOT, "configs", "modern", "faster_rcnn_R50_C4_1x.yaml"))
    if depth == 18:
        # configs/imagenet/resnet18.yaml builds Table 2's option A (no projection shortcuts).
        dcfg.merge_from_list(
            [
                "MODEL.RESNETS.DEPTH",
                "18",
                "MODEL.RESNETS.RES2_OUT_CHANNELS",
                "64",
                "MODEL.RESNETS.SHORTCUT",
                "A",
            ]
        )
    want = classifier.state_dict()
    for weights in ("backbone.pth", "backbone.pkl"):
        dcfg.MODEL.WEIGHTS = str(tmp_path / weights)
        detector = build_model(dcfg)
        # Raises naming the keys if any backbone / res5-head key is missing.
        result = load_pretrained_weights(detector, dcfg.MODEL.WEIGHTS)
        assert not result.missing_keys
        view = detector.pretrained_view().state_dict()
        assert any(k.startswith("res5.") for k in view) and any(k.startswith("res4.") for k in view)
        for k, v in view.items():
            if k.endswith("num_batches_tracked"):
                continue
            assert torch.allclose(v.float(), want[k].float()), (weights, k)
