"""Weights carry their input contract (format, pixel mean, pixel std): recorded by pretraining
and tools/convert_weights.py, known for MSRA (Caffe2) and torchvision layouts, and checked
against the detector's config (MODEL.WEIGHTS_INPUT_CONTRACT check / adopt / ignore)."""

import importlib.util
import logging
import os
import pickle
import shlex

import numpy as np
import pytest
import torch

from resnet_det.checkpoint import (
    INPUT_CONTRACT_KEY,
    InputContract,
    contract_of,
    resolve_weights_contract,
    unwrap_checkpoint,
)
from resnet_det.checkpoint.detector import check_weights_contract, read_weights_contract
from resnet_det.checkpoint.weights import (
    CAFFE_VGG16_CONTRACT,
    MSRA_CONTRACT,
    TORCHVISION_CONTRACT,
    compare_input_contract,
)
from resnet_det.config import get_cfg
from resnet_det.utils.errors import WeightsError

pytestmark = pytest.mark.usefixtures("single_thread")

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OURS = InputContract("RGB", [123.675, 116.28, 103.53], [58.395, 57.12, 57.375])
OVERRIDES = (
    'INPUT.FORMAT RGB MODEL.PIXEL_MEAN "[123.675, 116.28, 103.53]" '
    'MODEL.PIXEL_STD "[58.395, 57.12, 57.375]"'
)


