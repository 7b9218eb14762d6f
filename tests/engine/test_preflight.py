"""Fail fast (engine/preflight.py): what can be known before the first iteration stops the run
then, naming the key, the file and the fix, before any model is built or image read."""

import importlib.util
import logging
import os
import sys
import time

import pytest
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(__file__))
import engine_toys as toys  # noqa: E402

from resnet_det.config import ConfigError, get_cfg  # noqa: E402
from resnet_det.data import DatasetCatalog, MetadataCatalog  # noqa: E402
from resnet_det.engine import (
    DefaultTrainer,  # noqa: E402
    preflight,  # noqa: E402
)
from resnet_det.engine.detection import DetectionTrainer  # noqa: E402
from resnet_det.engine.pretrain import ClassificationTrainer  # noqa: E402
from resnet_det.utils.errors import DataError, MissingFileError, UserKeyError, WeightsError  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
DEMO = os.path.join(ROOT, "configs", "demo", "faster_rcnn_shapes.yaml")


def _demo_cfg(tmp_path, *opts):
    cfg = get_cfg()
    cfg.merge_from_file(DEMO)
    cfg.merge_from_list(["OUTPUT_DIR", str(tmp_path / "out"), *opts])
    return cfg


@pytest.fixture
def nothing_built(monkeypatch):
    """Fails the test if the detector or any loader is built or any image read."""

    def refuse(*a, **k):
        raise AssertionError("built or read something before the checks ran")

    import resnet_det.data.io as io
    import resnet_det.engine.detection as det

    monkeypatch.setattr(DetectionTrainer, "build_model", classmethod(refuse))
    monkeypatch.setattr(det, "build_detection_train_loader", refuse)
    monkeypatch.setattr(io, "read_image", refuse)


@pytest.fixture
def registered():
    """Registers throw-away datasets; removes them after the test."""
    names = []

    def register(name, func=lambda: [], **meta):
        DatasetCatalog.register(name, func)
        MetadataCatalog.get(name).set(**meta)
        names.append(name)
        return name

    yield register
    for n in names:
        DatasetCatalog.remove(n)
        MetadataCatalog.remove(n)


def test_an_80_class_head_on_the_3_class_demo_stops_before_anything_is_built(
    tmp_path, nothing_built
):
    cfg = _demo_cfg(tmp_path, "MODEL.ROI_HEADS.NUM_CLASSES", "80")
    start = time.perf_counter()
    with pytest.raises(ConfigError) as e:
        DetectionTrainer(cfg)
    elapsed = time.perf_counter() - start
    msg = str(e.value)
    assert "MODEL.ROI_HEADS.NUM_CLASSES=80" in msg and "'shapes_train' has 3 classes" in msg
    assert "circle" in msg and "Set MODEL.ROI_HEADS.NUM_CLASSES 3" in msg
    assert elapsed < 5.0, elapsed  # metadata only: nothing generated, built or read
    # --eval-only checks the test sets the same way (tools/train_net.py calls it).
    with pytest.raises(ConfigError, match="test set 'shapes_val' has 3 classes"):
        DetectionTrainer.preflight(cfg, train=False)


def test_a_missing_weights_file_stops_before_anything_is_built(tmp_path, nothing_built):
    missing = str(tmp_path / "weights" / "R-101.pkl")
    cfg = _demo_cfg(
        tmp_path, "MODEL.WEIGHTS", missing, "DATASETS.TRAIN", "()", "DATASETS.TEST", "()"
    )
    with pytest.raises(MissingFileError) as e:
        DetectionTrainer(cfg)
    msg = str(e.value)
    assert f"MODEL.WEIGHTS={missing!r}: no such file" in msg and "train from scratch" in msg
    # Unreadable variants are WeightsErrors naming the key too.
    os.makedirs(missing)
    with pytest.raises(WeightsError, match="is a folder"):
        preflight.check_weights_file(missing)
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(WeightsError, match="empty file"):
        preflight.check_weights_file(str(empty))


