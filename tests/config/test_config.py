"""Config system: _BASE_ inheritance, overrides, and errors that name key, file, suggestion."""

import os
import textwrap

import pytest
import yaml

from resnet_det.config import (
    CfgNode,
    ConfigError,
    ConfigKeyError,
    ConfigTypeError,
    get_cfg,
    save_config,
    validate_cfg,
)
from resnet_det.modeling import describe_model


def _validate(cfg, **kwargs):
    """What a run checks before it starts: validate_cfg (the solver's, data loader's and
    engine's keys) and the model's description (the model's keys)."""
    validate_cfg(cfg, **kwargs)
    describe_model(cfg)


def _write(path, text):
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_get_cfg_is_fresh_copy_of_our_class():
    a, b = get_cfg(), get_cfg()
    assert isinstance(a, CfgNode) and isinstance(a.MODEL.RESNETS, CfgNode)
    a.MODEL.RESNETS.DEPTH = 101
    assert b.MODEL.RESNETS.DEPTH == 50
    assert get_cfg().MODEL.RESNETS.DEPTH == 50
    assert isinstance(a.INPUT.MIN_SIZE_TRAIN, tuple)


def test_base_inheritance_relative_to_file(tmp_path):
    (tmp_path / "sub").mkdir()
    _write(
        tmp_path / "Base.yaml",
        """
        MODEL:
          RESNETS: {DEPTH: 101, NORM: GN}
        SOLVER: {BASE_LR: 0.02, STEPS: [100, 200], MAX_ITER: 300}
        """,
    )
    child = _write(
        tmp_path / "sub" / "child.yaml",
        """
        _BASE_: ../Base.yaml
        SOLVER: {BASE_LR: 0.5}
        MODEL:
          RESNETS: {DEPTH: 18, RES2_OUT_CHANNELS: 64}
        """,
    )
    cfg = get_cfg()
    cfg.merge_from_file(child)
    assert cfg.MODEL.RESNETS.DEPTH == 18  # child overrides base
    assert cfg.MODEL.RESNETS.NORM == "GN"  # inherited from base
    assert cfg.SOLVER.BASE_LR == 0.5
    assert cfg.SOLVER.STEPS == (100, 200)  # list in YAML, tuple like the default
    assert cfg.SOLVER.MAX_ITER == 300
    assert cfg.SOLVER.MOMENTUM == 0.9  # untouched default
    _validate(cfg)


def test_overrides_from_command_line_after_file(tmp_path):
    f = _write(tmp_path / "c.yaml", "SOLVER: {BASE_LR: 0.02}\n")
    cfg = get_cfg()
    cfg.merge_from_file(f)
    cfg.merge_from_list(
        [
            "SOLVER.BASE_LR",
            "0.1",
            "SOLVER.STEPS",
            "(10, 20)",
            "MODEL.WEIGHTS",
            "/tmp/w.pth",
            "SOLVER.AMP.ENABLED",
            "True",
            "SOLVER.MAX_ITER",
            "30",
        ]
    )
    assert cfg.SOLVER.BASE_LR == 0.1
    assert cfg.SOLVER.STEPS == (10, 20)
    assert cfg.MODEL.WEIGHTS == "/tmp/w.pth"
    assert cfg.SOLVER.AMP.ENABLED is True
    # an int where a float is expected is lossless and accepted
    cfg.merge_from_list(["SOLVER.BASE_LR", "1"])
    assert cfg.SOLVER.BASE_LR == 1.0 and isinstance(cfg.SOLVER.BASE_LR, float)
    with pytest.raises(ConfigError, match="odd number"):
        cfg.merge_from_list(["SOLVER.BASE_LR"])


