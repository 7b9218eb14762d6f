"""Progress reporting: bars on a terminal, periodic log lines elsewhere (utils.progress)."""

import io
import logging

import pytest

from resnet_det.utils import progress as progress_module
from resnet_det.utils.progress import Progress, resolve_mode, track


class _Stream(io.StringIO):
    def __init__(self, tty):
        super().__init__()
        self._tty = tty

    def isatty(self):
        return self._tty


def test_mode_follows_the_terminal_and_the_environment(monkeypatch):
    monkeypatch.delenv("RESNET_DET_PROGRESS", raising=False)
    assert resolve_mode("auto", _Stream(True)) == "bar"
    assert resolve_mode("auto", _Stream(False)) == "log"
    monkeypatch.setenv("RESNET_DET_PROGRESS", "off")
    assert resolve_mode("auto", _Stream(True)) == "off"
    assert resolve_mode("bar", _Stream(False)) == "bar"
    monkeypatch.setenv("RESNET_DET_PROGRESS", "sometimes")
    with pytest.raises(ValueError, match="RESNET_DET_PROGRESS"):
        resolve_mode("auto")


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def _logger(name):
    """A logger of its own, whatever other tests did to the package's loggers."""
    logger = logging.getLogger(f"test_progress.{name}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    handler = _Records()
    logger.handlers = [handler]
    return logger, handler.lines


def test_log_mode_writes_detectron2_style_lines_every_interval(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(progress_module.time, "perf_counter", lambda: clock[0])
    logger, lines = _logger("interval")
    p = Progress(10, desc="Inference", unit="img", mode="log", interval=5.0, logger=logger)
    for _ in range(10):
        clock[0] += 2.0  # 2 s per image: a line at the 3rd, 6th and 9th image
        p.update()
    p.close()
    assert lines == [
        "Inference done 3/10. 2.0000 s / img. ETA=0:00:14",
        "Inference done 6/10. 2.0000 s / img. ETA=0:00:08",
        "Inference done 9/10. 2.0000 s / img. ETA=0:00:02",
    ]
    assert not any("\r" in line for line in lines)


def test_off_and_disabled_show_nothing(capsys):
    logger, lines = _logger("off")
    assert list(track(range(3), mode="off", interval=0.0, logger=logger)) == [0, 1, 2]
    assert list(track(range(3), mode="log", interval=0.0, enabled=False, logger=logger)) == [
        0,
        1,
        2,
    ]
    assert not lines and capsys.readouterr().err == ""
    assert list(track(range(2), mode="log", interval=0.0, desc="X", logger=logger)) == [0, 1]
    assert [line.split(".")[0] for line in lines] == ["X done 1/2", "X done 2/2"]