def test_weights_of_another_layout_stop_before_the_first_iteration(tmp_path, monkeypatch):
    # Loading is the layout check (keys and shapes against the detector); it runs in
    # resume_or_load, before the training loader exists.
    bad = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(3, 3)}, bad)
    cfg = _demo_cfg(
        tmp_path,
        "MODEL.WEIGHTS",
        str(bad),
        "DATASETS.TRAIN",
        "()",
        "DATASETS.TEST",
        "()",
        "MODEL.RESNETS.DEPTH",
        "18",
        "MODEL.WEIGHTS_INPUT_CONTRACT",
        "ignore",
    )
    trainer = DetectionTrainer(cfg)
    monkeypatch.setattr(trainer, "build_train_loader", lambda *a, **k: pytest.fail("loader built"))
    with pytest.raises(
        WeightsError, match="MODEL.WEIGHTS=.*different architecture.*MODEL.RESNETS.DEPTH"
    ):
        trainer.resume_or_load(resume=False)


def test_unregistered_and_missing_datasets_name_the_key_and_the_file(tmp_path, registered):
    cfg = _demo_cfg(tmp_path, "DATASETS.TRAIN", "('shapes_trian',)")
    with pytest.raises(
        UserKeyError, match="DATASETS.TRAIN.*'shapes_trian'.*did you mean.*'shapes_train'"
    ):
        DetectionTrainer.preflight(cfg)
    json_file = str(tmp_path / "nowhere" / "instances_val.json")
    registered(
        "preflight_missing",
        json_file=json_file,
        image_root=str(tmp_path),
        thing_classes=["circle", "square", "triangle"],
        evaluator_type="coco",
    )
    cfg = _demo_cfg(tmp_path, "DATASETS.TEST", "('preflight_missing',)")
    with pytest.raises(MissingFileError) as e:
        DetectionTrainer.preflight(cfg, train=False)
    assert "DATASETS.TEST: dataset 'preflight_missing' needs its json_file" in str(e.value)
    assert json_file in str(e.value) and "RESNET_DET_DATASETS" in str(e.value)
    voc = tmp_path / "VOC"
    voc.mkdir()
    registered(
        "preflight_voc",
        dirname=str(voc),
        split="trainval",
        evaluator_type="voc",
        thing_classes=["circle", "square", "triangle"],
    )
    cfg = _demo_cfg(tmp_path, "DATASETS.TEST", "('preflight_voc',)")
    with pytest.raises(MissingFileError, match="split list .*ImageSets/Main/trainval.txt"):
        DetectionTrainer.preflight(cfg, train=False)


def test_train_and_test_sets_must_name_the_same_classes(tmp_path, registered):
    registered("preflight_a", thing_classes=["cat", "dog"])
    registered("preflight_b", thing_classes=["dog", "cat"])
    cfg = _demo_cfg(
        tmp_path,
        "DATASETS.TRAIN",
        "('preflight_a',)",
        "DATASETS.TEST",
        "('preflight_b',)",
        "MODEL.ROI_HEADS.NUM_CLASSES",
        "2",
    )
    with pytest.raises(
        DataError, match="'preflight_a' and 'preflight_b' have different thing_classes"
    ):
        DetectionTrainer.preflight(cfg)


def test_classifier_head_against_the_class_count(tmp_path):
    cfg = get_cfg()
    cfg.merge_from_file(os.path.join(ROOT, "configs", "digits", "resnet20.yaml"))
    cfg.merge_from_list(["OUTPUT_DIR", str(tmp_path), "MODEL.CLASSIFIER.NUM_CLASSES", "1000"])
    with pytest.raises(
        ConfigError,
        match="MODEL.CLASSIFIER.NUM_CLASSES=1000: the training set 'digits_train' has 10",
    ):
        ClassificationTrainer.preflight(cfg)