def test_typo_in_file_names_key_suggestion_and_file(tmp_path):
    base = _write(tmp_path / "Base.yaml", "MODEL:\n  RESNET:\n    DEPTH: 101\n")
    child = _write(tmp_path / "child.yaml", "_BASE_: Base.yaml\nSOLVER: {BASE_LR: 0.1}\n")
    cfg = get_cfg()
    with pytest.raises(ConfigKeyError) as e:
        cfg.merge_from_file(child)
    msg = str(e.value)
    assert "MODEL.RESNET.DEPTH" in msg
    assert "did you mean MODEL.RESNETS.DEPTH" in msg
    assert base in msg  # the file the key came from (the base, not child)
    assert cfg.MODEL.RESNETS.DEPTH == 50  # nothing half-merged


def test_typo_on_command_line():
    cfg = get_cfg()
    with pytest.raises(ConfigKeyError) as e:
        cfg.merge_from_list(["SOLVER.BASE_RL", "0.1"])
    assert "SOLVER.BASE_RL" in str(e.value)
    assert "SOLVER.BASE_LR" in str(e.value)
    assert "command line" in str(e.value)


def test_wrong_type_names_key_expected_and_given(tmp_path):
    f = _write(tmp_path / "t.yaml", "SOLVER:\n  MAX_ITER: ten\n")
    cfg = get_cfg()
    with pytest.raises(ConfigTypeError) as e:
        cfg.merge_from_file(f)
    msg = str(e.value)
    assert "SOLVER.MAX_ITER" in msg and "expected int" in msg and "got str" in msg and f in msg
    with pytest.raises(ConfigTypeError, match=r"SOLVER.IMS_PER_BATCH.*expected int.*got float"):
        cfg.merge_from_list(["SOLVER.IMS_PER_BATCH", "2.5"])
    with pytest.raises(ConfigTypeError, match=r"SOLVER.AMP.ENABLED.*expected bool.*got int"):
        cfg.merge_from_list(["SOLVER.AMP.ENABLED", "1"])
    with pytest.raises(ConfigTypeError, match=r"SOLVER.STEPS\[1\].*expected int"):
        cfg.merge_from_list(["SOLVER.STEPS", "[10, 'x']"])


def test_yaml_python_tags_are_refused(tmp_path):
    marker = tmp_path / "pwned"
    f = _write(
        tmp_path / "evil.yaml", f"OUTPUT_DIR: !!python/object/apply:os.system ['touch {marker}']\n"
    )
    cfg = get_cfg()
    with pytest.raises(ConfigError, match="evil.yaml"):
        cfg.merge_from_file(f)
    assert not marker.exists()
    with pytest.raises(ConfigError):
        cfg.merge_from_file(f, allow_unsafe=True)
    assert not marker.exists()