def _tool(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "tools", f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _t(*shape):
    return torch.zeros(shape or (2,))


def _contract(obj):
    return contract_of(*unwrap_checkpoint(obj), "w")


# ---------------------------------------------------------------- known and recorded contracts
def test_known_contracts_by_layout():
    msra = {
        "blobs": {
            "conv1_w": np.zeros((64, 3, 7, 7), np.float32),
            "res_conv1_bn_s": np.ones(64, np.float32),
            "res2_0_branch2a_w": np.zeros((64, 64, 1, 1), np.float32),
        }
    }
    assert _contract(msra)[0] == MSRA_CONTRACT
    caffe_vgg = {
        "conv1_1_w": np.zeros((64, 3, 3, 3), np.float32),
        "conv1_1_b": np.zeros(64, np.float32),
        "fc6_w": np.zeros((8, 8), np.float32),
    }
    assert _contract(caffe_vgg)[0] == CAFFE_VGG16_CONTRACT
    tv = {
        "conv1.weight": _t(64, 3, 7, 7),
        "bn1.weight": _t(64),
        "layer1.0.conv1.weight": _t(64, 64, 3, 3),
    }
    assert _contract(tv)[0] == TORCHVISION_CONTRACT
    # detectron2's tools/convert-torchvision-to-d2.py output.
    d2_tv = {
        "model": {"stem.conv1.weight": np.zeros((64, 3, 7, 7), np.float32)},
        "__author__": "torchvision",
        "matching_heuristics": True,
    }
    assert _contract(d2_tv)[0] == TORCHVISION_CONTRACT
    unknown, why = _contract({"model": {"stem.conv1.weight": _t(64, 3, 7, 7)}})
    assert unknown is None and "records no input contract" in why


def test_recorded_contract_wins_and_malformed_is_refused():
    recorded = {
        "model": {"conv1.weight": _t(1)},
        INPUT_CONTRACT_KEY: dict(MSRA_CONTRACT.to_dict(), origin="x"),
    }
    found, how = _contract(recorded)
    assert found == MSRA_CONTRACT and how == "recorded in w: x"
    with pytest.raises(WeightsError, match="malformed __input_contract__: pixel_std must be > 0"):
        _contract(
            {
                "model": {"conv1.weight": _t(1)},
                INPUT_CONTRACT_KEY: {
                    "format": "RGB",
                    "pixel_mean": [0, 0, 0],
                    "pixel_std": [1, 0, 1],
                },
            }
        )
    with pytest.raises(WeightsError, match="must be a dict with format"):
        _contract({"model": {"conv1.weight": _t(1)}, INPUT_CONTRACT_KEY: "RGB"})


def test_compare_under_each_policy(caplog):
    config = InputContract("BGR", [103.530, 116.280, 123.675], [1.0, 1.0, 1.0])
    # Written differently, equal within the tolerance: no error.
    compare_input_contract(
        config,
        InputContract("BGR", [103.53, 116.28, 123.6751], [1, 1, 1]),
        "h",
        policy="check",
        weights="'w.pkl'",
    )
    with pytest.raises(WeightsError) as err:
        compare_input_contract(
            config, OURS, "recorded in 'w.pth'", policy="check", weights="'w.pth'"
        )
    msg = str(err.value)
    assert "expects input RGB, mean [123.675, 116.28, 103.53], std [58.395, 57.12, 57.375]" in msg
    assert "the config feeds BGR, mean [103.53, 116.28, 123.675], std [1.0, 1.0, 1.0]" in msg
    assert f"Set  {OVERRIDES}  (or MODEL.WEIGHTS_INPUT_CONTRACT adopt" in msg
    # Only the keys that differ are named.
    with pytest.raises(WeightsError, match=r'Set  MODEL.PIXEL_STD "\[2.0, 2.0, 2.0\]"  \(or'):
        compare_input_contract(
            config,
            InputContract("BGR", config.pixel_mean, [2, 2, 2]),
            "h",
            policy="check",
            weights="'w'",
        )
    compare_input_contract(config, OURS, "h", policy="ignore", weights="'w'")
    with pytest.raises(WeightsError, match="must be set before the detector"):
        compare_input_contract(config, OURS, "h", policy="adopt", weights="'w'")
    with caplog.at_level(logging.WARNING, logger="resnet_det"):
        compare_input_contract(
            config,
            None,
            "'mine.pth' (resnet_det layout) records no input contract",
            policy="check",
            weights="'mine.pth'",
        )
    assert "MODEL.WEIGHTS='mine.pth': the input contract is unknown" in caplog.text


# ---------------------------------------------------------------- convert_weights
def test_convert_weights_keeps_or_records_the_contract(tmp_path, capsys):
    convert = _tool("convert_weights").main
    ours = tmp_path / "ours.pth"
    torch.save(
        {
            "model": {"stem.conv1.weight": torch.ones(64, 3, 7, 7)},
            INPUT_CONTRACT_KEY: OURS.to_dict(),
        },
        ours,
    )
    for out in ("a.pth", "b.pkl"):
        assert convert([str(ours), str(tmp_path / out), "--to", "detectron2"]) == 0
        assert read_weights_contract(tmp_path / out)[0] == OURS
    assert "input contract: RGB, mean [123.675" in capsys.readouterr().out
    # torchvision layout: a plain state dict, fine for torchvision's own contract ...
    assert convert([str(ours), str(tmp_path / "tv.pth"), "--to", "torchvision"]) == 0
    assert read_weights_contract(tmp_path / "tv.pth")[0] == TORCHVISION_CONTRACT
    # ... refused for MSRA's BGR weights, which it would silently relabel.
    msra = tmp_path / "R-50.pkl"
    with open(msra, "wb") as f:
        pickle.dump({"blobs": {"conv1_w": np.ones((64, 3, 7, 7), np.float32)}}, f)
    with pytest.raises(WeightsError, match="would be read as torchvision's input contract"):
        convert([str(msra), str(tmp_path / "x.pth"), "--to", "torchvision"])
    assert convert([str(msra), str(tmp_path / "msra.pkl"), "--to", "detectron2"]) == 0
    assert read_weights_contract(tmp_path / "msra.pkl")[0] == MSRA_CONTRACT
    # A file without one gets the contract given on the command line.
    bare = tmp_path / "bare.pth"
    torch.save({"model": {"stem.conv1.weight": torch.ones(64, 3, 7, 7)}}, bare)
    assert convert([str(bare), str(tmp_path / "c.pth"), "--to", "resnet_det"]) == 0
    assert "input contract unknown" in capsys.readouterr().out
    assert read_weights_contract(tmp_path / "c.pth")[0] is None
    assert (
        convert(
            [
                str(bare),
                str(tmp_path / "d.pth"),
                "--to",
                "resnet_det",
                "--input-format",
                "BGR",
                "--pixel-mean",
                "1",
                "2",
                "3",
                "--pixel-std",
                "4",
                "5",
                "6",
            ]
        )
        == 0
    )
    assert read_weights_contract(tmp_path / "d.pth")[0] == InputContract(
        "BGR", [1, 2, 3], [4, 5, 6]
    )


# ------------------------------------------------------- our pretraining -> the paper config
def _pretrain(tmp_path, config):
    """A tiny tools/pretrain_net.py run on the embedded digits; returns model_final.pth."""
    out = str(tmp_path / "pretrain")
    tool = _tool("pretrain_net")
    args = tool.default_argument_parser().parse_args(
        [
            "--config-file",
            os.path.join(ROOT, "configs", "imagenet", config),
            "MODEL.CLASSIFIER.NUM_CLASSES",
            "10",
            "DATASETS.TRAIN",
            "['digits_train']",
            "DATASETS.TEST",
            "['digits_test']",
            # Digits upsampled to 64 px: at 16 px ResNet-101's res5 sees 1x1 maps, where one step of
            # BN training on 2 images gave NaN weights.
            "INPUT.CLS.CROP_SIZE",
            "64",
            "INPUT.CLS.SCALE_RANGE",
            "[64, 64]",
            "INPUT.CLS.TEST_RESIZE",
            "64",
            "SOLVER.IMS_PER_BATCH",
            "4",
            "SOLVER.MAX_ITER",
            "1",
            "SOLVER.BASE_LR",
            "0.0001",  # one step on 16-pixel digits: keep the weights ImageNet-like
            "SOLVER.STEPS",
            "[]",
            "SOLVER.LR_SCHEDULER_NAME",
            "WarmupMultiStepLR",
            "TEST.EVAL_PERIOD",
            "0",
            "DATALOADER.NUM_WORKERS",
            "0",
            "OUTPUT_DIR",
            out,
        ]
    )
    tool.main(args)
    weights = os.path.join(out, "model_final.pth")
    assert all(
        torch.isfinite(v).all()
        for v in torch.load(weights, weights_only=True)["model"].values()
        if v.is_floating_point()
    )
    return weights


def _paper_r101_cfg(weights):
    cfg = get_cfg()
    cfg.merge_from_file(os.path.join(ROOT, "configs", "faster_rcnn_R101.yaml"))
    cfg.MODEL.WEIGHTS = weights
    return cfg


TINY = [
    "DATASETS.TRAIN",
    "['shapes_train']",
    "DATASETS.TEST",
    "[]",
    "MODEL.ROI_HEADS.NUM_CLASSES",
    "3",
    "INPUT.MIN_SIZE_TRAIN",
    "(96,)",
    "INPUT.MAX_SIZE_TRAIN",
    "128",
    "SOLVER.IMS_PER_BATCH",
    "1",
    "SOLVER.MAX_ITER",
    "1",
    "SOLVER.STEPS",
    "[]",
    "MODEL.RPN.PRE_NMS_TOPK_TRAIN",
    "200",
    "MODEL.RPN.POST_NMS_TOPK_TRAIN",
    "50",
    "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE",
    "16",
    "DATALOADER.NUM_WORKERS",
    "0",
    "LOG_PERIOD",
    "1",
]


def _stops_then_trains(tmp_path, weights, arch_overrides):
    from resnet_det.engine.detection import DetectionTrainer

    # The paper config as it stands (MSRA's BGR, std 1) refuses our RGB / std-58 weights,
    # before anything is built ...
    cfg = _paper_r101_cfg(weights)
    with pytest.raises(WeightsError) as err:
        check_weights_contract(cfg)
    msg = str(err.value)
    assert f"MODEL.WEIGHTS={weights!r} expects input {OURS}" in msg and OVERRIDES in msg
    # ... and so does the detector's MODEL.WEIGHTS loader.
    cfg.merge_from_list(TINY + arch_overrides + ["OUTPUT_DIR", str(tmp_path / "refused")])
    with pytest.raises(WeightsError, match="expects input RGB"):
        DetectionTrainer(cfg).resume_or_load(resume=False)

    # With the keys the error names, it loads the weights and trains a step.
    keys = msg.split("Set  ")[1].split("  (or")[0]
    cfg = _paper_r101_cfg(weights)
    cfg.merge_from_list(
        shlex.split(keys) + TINY + arch_overrides + ["OUTPUT_DIR", str(tmp_path / "det")]
    )
    assert check_weights_contract(cfg) == OURS
    trainer = DetectionTrainer(cfg)
    trainer.resume_or_load(resume=False)
    stem = torch.load(weights, weights_only=True)["model"]["stem.conv1.weight"]
    assert torch.equal(trainer.model.backbone.stem.conv1.weight, stem)
    assert trainer.model.pixel_std.flatten().tolist() == pytest.approx([58.395, 57.12, 57.375])
    trainer.train()
    assert torch.isfinite(torch.tensor(trainer.storage.history("total_loss").latest()))
    # The detector's own checkpoint records the input it was trained on.
    assert read_weights_contract(tmp_path / "det" / "model_final.pth")[0] == OURS

    # MODEL.WEIGHTS_INPUT_CONTRACT adopt takes the weights' values instead (in place, before
    # the config is saved); ignore keeps the config's.
    cfg = _paper_r101_cfg(weights)
    cfg.MODEL.WEIGHTS_INPUT_CONTRACT = "adopt"
    cfg.freeze()
    assert resolve_weights_contract(cfg) == OURS and cfg.is_frozen()
    assert (cfg.INPUT.FORMAT, cfg.MODEL.PIXEL_MEAN, cfg.MODEL.PIXEL_STD) == (
        "RGB",
        [123.675, 116.28, 103.53],
        [58.395, 57.12, 57.375],
    )
    cfg = _paper_r101_cfg(weights)
    cfg.MODEL.WEIGHTS_INPUT_CONTRACT = "ignore"
    assert resolve_weights_contract(cfg) is None and cfg.INPUT.FORMAT == "BGR"


def test_pretraining_checkpoint_into_the_paper_config(tmp_path):
    """CI size: a ResNet-18 pretraining checkpoint (the paper config with the depth set to 18)."""
    weights = _pretrain(tmp_path, "resnet18.yaml")
    assert read_weights_contract(weights)[0] == OURS
    _stops_then_trains(
        tmp_path,
        weights,
        [
            "MODEL.RESNETS.DEPTH",
            "18",
            "MODEL.RESNETS.RES2_OUT_CHANNELS",
            "64",
            "MODEL.RESNETS.SHORTCUT",
            "A",
        ],
    )


@pytest.mark.slow
def test_resnet101_pretraining_checkpoint_into_the_paper_config(tmp_path):
    """The paper config as it stands (ResNet-101) with a ResNet-101 pretraining checkpoint."""
    weights = _pretrain(tmp_path, "resnet101.yaml")
    _stops_then_trains(tmp_path, weights, [])


def test_unknown_contract_warns_and_adopt_refuses(tmp_path, caplog):
    bare = tmp_path / "bare.pth"
    torch.save({"model": {"stem.conv1.weight": torch.ones(64, 3, 7, 7)}}, bare)
    cfg = _paper_r101_cfg(str(bare))
    with caplog.at_level(logging.WARNING, logger="resnet_det"):
        assert check_weights_contract(cfg) is None
    assert f"MODEL.WEIGHTS={str(bare)!r}: the input contract is unknown" in caplog.text
    cfg.MODEL.WEIGHTS_INPUT_CONTRACT = "adopt"
    with pytest.raises(WeightsError, match="nothing to adopt"):
        resolve_weights_contract(cfg)
    cfg.MODEL.WEIGHTS_INPUT_CONTRACT = "trust"
    with pytest.raises(WeightsError, match="WEIGHTS_INPUT_CONTRACT='trust': choose one of"):
        check_weights_contract(cfg)