def test_output_dir_must_be_writable_with_room_for_a_checkpoint(tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="OUTPUT_DIR=.*cannot write there.*writable folder"):
        preflight.check_output_dir(str(blocker / "out"))
    # Through the trainer: the estimate is the model's and the optimizer's state.
    model = toys.LinearMSE()
    need = preflight.estimate_checkpoint_bytes(
        model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    )
    assert need == 5 * 4 + 5 * 4 + 2**20
    big = nn.Linear(1000, 1000)
    assert (
        preflight.estimate_checkpoint_bytes(big, torch.optim.Adam(big.parameters()))
        == 3 * 4_004_000 + 2**20
    )
    assert preflight.estimate_checkpoint_bytes(big) == 4_004_000 + 2**20

    class Full:
        free = 512 * 1024

    monkeypatch.setattr(preflight.shutil, "disk_usage", lambda path: Full)
    with pytest.raises(ConfigError) as e:
        DefaultTrainer(
            toys.toy_cfg(str(tmp_path / "run")),
            model=toys.LinearMSE(),
            data_loader=toys.loader_factory(8),
        )
    assert "OUTPUT_DIR=" in str(e.value) and "0 MB free, one checkpoint needs about 1 MB" in str(
        e.value
    )


def test_many_checkpoints_that_do_not_fit_are_a_warning(tmp_path, monkeypatch, caplog):
    class Some:
        free = 3 * 2**20

    monkeypatch.setattr(preflight.shutil, "disk_usage", lambda path: Some)
    preflight.check_output_dir(str(tmp_path), needed_bytes=2**20, num_checkpoints=10)
    assert "SOLVER.CHECKPOINT_KEEP_LAST" in caplog.text


def test_from_scratch_with_frozen_bn_is_warned_about_by_key(tmp_path, caplog, nothing_built):
    cfg = _demo_cfg(
        tmp_path,
        "MODEL.RESNETS.NORM",
        "FrozenBN",
        "MODEL.BACKBONE.FREEZE_AT",
        "2",
        "DATASETS.TRAIN",
        "()",
        "DATASETS.TEST",
        "()",
    )
    with caplog.at_level(logging.WARNING, logger="resnet_det"):
        DetectionTrainer.preflight(cfg)
    assert (
        "MODEL.RESNETS.NORM is 'FrozenBN'" in caplog.text
        and "Set MODEL.RESNETS.NORM 'BN'" in caplog.text
    )
    assert "MODEL.BACKBONE.FREEZE_AT=2 freezes" in caplog.text
    # The demo's own settings (BN, FREEZE_AT 0) and any run with weights: no warning.
    assert preflight.warn_frozen_from_scratch("", {"MODEL.RESNETS.NORM": "BN"}, 0) == []
    assert preflight.warn_frozen_from_scratch("w.pkl", {"MODEL.RESNETS.NORM": "FrozenBN"}, 2) == []


def test_bad_fault_keys_are_config_errors(tmp_path):
    cfg = toys.toy_cfg(str(tmp_path), CHECKPOINT_KEEP_LAST=-1)
    with pytest.raises(ConfigError, match="SOLVER.CHECKPOINT_KEEP_LAST=-1"):
        DefaultTrainer(cfg, model=toys.LinearMSE(), data_loader=toys.loader_factory(8))


def _tool():
    spec = importlib.util.spec_from_file_location(
        "train_net", os.path.join(ROOT, "tools", "train_net.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("eval_only", [False, True])
def test_train_net_stops_at_start_up(tmp_path, eval_only, nothing_built):
    out = str(tmp_path / "run")
    args = ["--config-file", DEMO, "MODEL.ROI_HEADS.NUM_CLASSES", "80", "OUTPUT_DIR", out]
    with pytest.raises(ConfigError, match="NUM_CLASSES=80"):
        _tool().cli((["--eval-only"] if eval_only else []) + args)
    with open(os.path.join(out, "log.txt")) as f:
        assert "Starting training" not in f.read()
    assert not os.path.exists(os.path.join(out, "metrics.json"))
    missing = str(tmp_path / "no.pkl")
    with pytest.raises(MissingFileError, match="MODEL.WEIGHTS"):
        _tool().cli(
            (["--eval-only"] if eval_only else [])
            + [
                "--config-file",
                DEMO,
                "MODEL.WEIGHTS",
                missing,
                "DATASETS.TRAIN",
                "()",
                "DATASETS.TEST",
                "()",
                "OUTPUT_DIR",
                out,
            ]
        )