def test_missing_base_and_cycle(tmp_path):
    from resnet_det.utils.errors import MissingFileError

    f = _write(tmp_path / "a.yaml", "_BASE_: nope.yaml\n")
    # a user error (one line from the tools), still a FileNotFoundError for callers
    with pytest.raises(MissingFileError, match="nope.yaml") as e:
        get_cfg().merge_from_file(f)
    assert isinstance(e.value, FileNotFoundError)
    _write(tmp_path / "x.yaml", "_BASE_: y.yaml\n")
    _write(tmp_path / "y.yaml", "_BASE_: x.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        get_cfg().merge_from_file(str(tmp_path / "x.yaml"))


def test_save_config_roundtrip_and_atomic(tmp_path, monkeypatch):
    cfg = get_cfg()
    cfg.merge_from_list(["SOLVER.STEPS", "(3, 7)", "MODEL.RESNETS.DEPTH", "152"])
    path = str(tmp_path / "config.yaml")
    save_config(cfg, path)
    again = get_cfg()
    again.merge_from_file(path)
    assert again == cfg
    assert yaml.safe_load(open(path))["SOLVER"]["STEPS"] == [3, 7]

    # A failure while writing leaves the previous file intact and no temporary file behind.
    before = open(path).read()
    cfg.MODEL.RESNETS.DEPTH = 18

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        save_config(cfg, path)
    assert open(path).read() == before
    assert os.listdir(tmp_path) == ["config.yaml"]


@pytest.mark.parametrize(
    "overrides,key",
    [
        (["MODEL.RESNETS.DEPTH", "42"], "MODEL.RESNETS.DEPTH"),
        (["MODEL.RESNETS.SHORTCUT", "D"], "MODEL.RESNETS.SHORTCUT"),
        (["MODEL.RESNETS.NORM", "BatchNorm"], "MODEL.RESNETS.NORM"),
        (
            [
                "MODEL.RESNETS.DEPTH",
                "18",
                "MODEL.RESNETS.RES2_OUT_CHANNELS",
                "64",
                "MODEL.RESNETS.NUM_GROUPS",
                "32",
            ],
            "MODEL.RESNETS.NUM_GROUPS",
        ),
        (["MODEL.RESNETS.DEPTH", "34"], "MODEL.RESNETS.RES2_OUT_CHANNELS"),
        (["SOLVER.STEPS", "(20, 10)", "SOLVER.MAX_ITER", "30"], "SOLVER.STEPS"),
        (["SOLVER.STEPS", "(10, 30)", "SOLVER.MAX_ITER", "30"], "SOLVER.STEPS"),
        (["MODEL.META_ARCHITECTURE", "RetinaNet"], "MODEL.META_ARCHITECTURE"),
        (["INPUT.FORMAT", "YUV"], "INPUT.FORMAT"),
        (["MODEL.BACKBONE.NAME", "build_resnet_fpn_backbone"], "MODEL.ROI_HEADS.NAME"),
        (["MODEL.BACKBONE.NAME", "build_vgg_backbone"], "MODEL.ROI_HEADS.NAME"),
        (["DATALOADER.ON_BAD_IMAGE", "ignore"], "DATALOADER.ON_BAD_IMAGE"),
        (["ENGINE", "mmdet"], "ENGINE"),
        (["SOLVER.WARMUP_METHOD", "exp"], "SOLVER.WARMUP_METHOD"),
        (["SOLVER.LR_SCHEDULER_NAME", "ReduceLROnPlateau"], "SOLVER.PLATEAU_METRIC"),
        (["SOLVER.PLATEAU_MODE", "up"], "SOLVER.PLATEAU_MODE"),
    ],
)
def test_validation_names_the_key(overrides, key):
    cfg = get_cfg()
    cfg.merge_from_list(overrides)
    with pytest.raises(ConfigError) as e:
        _validate(cfg)
    assert key in str(e.value)


def test_valid_combinations_pass_and_batch_divisibility():
    cfg = get_cfg()
    _validate(cfg)
    cfg.merge_from_list(
        [
            "MODEL.BACKBONE.NAME",
            "build_resnet_fpn_backbone",
            "MODEL.ROI_HEADS.NAME",
            "StandardROIHeads",
            "MODEL.RESNETS.DEPTH",
            "18",
            "MODEL.RESNETS.RES2_OUT_CHANNELS",
            "64",
            "SOLVER.IMS_PER_BATCH",
            "6",
        ]
    )
    _validate(cfg, world_size=3)
    with pytest.raises(ConfigError, match="SOLVER.IMS_PER_BATCH"):
        _validate(cfg, world_size=4)


def test_config_errors_are_user_errors():
    """The tools print a UserError as one line; ConfigError stays a ValueError for callers."""
    from resnet_det.utils.errors import UserError

    for cls in (ConfigError, ConfigKeyError, ConfigTypeError):
        assert issubclass(cls, UserError) and issubclass(cls, ValueError)
    assert issubclass(ConfigKeyError, KeyError) and issubclass(ConfigTypeError, TypeError)
    with pytest.raises(ConfigError) as e:
        _validate(_merged(["MODEL.RESNETS.DEPTH", "42"]))
    assert isinstance(e.value, UserError) and "MODEL.RESNETS.DEPTH" in str(e.value)


def _merged(opts):
    cfg = get_cfg()
    cfg.merge_from_list(opts)
    return cfg
