"""Progress of a long loop: a tqdm bar on a terminal, log lines elsewhere.

A bar redraws itself with carriage returns, which a log file (a cluster job's stdout, nohup)
keeps as one ever-growing line or thousands of lines. Where stderr is not a terminal,
``Progress`` logs one line every ``interval`` seconds instead, with the count, the rate and the
time left, as detectron2 logs its inference::

    Inference done 11/100. 0.1201 s / img. ETA=0:00:10

The mode is chosen by ``mode`` ("auto": bar on a terminal, lines otherwise; "bar"; "log";
"off") or, for "auto", by the environment variable RESNET_DET_PROGRESS (bar | log | off).
"""

import datetime
import logging
import os
import sys
import time
from typing import Iterable, Iterator, Optional, TypeVar

__all__ = ["Progress", "track", "resolve_mode", "PROGRESS_MODES", "format_eta"]

T = TypeVar("T")
PROGRESS_MODES = ("auto", "bar", "log", "off")
ENV_VAR = "RESNET_DET_PROGRESS"


def resolve_mode(mode: str = "auto", stream=None) -> str:
    """ "bar", "log" or "off" for ``mode`` (see the module docstring)."""
    if mode not in PROGRESS_MODES:
        raise ValueError(f"progress mode {mode!r}: choose one of {PROGRESS_MODES}")
    if mode != "auto":
        return mode
    env = os.environ.get(ENV_VAR, "").strip().lower()
    if env:
        if env not in PROGRESS_MODES[1:]:
            raise ValueError(f"{ENV_VAR}={env!r}: choose one of {PROGRESS_MODES[1:]}")
        return env
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return "bar" if isatty is not None and isatty() else "log"


def format_eta(seconds: float) -> str:
    return str(datetime.timedelta(seconds=int(max(seconds, 0))))


class Progress:
    """Counts work done out of ``total`` and shows it as a bar or as periodic log lines.

    Args:
        total: how many units there are (None: unknown, no ETA).
        desc: what is being done ("Inference"), the start of each line.
        unit: the unit counted ("img", "batch").
        mode: "auto", "bar", "log" or "off".
        interval: seconds between log lines (the first after ``interval`` seconds too).
        logger: where log lines go (default: this module's logger).
        enabled: False shows nothing (e.g. on ranks other than 0).
    """

    def __init__(
        self,
        total: Optional[int] = None,
        *,
        desc: str = "Progress",
        unit: str = "it",
        mode: str = "auto",
        interval: float = 5.0,
        logger: Optional[logging.Logger] = None,
        enabled: bool = True,
    ):
        self.total, self.desc, self.unit = total, desc, unit
        self.mode = resolve_mode(mode) if enabled else "off"
        self.interval = float(interval)
        self.logger = logger or logging.getLogger(__name__)
        self.n = 0
        self.start = self._last_log = time.perf_counter()
        self._bar = None
        if self.mode == "bar":
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True)

    def rate(self) -> float:
        """Seconds per unit so far (0 before the first)."""
        return (time.perf_counter() - self.start) / self.n if self.n else 0.0

    def line(self) -> str:
        """The log line for the current state."""
        of = f"/{self.total}" if self.total is not None else ""
        text = f"{self.desc} done {self.n}{of}. {self.rate():.4f} s / {self.unit}."
        if self.total is not None and self.n:
            text += f" ETA={format_eta(self.rate() * (self.total - self.n))}"
        return text

    def update(self, n: int = 1) -> None:
        """Add ``n`` units done."""
        self.n += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.mode == "log":
            now = time.perf_counter()
            if now - self._last_log >= self.interval:
                self._last_log = now
                self.logger.info(self.line())

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def track(iterable: Iterable[T], total: Optional[int] = None, **kwargs) -> Iterator[T]:
    """Yield from ``iterable``, counting one unit per item with a :class:`Progress` (kwargs)."""
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)
    with Progress(total, **kwargs) as progress:
        for item in iterable:
            yield item
            progress.update(1)
