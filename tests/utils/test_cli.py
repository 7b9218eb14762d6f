import os
import subprocess
import sys

import pytest

from resnet_det.config import ConfigError, ConfigKeyError
from resnet_det.utils.cli import run_tool
from resnet_det.utils.errors import DataError, MissingFileError, UserKeyError, WeightsError

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def _raise(exc):
    raise exc


def test_user_error_prints_one_line_and_exits_2(capsys, monkeypatch):
    monkeypatch.delenv("RESNET_DET_TRACEBACK", raising=False)
    with pytest.raises(SystemExit) as e:
        run_tool("tool.py", _raise, UserKeyError("Dataset 'cocoo' is not registered"))
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "tool.py: error: UserKeyError: Dataset 'cocoo' is not registered" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "exc",
    [
        DataError("bad box in a.json"),
        WeightsError("shape of res2.0"),
        MissingFileError("no such file x.yaml"),
        ConfigError("SOLVER.STEPS"),
    ],
)
def test_every_user_error_type_is_one_line(capsys, monkeypatch, exc):
    monkeypatch.delenv("RESNET_DET_TRACEBACK", raising=False)
    with pytest.raises(SystemExit) as e:
        run_tool("tool.py", _raise, exc)
    assert e.value.code == 2
    assert f"tool.py: error: {type(exc).__name__}: {exc}" in capsys.readouterr().err


@pytest.mark.parametrize(
    "exc", [ValueError("x"), KeyError("k"), FileNotFoundError("f"), TypeError("t")]
)
def test_builtin_errors_are_bugs_and_keep_their_traceback(monkeypatch, exc):
    # A ValueError from deep inside torch or our own code is a bug to report, not a user error.
    monkeypatch.delenv("RESNET_DET_TRACEBACK", raising=False)
    with pytest.raises(type(exc)):
        run_tool("tool.py", _raise, exc)


def test_traceback_on_request(monkeypatch):
    monkeypatch.setenv("RESNET_DET_TRACEBACK", "1")
    with pytest.raises(ConfigKeyError):
        run_tool("tool.py", _raise, ConfigKeyError("Unknown config key X"))


def test_bugs_keep_their_traceback(monkeypatch):
    monkeypatch.delenv("RESNET_DET_TRACEBACK", raising=False)
    with pytest.raises(ZeroDivisionError):
        run_tool("tool.py", lambda: 1 / 0)


def test_train_net_config_typo_names_key_and_suggestion_without_traceback():
    env = {k: v for k, v in os.environ.items() if k != "RESNET_DET_TRACEBACK"}
    p = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tools", "train_net.py"), "SOLVER.BASE_LRR", "0.1"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert p.returncode == 2
    assert "SOLVER.BASE_LRR" in p.stderr and "did you mean SOLVER.BASE_LR" in p.stderr
    assert "Traceback" not in p.stderr
